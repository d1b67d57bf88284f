package audit

import (
	"encoding/binary"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/tandem-dev/tandem/audit/merkle"
)

// reconcile checks every log on open. Entries, node hashes, metadata and the
// idempotency index are written in one transaction per batch, so they can
// only disagree after manual surgery or a bug; if they do, the derived data
// (metadata, node hashes, index) is rebuilt from the entries, which are the
// source of truth. A gap in the entries themselves is unrecoverable and
// fails the open.
func (s *Store) reconcile() error {
	logs, err := s.Logs()
	if err != nil {
		return err
	}
	for _, log := range logs {
		count, lastLeaf, err := s.scanEntries(log)
		if err != nil {
			return err
		}
		var st *logState
		err = s.db.View(func(txn *badger.Txn) error {
			st, err = loadState(txn, log)
			return err
		})
		if err != nil || st.tree.Size() != count || st.last != lastLeaf {
			if err := s.rebuildTree(log, count); err != nil {
				return err
			}
		}
		if err := s.checkIndex(log, count); err != nil {
			return err
		}
	}
	return nil
}

// scanEntries counts entries, checks density and returns the last leaf hash.
func (s *Store) scanEntries(log string) (uint64, merkle.Hash, error) {
	var n uint64
	var last merkle.Hash
	err := s.db.View(func(txn *badger.Txn) error {
		opt := badger.IteratorOptions{Prefix: logKey(log, tagEntry)}
		it := txn.NewIterator(opt)
		defer it.Close()
		var lastItem *badger.Item
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if got := binary.BigEndian.Uint64(k[len(k)-8:]); got != n {
				return fmt.Errorf("audit: log %q: entry %d missing (found %d); store is corrupt", log, n, got)
			}
			lastItem = it.Item()
			n++
		}
		if lastItem != nil {
			return lastItem.Value(func(v []byte) error {
				last = merkle.HashLeaf(v)
				return nil
			})
		}
		return nil
	})
	return n, last, err
}

func (s *Store) rebuildTree(log string, count uint64) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	st := &logState{tree: &merkle.Compact{}}
	var setErr error
	err := s.db.View(func(txn *badger.Txn) error {
		opt := badger.DefaultIteratorOptions
		opt.Prefix = logKey(log, tagEntry)
		it := txn.NewIterator(opt)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			err := it.Item().Value(func(v []byte) error {
				leaf := merkle.HashLeaf(v)
				st.tree.Append(leaf, func(level uint8, index uint64, h merkle.Hash) {
					if setErr == nil {
						setErr = wb.Set(nodeKey(log, level, index), append([]byte(nil), h[:]...))
					}
				})
				st.last = leaf
				return setErr
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: rebuild %q: %w", log, err)
	}
	if st.tree.Size() != count {
		return fmt.Errorf("audit: rebuild %q: entries changed during open", log)
	}
	if err := wb.Set(logKey(log, tagMeta), encodeMeta(st)); err != nil {
		return err
	}
	return wb.Flush()
}

// checkIndex verifies that the idempotency index and its reverse map agree
// with each other and with the log size, rebuilding the index otherwise.
func (s *Store) checkIndex(log string, size uint64) error {
	fwd := map[string]uint64{}
	rev := map[uint64]string{}
	err := s.db.View(func(txn *badger.Txn) error {
		for _, tag := range []byte{tagIdem, tagRev} {
			it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: logKey(log, tag)})
			for it.Rewind(); it.Valid(); it.Next() {
				k := it.Item().Key()[len(logKey(log, tag)):]
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				if tag == tagIdem {
					if len(v) != 8 {
						fwd[string(k)] = ^uint64(0)
						continue
					}
					fwd[string(k)] = binary.BigEndian.Uint64(v)
				} else if len(k) == 8 {
					rev[binary.BigEndian.Uint64(k)] = string(v)
				}
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return err
	}
	ok := len(fwd) == len(rev)
	for k, seq := range fwd {
		if !ok {
			break
		}
		ok = seq < size && rev[seq] == k
	}
	if ok {
		return nil
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for k := range fwd {
		if err := wb.Delete(logKey(log, tagIdem, []byte(k)...)); err != nil {
			return err
		}
	}
	for seq, k := range rev {
		if seq >= size {
			if err := wb.Delete(seqKey(log, tagRev, seq)); err != nil {
				return err
			}
			continue
		}
		if err := wb.Set(logKey(log, tagIdem, []byte(k)...), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
			return err
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("audit: rebuild index %q: %w", log, err)
	}
	return nil
}
