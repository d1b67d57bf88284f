package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/tandem-dev/tandem/audit/merkle"
)

// StoreOptions configures OpenStore. The zero value works except that
// Checkpoint needs a Signer.
type StoreOptions struct {
	// Signer signs checkpoints. Required for Checkpoint and Export.
	Signer Signer
	// Origin prefixes checkpoint origin lines: the origin of log L is
	// Origin + "/" + L. Default "tandem".
	Origin string
	// PeerKeys are note verifier keys ("name+hash+base64") of peers whose
	// co-signatures appear on receipts; Export copies them to keys.txt.
	PeerKeys []string
	// MaxBatch bounds how many queued appends are committed in one Badger
	// transaction. Default 1024.
	MaxBatch int
	// Now returns the current time for entries with a zero Time. Default
	// time.Now.
	Now func() time.Time
	// Badger, if set, may tune the Badger options (cache sizes, memtables).
	// OpenStore fails with ErrNoSync if it disables SyncWrites or turns on
	// InMemory.
	Badger func(badger.Options) badger.Options
}

func (o *StoreOptions) validate() error {
	if o.Origin == "" {
		o.Origin = "tandem"
	}
	if strings.ContainsAny(o.Origin, "\n") {
		return fmt.Errorf("audit: origin contains a newline")
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1024
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	for _, k := range o.PeerKeys {
		if _, err := ParseVerifierKey(k); err != nil {
			return fmt.Errorf("audit: peer key %q: %w", k, err)
		}
	}
	return nil
}

// IdemKey identifies a logical append so that retries are idempotent. The
// zero IdemKey disables idempotency for that append.
type IdemKey struct {
	Job     string
	Event   string
	Attempt uint32
}

func (k IdemKey) zero() bool { return k == IdemKey{} }

func (k IdemKey) encode() []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(k.Job)))
	b = append(b, k.Job...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(k.Event)))
	b = append(b, k.Event...)
	return binary.BigEndian.AppendUint32(b, k.Attempt)
}

// Store is the Badger-backed audit store holding any number of named logs.
// All methods are safe for concurrent use. Appends are serialised through a
// single writer goroutine that commits queued appends together (group
// commit); each Append returns only after its transaction is durable.
type Store struct {
	db   *badger.DB
	opts StoreOptions

	reqs       chan *appendReq
	closing    chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error

	mu     sync.RWMutex // guards closed against db.Close
	closed bool

	witnessMu sync.Mutex

	// logs is owned by the writer goroutine.
	logs map[string]*logState
}

type logState struct {
	tree *merkle.Compact
	last merkle.Hash // leaf hash of the last entry
}

func (st *logState) clone() *logState {
	return &logState{tree: st.tree.Clone(), last: st.last}
}

// Key layout. Per-log keys start with 'L', a uint16 name length and the name.
const (
	tagEntry = 'e' // + be64 seq -> canonical entry bytes
	tagNode  = 'n' // + u8 level + be64 index -> 32-byte hash
	tagMeta  = 'm' // -> be64 size || last leaf || peaks
	tagIdem  = 'i' // + IdemKey.encode() -> be64 seq
	tagRev   = 'x' // + be64 seq -> IdemKey.encode()
)

var (
	prefixRegistry = []byte("G") // + log name -> empty
	prefixReceipt  = []byte("R") // + job id -> signed receipt
	prefixWitness  = []byte("W") // + u16 len + peer + 'c' | 'h'+be64 size -> checkpoint
)

func logPrefix(log string) []byte {
	b := []byte{'L'}
	b = binary.BigEndian.AppendUint16(b, uint16(len(log)))
	return append(b, log...)
}

func logKey(log string, tag byte, rest ...byte) []byte {
	return append(append(logPrefix(log), tag), rest...)
}

func seqKey(log string, tag byte, seq uint64) []byte {
	return logKey(log, tag, binary.BigEndian.AppendUint64(nil, seq)...)
}

func nodeKey(log string, level uint8, index uint64) []byte {
	return logKey(log, tagNode, binary.BigEndian.AppendUint64([]byte{level}, index)...)
}

