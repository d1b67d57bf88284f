package protocol

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/tandem-dev/tandem/psi"
)

// PSI protocol (DESIGN §2, §4), initiator I (bank) and responder R (partner):
//
//	1. I→R psi.hello   {suite, reveal, kinds, n_I}
//	   R→I psi.hello   {rows L, k_R}              — n_R = L·k_R elements
//	2. I→R psi.i_elems  H(kind,x)^a for I's ids, in I's enumeration order
//	   R→I psi.i_tags   tag(H(x)^{ab}) per element, same order (count mode:
//	                    shuffled, so I learns only the number of matches)
//	   R→I psi.r_elems  H(kind,y)^b for k_R id slots of each of L rows, in
//	                    R's shuffled row order; empty slots carry random
//	                    elements, so I learns nothing about which ids R lacks
//	3. I: tag(H(y)^{ba}) per element, sort both tag lists (spilling to disk),
//	   merge, resolve each R position to at most one I row.
//	4. both mode: I→R psi.matches (ascending matched positions)
//	5. I→R psi.done {n_I sent}; R→I psi.done {}
//
// Everything either side sends is group elements, truncated tags, sizes and
// this metadata (protocol/psi_privacy_test.go checks it on the wire).

// Messages are chunked at this many elements (≤ 512 KiB per frame).
var psiChunk = 16384 // a var so tests can force many small chunks

// PSIConfig parameterises one PSI job on one side.
type PSIConfig struct {
	JobID   string
	Reveal  psi.Reveal
	Suite   psi.Suite
	TempDir string // spill directory for the sorters
	// StateDir, if set, holds the job's checkpoints (psi_state.go) so an
	// interrupted job resumes from its last checkpointed chunk. It holds
	// the key seed: the caller deletes it when the job ends.
	StateDir string
	// MemBudget bounds each sorter's in-memory buffer (default 32 MiB; at
	// most one sorter fills its buffer at a time).
	MemBudget int
	Workers   int       // 0 = GOMAXPROCS
	Seed      [32]byte  // responder: the job's shuffle seed (secret, persisted)
	Rand      io.Reader // key generation; nil = crypto/rand
}

// IDSource enumerates one side's identifiers: rows in ascending order, and
// for each row its valid canonical ids with the index of the id slot (one
// slot per id column; Kinds[slot] is that column's kind).
type IDSource struct {
	Rows  int64    // rows of the dataset (the responder's L)
	Kinds []string // kind of each id slot, e.g. ["cn_mobile", "cn_id"]
	Count int64    // number of ids Each yields (for the tag length)
	Each  func(ctx context.Context, fn func(row int64, slot int, canon []byte) error) error
}

// PSIResult is one side's summary of a PSI job. It holds sizes only.
type PSIResult struct {
	Reveal            string `json:"reveal"`
	Suite             string `json:"suite"`
	TagBytes          int    `json:"tag_bytes"`
	InitiatorElements int64  `json:"initiator_elements"`
	ResponderRows     int64  `json:"responder_rows"`
	ResponderElements int64  `json:"responder_elements"`
	// Length and Matched describe the alignment (DESIGN §4); on the
	// responder in initiator mode Matched is unknown and omitted.
	Length       uint64 `json:"alignment_length"`
	Intersection int64  `json:"intersection,omitempty"`
	BytesSent    int64  `json:"bytes_sent"`
	Transcript   string `json:"transcript_digest"`
	// ResumedChunks counts the chunks a resumed run did not redo.
	ResumedChunks uint64 `json:"resumed_chunks,omitempty"`
}

type psiHelloI struct {
	Suite  string    `json:"suite"`
	Reveal string    `json:"reveal"`
	Kinds  []string  `json:"kinds"`
	N      int64     `json:"n"`
	Resume psiResume `json:"resume"` // chunks the initiator already holds
}

type psiHelloR struct {
	Rows  int64 `json:"rows"`
	Slots int   `json:"slots"`
}

type psiDone struct {
	N int64 `json:"n"`
}

// ErrPSIMismatch is returned when the two sides disagree on parameters or
// the peer's sizes contradict what it announced.
var ErrPSIMismatch = errors.New("protocol: psi parameters mismatch")

func (c *PSIConfig) defaults() {
	if c.MemBudget == 0 {
		c.MemBudget = 32 << 20
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
}

// domain separates identifiers by job and id kind before hashing.
func psiDomain(jobID, kind string) []byte {
	return []byte("tandem/v1 psi\n" + jobID + "\n" + kind)
}

func sendJSON(ctx context.Context, t Transport, step string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.Send(ctx, Msg{Step: step, Payload: b, Last: true})
}

func recvJSON(ctx context.Context, t Transport, step string, v any) error {
	m, err := expect(ctx, t, step, 0)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(m.Payload, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnexpected, step, err)
	}
	return nil
}

