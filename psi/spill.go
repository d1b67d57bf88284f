package psi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Out-of-core part of Sorter: sorted runs on disk and their k-way merge.

const (
	// spillBufSize is the read buffer per run during a merge and the write
	// buffer of an intermediate merge pass.
	spillBufSize = 64 << 10
	// spillFanIn is the most runs merged at once; with more runs, groups of
	// spillFanIn are first merged into longer runs. It bounds both open file
	// descriptors and merge buffers (spillFanIn × spillBufSize = 4 MiB).
	spillFanIn = 64
)

// spillSet is the temporary directory of one Sorter and its run files.
type spillSet struct {
	dir     string
	recSize int
	runs    []string // sorted run files, oldest first
	seq     int
}

func newSpillSet(parent string, recSize int) (*spillSet, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "psi-sort-")
	if err != nil {
		return nil, fmt.Errorf("psi: sorter: spill: %w", err)
	}
	return &spillSet{dir: dir, recSize: recSize}, nil
}

func (sp *spillSet) newRunPath() string {
	sp.seq++
	return filepath.Join(sp.dir, fmt.Sprintf("run-%06d", sp.seq))
}

// writeRun writes the sorted records in b as a new run file.
func (sp *spillSet) writeRun(b []byte) error {
	path := sp.newRunPath()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("psi: sorter: spill: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		sortFileRemove(path)
		return fmt.Errorf("psi: sorter: spill: %w", err)
	}
	sp.runs = append(sp.runs, path)
	return nil
}

// merge returns an iterator over all runs plus the sorted in-memory run mem
// (which may be empty). While there are more than spillFanIn sources it
// merges the oldest spillFanIn runs into one new run.
func (sp *spillSet) merge(mem []byte) (*mergeIter, error) {
	extra := 0
	if len(mem) > 0 {
		extra = 1
	}
	for len(sp.runs)+extra > spillFanIn {
		if err := sp.mergePass(); err != nil {
			return nil, err
		}
	}
	return sp.openMerge(sp.runs, mem)
}

// mergePass merges the oldest spillFanIn runs into a new run at the end of
// the list and deletes them.
func (sp *spillSet) mergePass() (err error) {
	group := sp.runs[:spillFanIn:spillFanIn]
	it, err := sp.openMerge(group, nil)
	if err != nil {
		return err
	}
	defer it.close()
	path := sp.newRunPath()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("psi: sorter: spill: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			sortFileRemove(path)
		}
	}()
	w := bufio.NewWriterSize(f, spillBufSize)
	for it.Next() {
		if _, err := w.Write(it.Record()); err != nil {
			return fmt.Errorf("psi: sorter: spill: %w", err)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("psi: sorter: spill: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("psi: sorter: spill: %w", err)
	}
	it.close()
	for _, p := range group {
		sortFileRemove(p)
	}
	sp.runs = append(sp.runs[spillFanIn:], path)
	return nil
}

// openMerge opens the run files and returns a heap-merging iterator over
// them and mem.
func (sp *spillSet) openMerge(paths []string, mem []byte) (*mergeIter, error) {
	it := &mergeIter{heap: make([]*mergeSrc, 0, len(paths)+1)}
	bufLen := max(spillBufSize/sp.recSize, 1) * sp.recSize
	add := func(src *mergeSrc) error {
		ok, err := src.advance()
		if err != nil {
			return err
		}
		if ok {
			it.heap = append(it.heap, src)
		} else if src.f != nil {
			src.f.Close()
		}
		return nil
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			it.close()
			return nil, fmt.Errorf("psi: sorter: spill: %w", err)
		}
		src := &mergeSrc{f: f, buf: make([]byte, bufLen), size: sp.recSize}
		if err := add(src); err != nil {
			f.Close()
			it.close()
			return nil, err
		}
	}
	if len(mem) > 0 {
		// An in-memory source is one buffer that never refills.
		add(&mergeSrc{buf: mem, end: len(mem), size: sp.recSize})
	}
	for i := len(it.heap)/2 - 1; i >= 0; i-- {
		it.down(i)
	}
	return it, nil
}

// remove deletes the temporary directory and everything in it.
func (sp *spillSet) remove() error {
	if err := os.RemoveAll(sp.dir); err != nil {
		return fmt.Errorf("psi: sorter: %w", err)
	}
	return nil
}

// mergeSrc is one sorted run being read: a window buf[pos:end] of whole
// records; rec is the current record (a sub-slice of buf).
type mergeSrc struct {
	f        *os.File // nil for an in-memory run
	buf      []byte
	pos, end int
	size     int
	rec      []byte
}

// advance moves rec to the next record, refilling buf from the file when it
// is used up. It reports false at the end of the run.
func (m *mergeSrc) advance() (bool, error) {
	if m.pos >= m.end {
		if m.f == nil {
			return false, nil
		}
		n, err := io.ReadFull(m.f, m.buf)
		switch {
		case err == io.EOF:
			return false, nil
		case err == io.ErrUnexpectedEOF:
			if n%m.size != 0 {
				return false, errors.New("psi: sorter: spill file has a partial record")
			}
		case err != nil:
			return false, fmt.Errorf("psi: sorter: spill: %w", err)
		}
		m.pos, m.end = 0, n
	}
	m.rec = m.buf[m.pos : m.pos+m.size : m.pos+m.size]
	m.pos += m.size
	return true, nil
}

// mergeIter is a k-way merge of sorted sources through a binary min-heap
// ordered by current record. heap[0] holds the current record once Next has
// returned true.
type mergeIter struct {
	heap    []*mergeSrc
	started bool
	closed  bool
	err     error
}

func (it *mergeIter) Next() bool {
	if it.err != nil || it.closed {
		return false
	}
	if !it.started {
		it.started = true
		return len(it.heap) > 0
	}
	if len(it.heap) == 0 {
		return false
	}
	top := it.heap[0]
	ok, err := top.advance()
	if err != nil {
		it.err = err
		return false
	}
	if !ok {
		if top.f != nil {
			top.f.Close()
		}
		last := len(it.heap) - 1
		it.heap[0] = it.heap[last]
		it.heap[last] = nil
		it.heap = it.heap[:last]
		if last == 0 {
			return false
		}
	}
	it.down(0)
	return true
}

func (it *mergeIter) Record() []byte { return it.heap[0].rec }

func (it *mergeIter) Err() error {
	if it.closed && it.err == nil {
		return ErrSorterState
	}
	return it.err
}

func (it *mergeIter) down(i int) {
	h := it.heap
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && bytes.Compare(h[r].rec, h[l].rec) < 0 {
			m = r
		}
		if bytes.Compare(h[m].rec, h[i].rec) >= 0 {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// close closes the files of all sources still open.
func (it *mergeIter) close() {
	if it.closed {
		return
	}
	it.closed = true
	for _, s := range it.heap {
		if s.f != nil {
			s.f.Close()
		}
	}
	it.heap = nil
}
