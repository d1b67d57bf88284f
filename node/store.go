package node

import (
	"encoding/json"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/tandem-dev/tandem/audit"
	"google.golang.org/protobuf/proto"
)

// state is the node's Badger-backed state: agreements, jobs, datasets and
// the replay index. Every write is a synchronous transaction, so an
// acknowledged change survives a crash.
type state struct {
	db *badger.DB
}

// errNotFound is returned by state getters for a missing key.
var errNotFound = errors.New("node: not found")

func openState(dir string) (*state, error) {
	opts := badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil).WithNumVersionsToKeep(1)
	// Small tables: node state is small; keep memory modest next to PSI.
	opts = opts.WithMemTableSize(16 << 20).WithValueLogFileSize(64 << 20).WithBlockCacheSize(8 << 20)
	if err := audit.RemoveEmptyLogFiles(dir); err != nil { // see its doc: badger#2207
		return nil, err
	}
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("node: open state %s: %w", dir, err)
	}
	return &state{db: db}, nil
}

func (s *state) close() error { return s.db.Close() }

func (s *state) putJSON(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("node: encode %s: %w", key, err)
	}
	return s.db.Update(func(tx *badger.Txn) error { return tx.Set([]byte(key), b) })
}

func (s *state) getJSON(key string, v any) error {
	return s.db.View(func(tx *badger.Txn) error {
		it, err := tx.Get([]byte(key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		return it.Value(func(b []byte) error { return json.Unmarshal(b, v) })
	})
}

func (s *state) putProto(key string, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("node: encode %s: %w", key, err)
	}
	return s.db.Update(func(tx *badger.Txn) error { return tx.Set([]byte(key), b) })
}

func (s *state) getProto(key string, m proto.Message) error {
	return s.db.View(func(tx *badger.Txn) error {
		it, err := tx.Get([]byte(key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		return it.Value(func(b []byte) error { return proto.Unmarshal(b, m) })
	})
}

// scan calls fn for every value under prefix, in key order.
func (s *state) scan(prefix string, fn func(key string, val []byte) error) error {
	return s.db.View(func(tx *badger.Txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if err := item.Value(func(b []byte) error { return fn(string(item.Key()), b) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// claimNonce records a proposal nonce; it fails with errReplayed if seen.
// The check and the write are one transaction, so two concurrent replays
// cannot both pass.
func (s *state) claimNonce(nonce []byte, jobID string) error {
	key := append([]byte("nonce/"), nonce...)
	return s.db.Update(func(tx *badger.Txn) error {
		if _, err := tx.Get(key); err == nil {
			return errReplayed
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return tx.Set(key, []byte(jobID))
	})
}

var errReplayed = errors.New("node: nonce seen before")