// batcher groups identifiers by hashing domain, masks full batches and
// hands them on with their slot-indexed positions.
type batcher struct {
	suite   psi.Suite
	key     *psi.Key
	domains [][]byte
	workers int
	ids     [][][]byte // per domain: pending ids (copied)
	idx     [][]uint64 // per domain: caller's index per pending id
	arena   [][]byte
	out     func(idx []uint64, elems []byte) error
	skip    uint64 // chunks already delivered in an earlier attempt: not masked again
	chunks  uint64
}

func newBatcher(s psi.Suite, k *psi.Key, domains [][]byte, workers int, out func([]uint64, []byte) error) *batcher {
	return &batcher{suite: s, key: k, domains: domains, workers: workers, out: out,
		ids: make([][][]byte, len(domains)), idx: make([][]uint64, len(domains)), arena: make([][]byte, len(domains))}
}

func (b *batcher) add(d int, index uint64, id []byte) error {
	// Ids are copied into a per-domain arena: the caller's slice is reused.
	start := len(b.arena[d])
	b.arena[d] = append(b.arena[d], id...)
	b.ids[d] = append(b.ids[d], b.arena[d][start:len(b.arena[d]):len(b.arena[d])])
	b.idx[d] = append(b.idx[d], index)
	if len(b.ids[d]) == psiChunk {
		return b.flush(d)
	}
	return nil
}

func (b *batcher) flush(d int) error {
	if len(b.ids[d]) == 0 {
		return nil
	}
	if b.chunks++; b.chunks <= b.skip {
		b.ids[d], b.idx[d], b.arena[d] = b.ids[d][:0], b.idx[d][:0], b.arena[d][:0]
		return nil
	}
	// Re-slice ids against the final arena (appends may have moved it).
	off := 0
	for i, id := range b.ids[d] {
		n := len(id)
		b.ids[d][i] = b.arena[d][off : off+n : off+n]
		off += n
	}
	elems := make([]byte, len(b.ids[d])*b.suite.ElementSize())
	b.suite.HashMask(b.key, b.domains[d], b.ids[d], elems, b.workers)
	idx := b.idx[d]
	b.ids[d], b.idx[d], b.arena[d] = b.ids[d][:0], nil, b.arena[d][:0]
	return b.out(idx, elems)
}

func (b *batcher) flushAll() error {
	for d := range b.domains {
		if err := b.flush(d); err != nil {
			return err
		}
	}
	return nil
}