// validLogName accepts "root" and "peer/<name>" style names: 1..128 bytes of
// printable ASCII without spaces.
func validLogName(log string) bool {
	if len(log) == 0 || len(log) > 128 {
		return false
	}
	for i := 0; i < len(log); i++ {
		if log[i] <= ' ' || log[i] > '~' {
			return false
		}
	}
	return true
}

// OpenStore opens (creating if needed) the store in dir with Badger
// SyncWrites on, reconciles every log's metadata and idempotency index with
// its entries (rebuilding them if they disagree), and starts the writer
// goroutine. It returns ErrNoSync if opts.Badger disables synchronous
// writes, or the Badger error.
func OpenStore(dir string, opts StoreOptions) (*Store, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(nil).
		WithMemTableSize(16 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithDetectConflicts(false).
		WithMetricsEnabled(false)
	if opts.Badger != nil {
		bo = opts.Badger(bo)
	}
	if !bo.SyncWrites || bo.InMemory {
		return nil, ErrNoSync
	}
	if err := RemoveEmptyLogFiles(dir); err != nil {
		return nil, err
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("audit: open badger: %w", err)
	}
	s := &Store{
		db:         db,
		opts:       opts,
		reqs:       make(chan *appendReq, 4096),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		logs:       map[string]*logState{},
	}
	if err := s.reconcile(); err != nil {
		db.Close()
		return nil, err
	}
	go s.writer()
	return s, nil
}

// Close stops the writer (pending appends fail with ErrClosed) and closes
// Badger. It is idempotent and returns the Badger close error, if any.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.writerDone
		s.mu.Lock()
		s.closed = true
		s.closeErr = s.db.Close()
		s.mu.Unlock()
	})
	return s.closeErr
}

// view runs fn in a read-only transaction unless the store is closed.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.View(fn)
}

func (s *Store) update(fn func(txn *badger.Txn) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.Update(fn)
}

type appendReq struct {
	ctx  context.Context
	log  string
	key  IdemKey
	e    Entry
	done chan appendResult
}

type appendResult struct {
	seq uint64
	dup bool
	err error
}

// Append appends e to the named log (creating the log on first use) and
// returns its sequence number once the Badger transaction holding it has
// been committed with fsync. Seq and PrevHash are assigned; Time is set to
// the store clock (UTC) if zero. If key is non-zero and an entry with the
// same key was appended before, nothing is written and the original seq is
// returned with dup = true. Errors: ErrClosed, an error wrapping
// ErrInvalidEntry, ctx.Err() (the append may still commit; retry with the
// same key to learn its seq), or a Badger error. Safe for concurrent use;
// concurrent calls are group-committed.
func (s *Store) Append(ctx context.Context, log string, key IdemKey, e Entry) (seq uint64, dup bool, err error) {
	if !validLogName(log) {
		return 0, false, fmt.Errorf("audit: invalid log name")
	}
	if !e.Time.IsZero() {
		e.Time = e.Time.UTC()
	}
	// Validate before queueing so one bad entry never fails a batch.
	probe := e
	if probe.Time.IsZero() {
		probe.Time = time.Unix(1, 0)
	}
	if _, err := probe.MarshalBinary(); err != nil {
		return 0, false, err
	}
	r := &appendReq{ctx: ctx, log: log, key: key, e: e, done: make(chan appendResult, 1)}
	select {
	case <-s.closing:
		return 0, false, ErrClosed
	case <-ctx.Done():
		return 0, false, ctx.Err()
	case s.reqs <- r:
	}
	select {
	case res := <-r.done:
		return res.seq, res.dup, res.err
	case <-ctx.Done():
		return 0, false, ctx.Err()
	case <-s.writerDone:
		select {
		case res := <-r.done:
			return res.seq, res.dup, res.err
		default:
			return 0, false, ErrClosed
		}
	}
}

