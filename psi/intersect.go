package psi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrUnsorted is returned by IntersectSorted when an input iterator is not in
// ascending byte order. It means the caller skipped the sort or fed the wrong
// stream; the partial output must be discarded.
var ErrUnsorted = errors.New("psi: intersect: input not sorted")

// IntersectSorted is the sorted-merge intersection, the last step of the
// initiator's side of the protocol: with a holding records T_B[i] ‖ i and b
// holding records T_P[j] ‖ j, it calls emit(i, j) for every pair of records
// whose tags are equal.
//
// Each record is tagSize bytes of tag followed by a big-endian uint64 index
// (tagSize+8 bytes in all), and each iterator must yield its records in
// ascending byte order, as Sorter does; so within one tag, records come in
// ascending index order.
//
// Duplicate tags. Upstream deduplication means a tag normally occurs at most
// once per side. If a tag occurs k times in a and m times in b, the r-th
// occurrence in a (by ascending index) is matched with the r-th occurrence in
// b, for r < min(k, m); the other occurrences stay unmatched. The result is
// deterministic and one-to-one: every index is emitted at most once per side,
// so an alignment position never gets two rows.
//
// emit is called in ascending tag order, not in index order. IntersectSorted
// streams: it holds two records of memory whatever the input size. It always
// reads both inputs to the end, so that an unsorted tail or a read error is
// reported rather than ignored.
//
// It returns the number of pairs emitted and the first error among: a record
// of the wrong length, ErrUnsorted, an iterator's Err, or an error from emit
// (returned unchanged, after which iteration stops). It is safe for concurrent
// use with distinct iterators.
func IntersectSorted(a, b Iterator, tagSize int, emit func(ia, ib uint64) error) (matches int64, err error) {
	if tagSize < 1 || tagSize > tagMaxSize {
		return 0, fmt.Errorf("psi: intersect: tag size %d out of range", tagSize)
	}
	ca := intersectCursor{it: a, recSize: tagSize + 8}
	cb := intersectCursor{it: b, recSize: tagSize + 8}
	okA, err := ca.next()
	if err != nil {
		return 0, err
	}
	okB, err := cb.next()
	if err != nil {
		return 0, err
	}
	for okA && okB {
		c := bytes.Compare(ca.rec[:tagSize], cb.rec[:tagSize])
		if c == 0 {
			ia := binary.BigEndian.Uint64(ca.rec[tagSize:])
			ib := binary.BigEndian.Uint64(cb.rec[tagSize:])
			if err := emit(ia, ib); err != nil {
				return matches, err
			}
			matches++
		}
		if c <= 0 {
			if okA, err = ca.next(); err != nil {
				return matches, err
			}
		}
		if c >= 0 {
			if okB, err = cb.next(); err != nil {
				return matches, err
			}
		}
	}
	// Drain the longer side so that an unsorted tail or a read error there
	// is reported rather than silently ignored.
	for okA {
		if okA, err = ca.next(); err != nil {
			return matches, err
		}
	}
	for okB {
		if okB, err = cb.next(); err != nil {
			return matches, err
		}
	}
	return matches, nil
}

// intersectCursor wraps an Iterator and checks record length and order.
type intersectCursor struct {
	it      Iterator
	recSize int
	rec     []byte // current record
	prev    []byte // copy of the previous record, for the order check
	have    bool
}

func (c *intersectCursor) next() (bool, error) {
	if c.have {
		c.prev = append(c.prev[:0], c.rec...)
	}
	if !c.it.Next() {
		c.have = false
		return false, c.it.Err()
	}
	c.rec = c.it.Record()
	if len(c.rec) != c.recSize {
		return false, fmt.Errorf("psi: intersect: record of %d bytes, want %d", len(c.rec), c.recSize)
	}
	if c.have && bytes.Compare(c.prev, c.rec) > 0 {
		return false, ErrUnsorted
	}
	c.have = true
	return true, nil
}
