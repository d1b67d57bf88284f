package psi_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"syscall"
	"testing"

	"github.com/tandem-dev/tandem/psi"
)

// sortTestRecords returns n random records of size bytes, packed, with some
// duplicates and some shared prefixes, from a seeded generator.
func sortTestRecords(rng *rand.Rand, n, size int) []byte {
	b := make([]byte, n*size)
	for i := range n {
		rec := b[i*size : (i+1)*size]
		switch rng.IntN(10) {
		case 0:
			if i > 0 { // exact duplicate of an earlier record
				copy(rec, b[rng.IntN(i)*size:])
				continue
			}
		case 1:
			if i > 0 { // shares a prefix with an earlier record
				copy(rec, b[rng.IntN(i)*size:][:size/2])
				for j := size / 2; j < size; j++ {
					rec[j] = byte(rng.Uint32())
				}
				continue
			}
		}
		for j := range rec {
			rec[j] = byte(rng.Uint32())
		}
	}
	return b
}

// sortTestCPU returns the process's user+sys CPU time in nanoseconds.
func sortTestCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// sortTestNaive sorts packed records with slices.Sort on strings.
func sortTestNaive(b []byte, size int) []byte {
	recs := make([]string, 0, len(b)/size)
	for i := 0; i < len(b); i += size {
		recs = append(recs, string(b[i:i+size]))
	}
	slices.Sort(recs)
	out := make([]byte, 0, len(b))
	for _, r := range recs {
		out = append(out, r...)
	}
	return out
}

func sortTestCollect(t testing.TB, it psi.Iterator) []byte {
	t.Helper()
	var out []byte
	for it.Next() {
		out = append(out, it.Record()...)
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterator: %v", err)
	}
	return out
}

// TestSorterMatchesNaive is a property test: for random inputs, record sizes
// and budgets (from all-in-memory down to tiny budgets that force hundreds of
// runs and multi-pass merges) the Sorter's output equals slices.Sort's.
func TestSorterMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name   string
		n      int
		size   int
		budget int
	}{
		{"empty", 0, 16, 1 << 20},
		{"one", 1, 16, 1 << 20},
		{"small/mem", 100, 16, 1 << 20},
		{"insertion-only", 20, 3, 1 << 20},
		{"size1", 5000, 1, 1 << 20},
		{"size1/spill", 20000, 1, 0},
		{"tags/mem", 50000, 18, 8 << 20},
		{"tags/spill-few", 50000, 18, 300 << 10},
		{"tags/spill-exact", 4096 / 16 * 3, 16, 4096},
		{"tags/spill-many", 30000, 16, 0}, // 4 KiB budget: 118 runs, 2 merge passes
		{"odd-size/spill", 20000, 13, 5000},
		{"huge-records", 300, 4000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := sortTestRecords(rng, tt.n, tt.size)
			want := sortTestNaive(in, tt.size)
			dir := t.TempDir()
			s := psi.NewSorter(dir, tt.size, tt.budget)
			defer s.Close()
			for i := 0; i < len(in); i += tt.size {
				if err := s.Add(in[i : i+tt.size]); err != nil {
					t.Fatal(err)
				}
			}
			clear(in) // Add must have copied
			if got := s.Len(); got != int64(tt.n) {
				t.Fatalf("Len() = %d, want %d", got, tt.n)
			}
			it, err := s.Sort()
			if err != nil {
				t.Fatal(err)
			}
			got := sortTestCollect(t, it)
			if !bytes.Equal(got, want) {
				t.Fatalf("sorted output differs from slices.Sort (%d vs %d bytes)", len(got), len(want))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("Close left %d entries in dir", len(ents))
			}
		})
	}
}

