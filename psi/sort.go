package psi

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// Iterator yields fixed-size records in order. The usual loop is
//
//	for it.Next() {
//		rec := it.Record()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
//
// Iterators are not safe for concurrent use.
type Iterator interface {
	// Next advances to the next record and reports whether there is one.
	// It returns false at the end of the sequence or on error.
	Next() bool
	// Record returns the current record. The slice is only valid until the
	// next call to Next and must not be modified.
	Record() []byte
	// Err returns the first error met by Next, or nil at a clean end.
	Err() error
}

// NewSliceIterator returns an Iterator over the records packed in recs,
// each recSize bytes, in the order they appear. It does not copy recs.
// It panics if recSize < 1 or len(recs) is not a multiple of recSize.
// The iterator is not safe for concurrent use; Err always returns nil.
func NewSliceIterator(recs []byte, recSize int) Iterator {
	if recSize < 1 || len(recs)%recSize != 0 {
		panic("psi: NewSliceIterator: bad record size")
	}
	return &sliceIter{buf: recs, size: recSize, off: -recSize}
}

type sliceIter struct {
	buf  []byte
	size int
	off  int
}

func (it *sliceIter) Next() bool {
	if it.off+it.size >= len(it.buf) {
		it.off = len(it.buf)
		return false
	}
	it.off += it.size
	return true
}

func (it *sliceIter) Record() []byte { return it.buf[it.off : it.off+it.size : it.off+it.size] }
func (it *sliceIter) Err() error     { return nil }

// ErrSorterState is returned by Sorter methods called out of order: Add after
// Sort, Sort twice, or anything after Close. It is a caller bug.
var ErrSorterState = errors.New("psi: sorter used out of order")

const (
	// sortMinBudget is the memory budget used when NewSorter gets less.
	sortMinBudget = 4 << 10
	// sortInitialBuf is the first allocation of the record buffer; it grows
	// by doubling up to the budget.
	sortInitialBuf = 256 << 10
	// sortInsertion is the bucket size below which the radix sort switches
	// to insertion sort.
	sortInsertion = 24
)

// Sorter sorts fixed-size records in ascending byte order within a memory
// budget, spilling sorted runs to temporary files when the input does not
// fit (see spill.go). Typical records are tag ‖ uint64 big-endian row index,
// so byte order is tag order with ties broken by row.
//
// Use: NewSorter, Add every record, Sort once, iterate, Close. A Sorter is not
// safe for concurrent use.
//
// Memory: the record buffer grows geometrically up to memBudget bytes (while
// it is being doubled the old half is briefly live as well); a spilled sort
// additionally holds one 64 KiB read buffer per merged run, at most 64 runs
// at a time (more runs are merged in several passes), i.e. at most 4 MiB. Sorting itself (an in-place MSD radix
// sort) allocates nothing per record.
type Sorter struct {
	dir     string
	recSize int
	maxRecs int // records per in-memory run

	buf   []byte // unsorted records of the current run
	count int64  // records added in total
	tmp   []byte // one record of swap space

	spill *spillSet // nil until the first run is written
	state int
	iter  *mergeIter
}

const (
	sorterAdding = iota
	sorterSorted
	sorterClosed
)

// NewSorter returns a Sorter for records of recSize bytes that keeps at most
// about memBudget bytes of records in memory and writes spill files, if it
// needs any, to a fresh temporary directory under dir (os.TempDir() when dir
// is ""). Budgets smaller than 4 KiB (or one record) are raised to that.
// NewSorter allocates lazily and touches no files; it panics if recSize < 1.
func NewSorter(dir string, recSize int, memBudget int) *Sorter {
	if recSize < 1 {
		panic("psi: NewSorter: record size must be positive")
	}
	memBudget = max(memBudget, sortMinBudget, recSize)
	return &Sorter{
		dir:     dir,
		recSize: recSize,
		maxRecs: memBudget / recSize,
		tmp:     make([]byte, recSize),
	}
}

// Len returns the number of records added so far.
func (s *Sorter) Len() int64 { return s.count }

// Add copies rec into the sorter. It returns an error if len(rec) is not the
// record size, if the sorter is already sorted or closed (ErrSorterState), or
// if spilling a full run to disk fails; after a spill error the Sorter must
// be closed.
func (s *Sorter) Add(rec []byte) error {
	if s.state != sorterAdding {
		return ErrSorterState
	}
	if len(rec) != s.recSize {
		return fmt.Errorf("psi: sorter: record of %d bytes, want %d", len(rec), s.recSize)
	}
	if len(s.buf) == cap(s.buf) {
		if err := s.grow(); err != nil {
			return err
		}
	}
	s.buf = append(s.buf, rec...)
	s.count++
	return nil
}