// RunPSIInitiator runs the initiator side and writes its alignment to out
// (nil in count mode). The key is fresh per run and zeroed on return.
func RunPSIInitiator(ctx context.Context, t Transport, cfg PSIConfig, src IDSource, out io.Writer, progress func(string, float64)) (PSIResult, error) {
	cfg.defaults()
	res := PSIResult{Reveal: cfg.Reveal.String(), Suite: cfg.Suite.Name(), InitiatorElements: src.Count}
	key, err := psiKey(cfg.StateDir, cfg.Rand)
	if err != nil {
		return res, err
	}
	defer key.Zero()
	ck, resuming := loadInitCheckpoint(cfg.StateDir)
	if resuming && (ck.Reveal != cfg.Reveal.String() || ck.N != src.Count) {
		resuming, ck = false, initCheckpoint{}
	}
	if cfg.Reveal == psi.RevealCount && !ck.IDone {
		// Count mode: the responder's shuffled tag order is not
		// reproducible, so an unfinished tag stream restarts.
		ck.IChunks, ck.IRecords = 0, 0
	}
	if err := sendJSON(ctx, t, "psi.hello", psiHelloI{Suite: cfg.Suite.Name(), Reveal: cfg.Reveal.String(), Kinds: src.Kinds, N: src.Count, Resume: ck.psiResume}); err != nil {
		return res, err
	}
	var hr psiHelloR
	if err := recvJSON(ctx, t, "psi.hello", &hr); err != nil {
		return res, err
	}
	if hr.Rows < 0 || hr.Slots < 1 || hr.Slots > len(src.Kinds) || hr.Rows > 1<<40 {
		return res, fmt.Errorf("%w: responder announced %d rows × %d slots", ErrPSIMismatch, hr.Rows, hr.Slots)
	}
	nR := hr.Rows * int64(hr.Slots)
	res.ResponderRows, res.ResponderElements = hr.Rows, nR
	ts := psi.TagSize(max(src.Count, 1), max(nR, 1))
	res.TagBytes = ts
	es := cfg.Suite.ElementSize()
	kI := int64(len(src.Kinds))
	if resuming && (ck.TagSize != ts || ck.Rows != hr.Rows || ck.Slots != hr.Slots) {
		// Inputs are digest-checked before a resume, so this means a
		// corrupt checkpoint: drop it; the next attempt starts afresh.
		os.Remove(filepath.Join(cfg.StateDir, "checkpoint.json"))
		return res, fmt.Errorf("%w: checkpoint does not match the job (discarded; the job restarts)", ErrPSIMismatch)
	}
	ck.Reveal, ck.N, ck.TagSize, ck.Rows, ck.Slots = cfg.Reveal.String(), src.Count, ts, hr.Rows, hr.Slots
	if ck.IChunks > 0 || ck.RChunks > 0 {
		res.ResumedChunks = ck.IChunks + ck.RChunks
	}
	st, err := openInitState(cfg.StateDir, cfg.TempDir, ck, ts+8)
	if err != nil {
		return res, err
	}
	defer st.close()

	total := float64(src.Count + 2*nR + 1)
	done := ck.IRecords + 2*ck.RRecords
	report := func(phase string, n int64) {
		done += n
		if progress != nil {
			progress(phase, min(0.95, float64(done)/total))
		}
	}

	// Sender: mask own ids and stream them (from the first chunk whose tags
	// we do not hold); the FIFO carries each chunk's element indices to the
	// receiver, which gets the tags back in order.
	fifo := make(chan []uint64, 1024)
	sendErr := make(chan error, 1)
	senderDone := make(chan struct{})
	sctx, cancel := context.WithCancel(ctx)
	// On every return path stop the sender and wait for it, before the
	// deferred key.Zero runs: it is still masking with the key.
	defer func() { cancel(); <-senderDone }()
	go func() {
		defer close(senderDone)
		defer close(fifo)
		if ck.IDone {
			sendErr <- nil
			return
		}
		seq := ck.IChunks
		var yielded int64
		domains := make([][]byte, len(src.Kinds))
		for i, k := range src.Kinds {
			domains[i] = psiDomain(cfg.JobID, k)
		}
		var pending []byte // one chunk held back so the last can be flagged
		var pendingIdx []uint64
		emit := func(last bool) error {
			if pending == nil && !last {
				return nil
			}
			if cfg.Reveal != psi.RevealCount { // count mode: tags come back shuffled
				select {
				case fifo <- pendingIdx:
				case <-sctx.Done():
					return sctx.Err()
				}
			}
			err := t.Send(sctx, Msg{Step: "psi.i_elems", Seq: seq, Payload: pending, Last: last, Total: uint64(src.Count)})
			seq++
			pending, pendingIdx = nil, nil
			return err
		}
		b := newBatcher(cfg.Suite, key, domains, cfg.Workers, func(idx []uint64, elems []byte) error {
			if err := emit(false); err != nil {
				return err
			}
			pending, pendingIdx = elems, idx
			return nil
		})
		b.skip = ck.IChunks
		err := src.Each(sctx, func(row int64, slot int, canon []byte) error {
			yielded++
			return b.add(slot, uint64(row)*uint64(kI)+uint64(slot), canon)
		})
		if err == nil {
			err = b.flushAll()
		}
		if err == nil && yielded != src.Count {
			err = fmt.Errorf("protocol: psi: dataset yielded %d ids, profile announced %d (file changed since registration?)", yielded, src.Count)
		}
		if err == nil {
			err = emit(true)
		}
		sendErr <- err
	}()

	// Receiver: tags of our elements, and the responder's elements, both
	// appended to checkpointed record files.
	rSeen := ck.RRecords
	tagsDone, rDone := ck.IDone, ck.RDone
	tagSeq, rSeq := ck.IChunks, ck.RChunks
	countIdx := uint64(ck.IRecords)
	rec := make([]byte, ts+8)
	buf := make([]byte, psiChunk*es)
	for !tagsDone || !rDone {
		m, err := t.Recv(ctx)
		if err != nil {
			return res, err
		}
		if len(m.Payload) > MaxPayload {
			return res, fmt.Errorf("%w: oversized payload", ErrUnexpected)
		}
		switch {
		case m.Step == "psi.i_tags" && !tagsDone && m.Seq == tagSeq:
			tagSeq++
			if len(m.Payload)%ts != 0 {
				return res, fmt.Errorf("%w: tag chunk of %d bytes", ErrUnexpected, len(m.Payload))
			}
			n := len(m.Payload) / ts
			var idx []uint64
			if cfg.Reveal != psi.RevealCount {
				idx = <-fifo
				if len(idx) != n {
					return res, fmt.Errorf("%w: %d tags for a chunk of %d elements", ErrPSIMismatch, n, len(idx))
				}
			}
			for i := range n {
				copy(rec, m.Payload[i*ts:(i+1)*ts])
				if idx != nil {
					binary.BigEndian.PutUint64(rec[ts:], idx[i])
				} else {
					binary.BigEndian.PutUint64(rec[ts:], countIdx)
					countIdx++
				}
				if _, err := st.iw.Write(rec); err != nil {
					return res, err
				}
			}
			if err := st.chunk(true, n, m.Last); err != nil {
				return res, err
			}
			report("matching", int64(n))
			tagsDone = m.Last
		case m.Step == "psi.r_elems" && !rDone && m.Seq == rSeq:
			rSeq++
			if len(m.Payload)%es != 0 {
				return res, fmt.Errorf("%w: element chunk of %d bytes", ErrUnexpected, len(m.Payload))
			}
			n := len(m.Payload) / es
			if rSeen+int64(n) > nR {
				return res, fmt.Errorf("%w: responder sent more than %d elements", ErrPSIMismatch, nR)
			}
			if err := cfg.Suite.Remask(key, m.Payload, buf[:len(m.Payload)], cfg.Workers); err != nil {
				return res, err
			}
			for i := range n {
				psi.Tag(rec[:ts], buf[i*es:(i+1)*es])
				binary.BigEndian.PutUint64(rec[ts:], uint64(rSeen+int64(i)))
				if _, err := st.rw.Write(rec); err != nil {
					return res, err
				}
			}
			if err := st.chunk(false, n, m.Last); err != nil {
				return res, err
			}
			rSeen += int64(n)
			report("matching", 2*int64(n))
			rDone = m.Last
		default:
			return res, fmt.Errorf("%w: %s#%d", ErrUnexpected, m.Step, m.Seq)
		}
	}
	if err := <-sendErr; err != nil {
		return res, err
	}
	if rSeen != nR {
		return res, fmt.Errorf("%w: responder sent %d of %d elements", ErrPSIMismatch, rSeen, nR)
	}
	if cfg.Reveal != psi.RevealCount && st.ck.IRecords != src.Count {
		return res, fmt.Errorf("%w: got %d tags for %d elements", ErrPSIMismatch, st.ck.IRecords, src.Count)
	}
	if err := st.checkpoint(); err != nil {
		return res, err
	}
	if progress != nil {
		progress("intersecting", 0.96)
	}
	// Each list is sorted before the next is fed, so at most one sorter
	// budget is in memory at a time (a spilled, sorted Sorter keeps only its
	// merge buffers).
	sortI := psi.NewSorter(cfg.TempDir, ts+8, cfg.MemBudget)
	defer sortI.Close()
	if err := st.feed(st.i, sortI); err != nil {
		return res, err
	}
	itI, err := sortI.Sort()
	if err != nil {
		return res, err
	}
	sortR := psi.NewSorter(cfg.TempDir, ts+8, cfg.MemBudget)
	defer sortR.Close()
	if err := st.feed(st.r, sortR); err != nil {
		return res, err
	}
	itR, err := sortR.Sort()
	if err != nil {
		return res, err
	}

	matched, err := resolveMatches(cfg, itI, itR, ts, kI, int64(hr.Slots), src.Rows)
	if err != nil {
		return res, err
	}
	defer matched.Close()
	res.Intersection = matched.Len()
	switch cfg.Reveal {
	case psi.RevealInitiator:
		res.Length = uint64(hr.Rows)
		err = writeAlignmentAndSend(ctx, nil, out, psi.AlignmentHeader{Reveal: cfg.Reveal, Length: res.Length, Matched: uint64(matched.Len())}, matched)
	case psi.RevealBoth:
		res.Length = uint64(matched.Len())
		err = writeAlignmentAndSend(ctx, t, out, psi.AlignmentHeader{Reveal: cfg.Reveal, Length: res.Length, Matched: res.Length}, matched)
	case psi.RevealCount:
		res.Length = 0
	}
	if err != nil {
		return res, err
	}
	if err := sendJSON(ctx, t, "psi.done", psiDone{N: src.Count}); err != nil {
		return res, err
	}
	var ack psiDone
	if err := recvJSON(ctx, t, "psi.done", &ack); err != nil {
		return res, err
	}
	if progress != nil {
		progress("done", 1)
	}
	return res, nil
}