func (s *Store) writer() {
	defer close(s.writerDone)
	batch := make([]*appendReq, 0, s.opts.MaxBatch)
	for {
		select {
		case <-s.closing:
			for {
				select {
				case r := <-s.reqs:
					r.done <- appendResult{err: ErrClosed}
				default:
					return
				}
			}
		case r := <-s.reqs:
			batch = append(batch[:0], r)
		drain:
			for len(batch) < s.opts.MaxBatch {
				select {
				case r := <-s.reqs:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			s.commitBatch(batch)
		}
	}
}

// txnBudget bounds the bytes staged in one Badger transaction; Badger's own
// limit is 15% of the memtable size (2.4 MiB with our 16 MiB memtables).
const txnBudget = 1<<20 + 64<<10

// errFlush asks commitBatch to commit and retry in a fresh transaction.
var errFlush = errors.New("audit: flush")

// pending is one group-commit transaction under construction.
type pending struct {
	txn    *badger.Txn
	states map[string]*logState // working copies
	bytes  int
	idem   map[string]uint64
	reqs   []*appendReq
	res    []appendResult
}

func (s *Store) newPending() *pending {
	return &pending{
		txn:    s.db.NewTransaction(true),
		states: map[string]*logState{},
		idem:   map[string]uint64{},
	}
}

// finish commits p and answers its requests.
func (s *Store) finish(p *pending) {
	err := p.txn.Commit()
	if err == nil {
		for name, st := range p.states {
			s.logs[name] = st
		}
	}
	for i, r := range p.reqs {
		res := p.res[i]
		if err != nil && res.err == nil {
			res = appendResult{err: fmt.Errorf("audit: commit: %w", err)}
		}
		r.done <- res
	}
}

func (s *Store) commitBatch(batch []*appendReq) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p := s.newPending()
	for i := 0; i < len(batch); i++ {
		r := batch[i]
		res, err := s.stage(p, r)
		if errors.Is(err, errFlush) {
			// Keep transactions well under Badger's size limit: commit what
			// we have and retry r in a fresh transaction.
			s.finish(p)
			p = s.newPending()
			i--
			continue
		}
		if err != nil {
			// The transaction may hold a partial write for r: abandon it
			// and fail everything staged in it.
			p.txn.Discard()
			for j, q := range p.reqs {
				if p.res[j].err == nil {
					q.done <- appendResult{err: fmt.Errorf("audit: append: %w", err)}
				} else {
					q.done <- p.res[j]
				}
			}
			r.done <- appendResult{err: fmt.Errorf("audit: append: %w", err)}
			p = s.newPending()
			continue
		}
		p.reqs = append(p.reqs, r)
		p.res = append(p.res, res)
	}
	s.finish(p)
}

// state returns the working copy of a log's state for p, loading it if needed.
func (s *Store) state(p *pending, log string) (*logState, error) {
	if st, ok := p.states[log]; ok {
		return st, nil
	}
	st, ok := s.logs[log]
	if !ok {
		var err error
		st, err = loadState(p.txn, log)
		if errors.Is(err, ErrNotFound) {
			st = &logState{tree: &merkle.Compact{}}
		} else if err != nil {
			return nil, err
		}
		s.logs[log] = st
	}
	c := st.clone()
	p.states[log] = c
	return c, nil
}

// stage adds r to p. A non-nil result error (with nil err) answers r without
// touching the transaction.
func (s *Store) stage(p *pending, r *appendReq) (appendResult, error) {
	if err := r.ctx.Err(); err != nil {
		return appendResult{err: err}, nil
	}
	var ik []byte
	var ikMap string
	if !r.key.zero() {
		ik = r.key.encode()
		ikMap = r.log + "\x00" + string(ik)
		if seq, ok := p.idem[ikMap]; ok {
			return appendResult{seq: seq, dup: true}, nil
		}
		item, err := p.txn.Get(logKey(r.log, tagIdem, ik...))
		switch {
		case err == nil:
			v, err := item.ValueCopy(nil)
			if err != nil || len(v) != 8 {
				return appendResult{}, fmt.Errorf("idempotency index: %v", err)
			}
			return appendResult{seq: binary.BigEndian.Uint64(v), dup: true}, nil
		case !errors.Is(err, badger.ErrKeyNotFound):
			return appendResult{}, err
		}
	}
	st, err := s.state(p, r.log)
	if err != nil {
		return appendResult{}, err
	}
	e := r.e
	e.Seq = st.tree.Size()
	e.PrevHash = st.last
	if e.Time.IsZero() {
		e.Time = s.opts.Now().UTC()
	}
	raw, err := e.MarshalBinary()
	if err != nil {
		return appendResult{err: err}, nil
	}
	if len(p.reqs) > 0 && p.bytes+len(raw)+4096 > txnBudget {
		return appendResult{}, errFlush
	}
	p.bytes += len(raw) + 4096
	leaf := merkle.HashLeaf(raw)
	// Stage on a scratch copy so a TxnTooBig half-way leaves st untouched.
	next := st.clone()
	var setErr error
	set := func(k, v []byte) {
		if setErr == nil {
			setErr = p.txn.Set(k, v)
		}
	}
	set(seqKey(r.log, tagEntry, e.Seq), raw)
	next.tree.Append(leaf, func(level uint8, index uint64, h merkle.Hash) {
		set(nodeKey(r.log, level, index), append([]byte(nil), h[:]...))
	})
	next.last = leaf
	set(logKey(r.log, tagMeta), encodeMeta(next))
	if ik != nil {
		set(logKey(r.log, tagIdem, ik...), binary.BigEndian.AppendUint64(nil, e.Seq))
		set(seqKey(r.log, tagRev, e.Seq), ik)
	}
	if e.Seq == 0 {
		set(append(append([]byte(nil), prefixRegistry...), r.log...), nil)
	}
	if setErr != nil {
		return appendResult{}, setErr
	}
	*st = *next
	if ik != nil {
		p.idem[ikMap] = e.Seq
	}
	return appendResult{seq: e.Seq}, nil
}

func encodeMeta(st *logState) []byte {
	b := binary.BigEndian.AppendUint64(nil, st.tree.Size())
	b = append(b, st.last[:]...)
	for _, p := range st.tree.Peaks() {
		b = append(b, p[:]...)
	}
	return b
}

func decodeMeta(v []byte) (*logState, error) {
	if len(v) < 40 || (len(v)-40)%32 != 0 {
		return nil, fmt.Errorf("audit: corrupt log metadata")
	}
	size := binary.BigEndian.Uint64(v)
	var peaks []merkle.Hash
	for i := 40; i < len(v); i += 32 {
		peaks = append(peaks, merkle.Hash(v[i:i+32]))
	}
	tree, err := merkle.NewCompact(size, peaks)
	if err != nil {
		return nil, fmt.Errorf("audit: corrupt log metadata: %w", err)
	}
	return &logState{tree: tree, last: merkle.Hash(v[8:40])}, nil
}

func loadState(txn *badger.Txn, log string) (*logState, error) {
	item, err := txn.Get(logKey(log, tagMeta))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	return decodeMeta(v)
}

// Logs returns the names of all logs in the store, sorted. Errors: ErrClosed
// or a Badger error.
func (s *Store) Logs() ([]string, error) {
	var out []string
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixRegistry})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, string(it.Item().Key()[len(prefixRegistry):]))
		}
		return nil
	})
	return out, err
}