// grow makes room for at least one more record: it doubles the buffer up to
// the budget, and once the buffer is at the budget it spills it as a run.
func (s *Sorter) grow() error {
	limit := s.maxRecs * s.recSize
	if c := cap(s.buf); c < limit {
		nc := min(max(2*c, sortInitialBuf/s.recSize*s.recSize, s.recSize), limit)
		nb := make([]byte, len(s.buf), nc)
		copy(nb, s.buf)
		s.buf = nb
		return nil
	}
	if s.spill == nil {
		sp, err := newSpillSet(s.dir, s.recSize)
		if err != nil {
			return err
		}
		s.spill = sp
	}
	sortRecords(s.buf, s.recSize, s.tmp)
	if err := s.spill.writeRun(s.buf); err != nil {
		return err
	}
	s.buf = s.buf[:0]
	return nil
}

// Sort finishes input and returns an Iterator over all added records in
// ascending byte order (equal records are adjacent; their relative order is
// irrelevant since they are identical). If nothing was spilled the sort is in
// memory; otherwise runs are merged, in several passes if there are more than
// 64 of them. The Iterator is valid until Close. Sort returns
// ErrSorterState if called twice or after Close, or an I/O error from
// spilling or merging.
func (s *Sorter) Sort() (Iterator, error) {
	if s.state != sorterAdding {
		return nil, ErrSorterState
	}
	s.state = sorterSorted
	sortRecords(s.buf, s.recSize, s.tmp)
	if s.spill == nil {
		return NewSliceIterator(s.buf, s.recSize), nil
	}
	// The last partial run goes to disk as well and the buffer is dropped:
	// a sorted, spilled Sorter then holds only the merge buffers (≤ 4 MiB),
	// so several sorters can be live at once in the final phase of a job
	// without their budgets adding up.
	if len(s.buf) > 0 {
		if err := s.spill.writeRun(s.buf); err != nil {
			return nil, err
		}
	}
	s.buf = nil
	it, err := s.spill.merge(nil)
	if err != nil {
		return nil, err
	}
	s.iter = it
	return it, nil
}

// Close releases the buffer, closes open run files and removes the
// temporary directory. It is idempotent and returns the first error from
// removing files. Iterators returned by Sort must not be used afterwards.
func (s *Sorter) Close() error {
	if s.state == sorterClosed {
		return nil
	}
	s.state = sorterClosed
	s.buf = nil
	var err error
	if s.iter != nil {
		s.iter.close()
		s.iter = nil
	}
	if s.spill != nil {
		err = s.spill.remove()
		s.spill = nil
	}
	return err
}

// sortRecords sorts the size-byte records packed in b in ascending byte
// order, in place. tmp is size bytes of scratch.
func sortRecords(b []byte, size int, tmp []byte) {
	if len(b) <= size {
		return
	}
	sortRadix(b, size, 0, tmp)
}

// sortRadix is an in-place MSD radix sort (American flag sort) on byte
// depth of the records in b, which all agree on bytes [0, depth).
// Leading bytes are uniformly random for tags, so after two levels buckets
// are tiny and finish with insertion sort.
func sortRadix(b []byte, size, depth int, tmp []byte) {
	for {
		n := len(b) / size
		if n <= sortInsertion || depth >= size {
			sortInsertionRecs(b, size, depth, tmp)
			return
		}
		var count [256]int
		for i := depth; i < len(b); i += size {
			count[b[i]]++
		}
		// All records share this byte: move to the next one without
		// permuting (common for big-endian positions whose high bytes are 0).
		if count[b[depth]] == n {
			depth++
			continue
		}
		var next, end [256]int
		off := 0
		for c := range 256 {
			next[c] = off
			off += count[c] * size
			end[c] = off
		}
		for c := range 256 {
			for next[c] < end[c] {
				i := next[c]
				d := b[i+depth]
				for int(d) != c {
					// Swap record i with the next free slot of bucket d.
					j := next[d]
					next[d] += size
					copy(tmp, b[i:i+size])
					copy(b[i:i+size], b[j:j+size])
					copy(b[j:j+size], tmp)
					d = b[i+depth]
				}
				next[c] += size
			}
		}
		if depth+1 < size {
			start := 0
			for c := range 256 {
				if e := end[c]; e-start > size {
					sortRadix(b[start:e], size, depth+1, tmp)
				}
				start = end[c]
			}
		}
		return
	}
}

// sortInsertionRecs sorts the few records in b by bytes [depth, size).
func sortInsertionRecs(b []byte, size, depth int, tmp []byte) {
	for i := size; i < len(b); i += size {
		if bytes.Compare(b[i-size+depth:i], b[i+depth:i+size]) <= 0 {
			continue
		}
		copy(tmp, b[i:i+size])
		j := i
		for j > 0 && bytes.Compare(b[j-size+depth:j], tmp[depth:]) > 0 {
			j -= size
		}
		copy(b[j+size:i+size], b[j:i])
		copy(b[j:j+size], tmp)
	}
}

// sortFileRemove removes path, ignoring a file that is already gone.
func sortFileRemove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