// resolveMatches merges the two sorted tag lists and resolves every
// responder position to at most one initiator row and every initiator row
// to at most one position: for each position (ascending), the match through
// the lowest initiator id slot whose row is still free wins. It returns the
// pairs (position ‖ row), ascending by position; in count mode just the
// distinct matched positions.
func resolveMatches(cfg PSIConfig, itI, itR psi.Iterator, ts int, kI, kR, rowsI int64) (*psi.Sorter, error) {
	// Candidate pairs: position ‖ slotI ‖ rowI, so sorting orders them by
	// position, then by slot priority.
	cand := psi.NewSorter(cfg.TempDir, 24, cfg.MemBudget)
	defer cand.Close()
	var rec [24]byte
	_, err := psi.IntersectSorted(itI, itR, ts, func(ia, ib uint64) error {
		binary.BigEndian.PutUint64(rec[0:], ib/uint64(kR))
		if cfg.Reveal == psi.RevealCount {
			binary.BigEndian.PutUint64(rec[8:], 0)
			binary.BigEndian.PutUint64(rec[16:], 0)
		} else {
			binary.BigEndian.PutUint64(rec[8:], ia%uint64(kI))
			binary.BigEndian.PutUint64(rec[16:], ia/uint64(kI))
		}
		return cand.Add(rec[:])
	})
	if err != nil {
		return nil, err
	}
	it, err := cand.Sort()
	if err != nil {
		return nil, err
	}
	out := psi.NewSorter(cfg.TempDir, 16, cfg.MemBudget)
	used := make([]uint64, (rowsI+63)/64) // bitset of rows already matched: n_I/8 bytes
	lastPos := ^uint64(0)
	var pair [16]byte
	for it.Next() {
		r := it.Record()
		pos, row := binary.BigEndian.Uint64(r[0:]), binary.BigEndian.Uint64(r[16:])
		if pos == lastPos {
			continue
		}
		if cfg.Reveal != psi.RevealCount {
			if row >= uint64(rowsI) {
				return nil, fmt.Errorf("%w: row %d out of range", ErrPSIMismatch, row)
			}
			if used[row/64]&(1<<(row%64)) != 0 {
				continue
			}
			used[row/64] |= 1 << (row % 64)
		}
		lastPos = pos
		binary.BigEndian.PutUint64(pair[0:], pos)
		binary.BigEndian.PutUint64(pair[8:], row)
		if err := out.Add(pair[:]); err != nil {
			out.Close()
			return nil, err
		}
	}
	if err := it.Err(); err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}