// Size returns the number of entries in log (0 for an unknown log). Errors:
// ErrClosed or a Badger error.
func (s *Store) Size(log string) (uint64, error) {
	var n uint64
	err := s.view(func(txn *badger.Txn) error {
		st, err := loadState(txn, log)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		n = st.tree.Size()
		return nil
	})
	return n, err
}

// Head returns the current unsigned tree head of log. Errors: ErrClosed or a
// Badger error; an unknown log has size 0 and the empty root.
func (s *Store) Head(log string) (Head, error) {
	h := Head{Origin: s.Origin(log), Root: merkle.EmptyRoot}
	err := s.view(func(txn *badger.Txn) error {
		st, err := loadState(txn, log)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		h.Size, h.Root = st.tree.Size(), st.tree.Root()
		return nil
	})
	return h, err
}

// Origin returns the checkpoint origin line used for log.
func (s *Store) Origin(log string) string { return s.opts.Origin + "/" + log }

// Checkpoint returns the current head of log as a signed C2SP checkpoint.
// Errors: ErrInvalidKey if no Signer is configured, ErrClosed, a signer or
// Badger error.
func (s *Store) Checkpoint(log string) ([]byte, error) {
	if s.opts.Signer == nil {
		return nil, fmt.Errorf("%w: no signer configured", ErrInvalidKey)
	}
	h, err := s.Head(log)
	if err != nil {
		return nil, err
	}
	return SignHead(h, s.opts.Signer)
}