func TestSorterSortedInputs(t *testing.T) {
	// Big-endian counters: constant leading bytes, already sorted, reversed.
	for _, reverse := range []bool{false, true} {
		const n = 100000
		s := psi.NewSorter(t.TempDir(), 16, 1<<20)
		var rec [16]byte
		for i := range uint64(n) {
			v := i
			if reverse {
				v = n - 1 - i
			}
			binary.BigEndian.PutUint64(rec[:], v)
			binary.BigEndian.PutUint64(rec[8:], v*7)
			if err := s.Add(rec[:]); err != nil {
				t.Fatal(err)
			}
		}
		it, err := s.Sort()
		if err != nil {
			t.Fatal(err)
		}
		var i uint64
		for it.Next() {
			if got := binary.BigEndian.Uint64(it.Record()); got != i {
				t.Fatalf("reverse=%v: record %d has key %d", reverse, i, got)
			}
			i++
		}
		if it.Err() != nil || i != n {
			t.Fatalf("reverse=%v: %d records, err %v", reverse, i, it.Err())
		}
		s.Close()
	}
}

func TestSorterMisuse(t *testing.T) {
	s := psi.NewSorter(t.TempDir(), 8, 0)
	if err := s.Add(make([]byte, 7)); err == nil {
		t.Error("Add of short record succeeded")
	}
	if _, err := s.Sort(); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(make([]byte, 8)); !errors.Is(err, psi.ErrSorterState) {
		t.Errorf("Add after Sort: got %v, want ErrSorterState", err)
	}
	if _, err := s.Sort(); !errors.Is(err, psi.ErrSorterState) {
		t.Errorf("second Sort: got %v, want ErrSorterState", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Sort(); !errors.Is(err, psi.ErrSorterState) {
		t.Errorf("Sort after Close: got %v, want ErrSorterState", err)
	}
}

func TestSorterAddAllocs(t *testing.T) {
	s := psi.NewSorter(t.TempDir(), 16, 4096)
	defer s.Close()
	rec := make([]byte, 16)
	// Warm up: the buffer reaches the budget and the spill dir exists.
	for range 1000 {
		s.Add(rec)
	}
	if n := testing.AllocsPerRun(10000, func() { s.Add(rec) }); n > 0.01 {
		t.Errorf("Add allocates %v times per record", n)
	}
}

// BenchmarkSorter adds n random 18-byte records (10-byte tag ‖ uint64 row, the
// size for 1e6 × 1e6) and drains the sorted iterator. mem=inf sorts in memory;
// smaller budgets spill runs to b.TempDir(). heapB/rec is the peak of the Go
// heap during the run (sampled after Sort and after draining; it includes
// not-yet-collected garbage) divided by n. cpu-ns/rec is process CPU time
// (user+sys, all threads, GC included) per record, which stays meaningful on
// a loaded machine where ns/rec (wall clock) does not. Input generation is
// outside the timed loop.
func BenchmarkSorter(b *testing.B) {
	const n, size = 1_000_000, 18
	in := sortTestRecords(rand.New(rand.NewPCG(3, 4)), n, size)
	for _, mem := range []struct {
		name   string
		budget int
	}{{"inf", 64 << 20}, {"4MiB", 4 << 20}, {"1MiB", 1 << 20}} {
		b.Run("n=1e6/mem="+mem.name, func(b *testing.B) {
			b.ReportAllocs()
			var peak uint64
			cpu0 := sortTestCPU()
			for b.Loop() {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				base := ms.HeapAlloc
				s := psi.NewSorter(b.TempDir(), size, mem.budget)
				for i := 0; i < len(in); i += size {
					if err := s.Add(in[i : i+size]); err != nil {
						b.Fatal(err)
					}
				}
				it, err := s.Sort()
				if err != nil {
					b.Fatal(err)
				}
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc-base)
				k := 0
				for it.Next() {
					k++
				}
				if it.Err() != nil || k != n {
					b.Fatal(k, it.Err())
				}
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc-base)
				s.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/rec")
			b.ReportMetric(float64(sortTestCPU()-cpu0)/float64(b.N*n), "cpu-ns/rec")
			b.ReportMetric(float64(peak)/n, "heapB/rec")
		})
	}
}