// writeAlignmentAndSend writes the alignment and, when t is not nil
// (reveal=both), streams the matched responder positions to the peer and
// renumbers positions to ranks 0..M-1. One pass over the sorted pairs.
func writeAlignmentAndSend(ctx context.Context, t Transport, w io.Writer, h psi.AlignmentHeader, pairs *psi.Sorter) error {
	var aw *psi.AlignmentWriter
	if w != nil {
		var err error
		if aw, err = psi.NewAlignmentWriter(w, h); err != nil {
			return err
		}
	}
	it, err := pairs.Sort()
	if err != nil {
		return err
	}
	var seq uint64
	buf := make([]byte, 0, psiChunk*8)
	for rank := uint64(0); it.Next(); rank++ {
		r := it.Record()
		pos := binary.BigEndian.Uint64(r)
		if t != nil {
			buf = append(buf, r[:8]...)
			if len(buf) == cap(buf) {
				if err := t.Send(ctx, Msg{Step: "psi.matches", Seq: seq, Payload: buf}); err != nil {
					return err
				}
				seq++
				buf = buf[:0]
			}
			pos = rank
		}
		if aw != nil {
			if err := aw.Append(pos, binary.BigEndian.Uint64(r[8:])); err != nil {
				return err
			}
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	if t != nil {
		if err := t.Send(ctx, Msg{Step: "psi.matches", Seq: seq, Payload: buf, Last: true}); err != nil {
			return err
		}
	}
	if aw != nil {
		return aw.Close()
	}
	return nil
}

// RunPSIResponder runs the responder side. Its alignment (written to out;
// nil in count mode) maps every shuffled position to its row in initiator
// mode, only the matched positions in both mode.
//
// open returns the responder's identifiers restricted to the id kinds the
// initiator announced (see AllowKinds).
func RunPSIResponder(ctx context.Context, t Transport, cfg PSIConfig, open func(initiatorKinds []string) (IDSource, error), out io.Writer, progress func(string, float64)) (PSIResult, error) {
	cfg.defaults()
	res := PSIResult{Reveal: cfg.Reveal.String(), Suite: cfg.Suite.Name()}
	var hi psiHelloI
	if err := recvJSON(ctx, t, "psi.hello", &hi); err != nil {
		return res, err
	}
	if hi.Suite != cfg.Suite.Name() || hi.Reveal != cfg.Reveal.String() {
		return res, fmt.Errorf("%w: initiator wants %s/%s, agreed %s/%s", ErrPSIMismatch, hi.Suite, hi.Reveal, cfg.Suite.Name(), cfg.Reveal)
	}
	if hi.N < 0 || hi.N > 1<<40 || len(hi.Kinds) == 0 || len(hi.Kinds) > 16 {
		return res, fmt.Errorf("%w: initiator announced %d ids of %d kinds", ErrPSIMismatch, hi.N, len(hi.Kinds))
	}
	src, err := open(hi.Kinds)
	if err != nil {
		return res, err
	}
	res.ResponderRows = src.Rows
	kR := int64(len(src.Kinds))
	if kR == 0 || kR > 255 {
		return res, fmt.Errorf("%w: responder has %d id slots", ErrPSIMismatch, kR)
	}
	nR := src.Rows * kR
	res.InitiatorElements, res.ResponderElements = hi.N, nR
	ts := psi.TagSize(max(hi.N, 1), max(nR, 1))
	res.TagBytes = ts
	if err := sendJSON(ctx, t, "psi.hello", psiHelloR{Rows: src.Rows, Slots: int(kR)}); err != nil {
		return res, err
	}
	key, err := psiKey(cfg.StateDir, cfg.Rand)
	if err != nil {
		return res, err
	}
	defer key.Zero()
	rs := hi.Resume
	if rs.IRecords < 0 || rs.IRecords > hi.N || (cfg.Reveal == psi.RevealCount && !rs.IDone && rs.IChunks != 0) {
		return res, fmt.Errorf("%w: initiator resumes at %d chunks / %d of %d ids", ErrPSIMismatch, rs.IChunks, rs.IRecords, hi.N)
	}
	res.ResumedChunks = rs.IChunks + rs.RChunks
	perm, err := psi.Permutation(cfg.Seed, src.Rows)
	if err != nil {
		return res, err
	}
	total := float64(hi.N + 2*nR + 1)
	progressCh := make(chan int64, 64)
	progDone := make(chan struct{})
	go func() {
		defer close(progDone)
		var done int64
		for n := range progressCh {
			done += n
			if progress != nil {
				progress("matching", min(0.95, float64(done)/total))
			}
		}
	}()
	defer func() { close(progressCh); <-progDone }()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- respondTags(ctx, t, cfg, key, hi.N, ts, rs, progressCh) }()
	go func() { errc <- sendOwnElements(ctx, t, cfg, key, src, perm, rs, progressCh) }()
	// Wait for both workers even after a failure: they send progress on a
	// channel closed when this function returns.
	var firstErr error
	for range 2 {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	if firstErr != nil {
		return res, firstErr
	}

	switch cfg.Reveal {
	case psi.RevealInitiator:
		res.Length = uint64(src.Rows)
		if out != nil {
			aw, err := psi.NewAlignmentWriter(out, psi.AlignmentHeader{Reveal: cfg.Reveal, Length: res.Length, Matched: res.Length})
			if err != nil {
				return res, err
			}
			for pos := uint64(0); pos < res.Length; pos++ {
				if err := aw.Append(pos, perm.Apply(pos)); err != nil {
					return res, err
				}
			}
			if err := aw.Close(); err != nil {
				return res, err
			}
		}
	case psi.RevealBoth:
		positions, err := recvMatches(ctx, t, uint64(src.Rows))
		if err != nil {
			return res, err
		}
		res.Length, res.Intersection = uint64(len(positions)), int64(len(positions))
		if out != nil {
			aw, err := psi.NewAlignmentWriter(out, psi.AlignmentHeader{Reveal: cfg.Reveal, Length: res.Length, Matched: res.Length})
			if err != nil {
				return res, err
			}
			for rank, pos := range positions {
				if err := aw.Append(uint64(rank), perm.Apply(pos)); err != nil {
					return res, err
				}
			}
			if err := aw.Close(); err != nil {
				return res, err
			}
		}
	}
	var d psiDone
	if err := recvJSON(ctx, t, "psi.done", &d); err != nil {
		return res, err
	}
	if d.N != hi.N {
		return res, fmt.Errorf("%w: initiator sent %d ids, announced %d", ErrPSIMismatch, d.N, hi.N)
	}
	if err := sendJSON(ctx, t, "psi.done", psiDone{}); err != nil {
		return res, err
	}
	if progress != nil {
		progress("done", 1)
	}
	return res, nil
}

// respondTags raises the initiator's elements to our key and returns their
// tags: in order (initiator/both), or all at once in a random order (count).
func respondTags(ctx context.Context, t Transport, cfg PSIConfig, key *psi.Key, n int64, ts int, rs psiResume, progress chan<- int64) error {
	if rs.IDone {
		return nil
	}
	es := cfg.Suite.ElementSize()
	buf := make([]byte, psiChunk*es)
	var shuffled *psi.Sorter
	if cfg.Reveal == psi.RevealCount {
		shuffled = psi.NewSorter(cfg.TempDir, 8+ts, cfg.MemBudget)
		defer shuffled.Close()
	}
	seen := rs.IRecords
	rec := make([]byte, 8+ts)
	for seq := rs.IChunks; ; seq++ {
		m, err := expect(ctx, t, "psi.i_elems", seq)
		if err != nil {
			return err
		}
		if len(m.Payload)%es != 0 || len(m.Payload) > psiChunk*es {
			return fmt.Errorf("%w: element chunk of %d bytes", ErrUnexpected, len(m.Payload))
		}
		k := len(m.Payload) / es
		if seen += int64(k); seen > n {
			return fmt.Errorf("%w: initiator sent more than %d elements", ErrPSIMismatch, n)
		}
		if err := cfg.Suite.Remask(key, m.Payload, buf[:len(m.Payload)], cfg.Workers); err != nil {
			return err
		}
		tags := make([]byte, k*ts)
		for i := range k {
			psi.Tag(tags[i*ts:(i+1)*ts], buf[i*es:(i+1)*es])
		}
		if shuffled == nil {
			if err := t.Send(ctx, Msg{Step: "psi.i_tags", Seq: seq, Payload: tags, Last: m.Last}); err != nil {
				return err
			}
		} else {
			for i := range k {
				if _, err := io.ReadFull(cfg.Rand, rec[:8]); err != nil {
					return err
				}
				copy(rec[8:], tags[i*ts:(i+1)*ts])
				if err := shuffled.Add(rec); err != nil {
					return err
				}
			}
		}
		progress <- int64(k)
		if m.Last {
			break
		}
	}
	if seen != n {
		return fmt.Errorf("%w: initiator sent %d of %d elements", ErrPSIMismatch, seen, n)
	}
	if shuffled == nil {
		return nil
	}
	it, err := shuffled.Sort()
	if err != nil {
		return err
	}
	var seq uint64
	out := make([]byte, 0, psiChunk*ts)
	for it.Next() {
		out = append(out, it.Record()[8:]...)
		if len(out) == cap(out) {
			if err := t.Send(ctx, Msg{Step: "psi.i_tags", Seq: seq, Payload: out}); err != nil {
				return err
			}
			seq++
			out = make([]byte, 0, psiChunk*ts)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	return t.Send(ctx, Msg{Step: "psi.i_tags", Seq: seq, Payload: out, Last: true})
}

// sendOwnElements masks every id slot of every row (random elements for
// empty slots), orders them by shuffled position through an external sort,
// and streams them.
func sendOwnElements(ctx context.Context, t Transport, cfg PSIConfig, key *psi.Key, src IDSource, perm *psi.Perm, rs psiResume, progress chan<- int64) error {
	if rs.RDone {
		return nil
	}
	es := cfg.Suite.ElementSize()
	kR := len(src.Kinds)
	per := (psiChunk / kR) * kR
	if d, ok := respElemsDone(cfg.StateDir); ok && d.Count == src.Rows*int64(kR) {
		return replayOwnElements(ctx, t, cfg, d.Count, per, src.Rows, rs.RChunks, progress)
	}
	recSize := 8 + 1 + es // position ‖ slot ‖ element
	sorter := psi.NewSorter(cfg.TempDir, recSize, cfg.MemBudget)
	defer sorter.Close()
	domains := make([][]byte, kR+1)
	for i, k := range src.Kinds {
		domains[i] = psiDomain(cfg.JobID, k)
	}
	domains[kR] = psiDomain(cfg.JobID, "dummy")
	rec := make([]byte, recSize)
	b := newBatcher(cfg.Suite, key, domains, cfg.Workers, func(idx []uint64, elems []byte) error {
		for i, x := range idx {
			row, slot := x/uint64(kR), x%uint64(kR)
			binary.BigEndian.PutUint64(rec, perm.Invert(row))
			rec[8] = byte(slot)
			copy(rec[9:], elems[i*es:(i+1)*es])
			if err := sorter.Add(rec); err != nil {
				return err
			}
		}
		progress <- int64(len(idx))
		return nil
	})
	kindIdx := map[string]int{}
	for i, k := range src.Kinds {
		kindIdx[k] = i
	}
	present := make([]bool, kR)
	var cur int64 = -1
	var dummy [16]byte
	// closeRow gives every empty slot of row a random element, so the
	// initiator cannot tell which ids the row lacks.
	closeRow := func(row int64) error {
		for s := range kR {
			if present[s] {
				present[s] = false
				continue
			}
			if _, err := io.ReadFull(rand.Reader, dummy[:]); err != nil {
				return err
			}
			if err := b.add(kR, uint64(row)*uint64(kR)+uint64(s), dummy[:]); err != nil {
				return err
			}
		}
		return nil
	}
	// closeUpTo closes the current row and every row before `to`.
	closeUpTo := func(to int64) error {
		for r := max(cur, 0); r < to; r++ {
			if err := closeRow(r); err != nil {
				return err
			}
		}
		return nil
	}
	err := src.Each(ctx, func(row int64, slot int, canon []byte) error {
		if row < cur || row >= src.Rows || slot < 0 || slot >= kR {
			return fmt.Errorf("protocol: psi: id source out of order")
		}
		if row != cur {
			if err := closeUpTo(row); err != nil {
				return err
			}
			cur = row
		}
		if present[slot] {
			return nil // one id per slot: a slot is one column
		}
		present[slot] = true
		return b.add(slot, uint64(row)*uint64(kR)+uint64(slot), canon)
	})
	if err != nil {
		return err
	}
	if err := closeUpTo(src.Rows); err != nil {
		return err
	}
	if err := b.flushAll(); err != nil {
		return err
	}
	if sorter.Len() != src.Rows*int64(kR) {
		return fmt.Errorf("protocol: psi: built %d elements for %d rows × %d slots", sorter.Len(), src.Rows, kR)
	}
	it, err := sorter.Sort()
	if err != nil {
		return err
	}
	// The sorted stream is also persisted (with StateDir), so a resumed job
	// resends from any chunk without hashing and sorting again.
	var persist *bufio.Writer
	var pf *os.File
	if cfg.StateDir != "" {
		if pf, err = os.OpenFile(filepath.Join(cfg.StateDir, "r_elems.bin"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600); err != nil {
			return err
		}
		defer pf.Close()
		persist = bufio.NewWriterSize(pf, 1<<20)
	}
	out := make([]byte, 0, per*es)
	var seq uint64
	chunk := func(last bool) error {
		if persist != nil {
			if _, err := persist.Write(out); err != nil {
				return err
			}
		}
		if seq >= rs.RChunks { // chunks before were received in an earlier attempt
			if err := t.Send(ctx, Msg{Step: "psi.r_elems", Seq: seq, Payload: out, Last: last, Total: uint64(src.Rows)}); err != nil {
				return err
			}
		}
		progress <- int64(len(out) / es)
		seq++
		out = out[:0]
		return nil
	}
	for it.Next() {
		out = append(out, it.Record()[9:]...)
		if len(out) == cap(out) {
			if err := chunk(false); err != nil {
				return err
			}
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	if err := chunk(true); err != nil {
		return err
	}
	if persist == nil {
		return nil
	}
	if err := persist.Flush(); err != nil {
		return err
	}
	if err := pf.Sync(); err != nil {
		return err
	}
	done, _ := json.Marshal(respElems{Count: sorter.Len()})
	return writeSynced(filepath.Join(cfg.StateDir, "r_elems.done"), done)
}

// replayOwnElements resends the persisted element stream from chunk from.
func replayOwnElements(ctx context.Context, t Transport, cfg PSIConfig, count int64, per int, rows int64, from uint64, progress chan<- int64) error {
	es := int64(cfg.Suite.ElementSize())
	f, err := os.Open(filepath.Join(cfg.StateDir, "r_elems.bin"))
	if err != nil {
		return err
	}
	defer f.Close()
	full := uint64(count / int64(per)) // chunks before the last (maybe empty) one
	buf := make([]byte, int64(per)*es)
	progress <- int64(from) * int64(per)
	for c := from; c <= full; c++ {
		n := int64(per)
		if c == full {
			n = count - int64(full)*int64(per)
		}
		if _, err := f.ReadAt(buf[:n*es], int64(c)*int64(per)*es); err != nil {
			return fmt.Errorf("protocol: psi: read persisted elements: %w", err)
		}
		if err := t.Send(ctx, Msg{Step: "psi.r_elems", Seq: c, Payload: buf[:n*es], Last: c == full, Total: uint64(rows)}); err != nil {
			return err
		}
		progress <- n
	}
	return nil
}

// recvMatches receives the ascending matched positions (reveal=both).
func recvMatches(ctx context.Context, t Transport, L uint64) ([]uint64, error) {
	var out []uint64
	for seq := uint64(0); ; seq++ {
		m, err := expect(ctx, t, "psi.matches", seq)
		if err != nil {
			return nil, err
		}
		if len(m.Payload)%8 != 0 {
			return nil, fmt.Errorf("%w: matches chunk of %d bytes", ErrUnexpected, len(m.Payload))
		}
		for i := 0; i < len(m.Payload); i += 8 {
			p := binary.BigEndian.Uint64(m.Payload[i:])
			if p >= L || (len(out) > 0 && p <= out[len(out)-1]) {
				return nil, fmt.Errorf("%w: matched positions not ascending within [0,%d)", ErrUnexpected, L)
			}
			out = append(out, p)
		}
		if m.Last {
			return out, nil
		}
	}
}

// CommonSlots returns the indices of the responder's id slots whose kind
// the initiator also uses, in the responder's order; an error if none.
func CommonSlots(own, theirs []string) ([]int, error) {
	var out []int
	for i, k := range own {
		if slices.Contains(theirs, k) {
			out = append(out, i)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no common identifier kind (initiator %v, responder %v)", ErrPSIMismatch, theirs, own)
	}
	return out, nil
}