// EntryBytes returns the stored canonical bytes of entries [from, to) of
// log. Errors: ErrRange if to exceeds the log size or from > to, ErrClosed,
// or a Badger error.
func (s *Store) EntryBytes(log string, from, to uint64) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(txn *badger.Txn) error {
		var size uint64
		if st, err := loadState(txn, log); err == nil {
			size = st.tree.Size()
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if from > to || to > size {
			return fmt.Errorf("%w: [%d,%d) of %d", ErrRange, from, to, size)
		}
		opt := badger.DefaultIteratorOptions
		opt.Prefix = logKey(log, tagEntry)
		it := txn.NewIterator(opt)
		defer it.Close()
		want := from
		for it.Seek(seqKey(log, tagEntry, from)); it.Valid() && want < to; it.Next() {
			k := it.Item().Key()
			if binary.BigEndian.Uint64(k[len(k)-8:]) != want {
				return fmt.Errorf("audit: entry %d missing from store", want)
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, v)
			want++
		}
		if want != to {
			return fmt.Errorf("audit: entry %d missing from store", want)
		}
		return nil
	})
	return out, err
}

// Entries returns the decoded entries [from, to) of log; errors as
// EntryBytes, plus ErrMalformed if stored bytes fail to parse.
func (s *Store) Entries(log string, from, to uint64) ([]*Entry, error) {
	raws, err := s.EntryBytes(log, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]*Entry, len(raws))
	for i, raw := range raws {
		if out[i], err = ParseEntry(raw); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type txnNodes struct {
	txn *badger.Txn
	log string
}

func (r txnNodes) Node(level uint8, index uint64) (merkle.Hash, error) {
	item, err := r.txn.Get(nodeKey(r.log, level, index))
	if err != nil {
		return merkle.Hash{}, fmt.Errorf("audit: node %d/%d: %w", level, index, err)
	}
	var h merkle.Hash
	err = item.Value(func(v []byte) error {
		if len(v) != 32 {
			return fmt.Errorf("audit: corrupt node")
		}
		copy(h[:], v)
		return nil
	})
	return h, err
}

func (s *Store) withNodes(log string, maxSize uint64, fn func(r merkle.NodeReader) error) error {
	return s.view(func(txn *badger.Txn) error {
		var size uint64
		if st, err := loadState(txn, log); err == nil {
			size = st.tree.Size()
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if maxSize > size {
			return fmt.Errorf("%w: size %d beyond log size %d", ErrRange, maxSize, size)
		}
		return fn(txnNodes{txn, log})
	})
}

// InclusionProof returns the RFC 6962 inclusion proof of entry index in the
// tree of the given size; O(log n) reads. Errors: ErrRange, ErrClosed or a
// Badger error.
func (s *Store) InclusionProof(log string, index, size uint64) ([]merkle.Hash, error) {
	var proof []merkle.Hash
	err := s.withNodes(log, size, func(r merkle.NodeReader) error {
		if index >= size {
			return fmt.Errorf("%w: index %d, size %d", ErrRange, index, size)
		}
		var err error
		proof, err = merkle.InclusionProof(r, index, size)
		return err
	})
	return proof, err
}

// ConsistencyProof returns the RFC 6962 consistency proof from size m to
// size n of log. Errors: ErrRange, ErrClosed or a Badger error.
func (s *Store) ConsistencyProof(log string, m, n uint64) ([]merkle.Hash, error) {
	var proof []merkle.Hash
	err := s.withNodes(log, n, func(r merkle.NodeReader) error {
		if m > n {
			return fmt.Errorf("%w: %d > %d", ErrRange, m, n)
		}
		var err error
		proof, err = merkle.ConsistencyProof(r, m, n)
		return err
	})
	return proof, err
}

// RootAt returns the root hash of log at a past size.
func (s *Store) RootAt(log string, size uint64) (merkle.Hash, error) {
	var h merkle.Hash
	err := s.withNodes(log, size, func(r merkle.NodeReader) error {
		var err error
		h, err = merkle.RootAt(r, size)
		return err
	})
	return h, err
}
