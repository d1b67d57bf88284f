package psi_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tandem-dev/tandem/psi"
)

// intersectTestSides builds the two sides of a job with a known overlap:
// nA and nB distinct 32-byte "final elements", the first overlap of them
// shared (at random rows on each side). It returns the sorted tag records of
// each side and the model answer: for each b-index, the a-index it matches.
func intersectTestSides(rng *rand.Rand, nA, nB, overlap, tagSize int, dir string) (a, b []byte, model map[uint64]uint64) {
	elem := func() []byte {
		e := make([]byte, 32)
		for i := range e {
			e[i] = byte(rng.Uint32())
		}
		return e
	}
	elemsA := make([][]byte, nA)
	elemsB := make([][]byte, nB)
	for i := range elemsA {
		elemsA[i] = elem()
	}
	for i := range elemsB {
		elemsB[i] = elem()
	}
	permA, permB := rng.Perm(nA), rng.Perm(nB)
	byElem := make(map[string]uint64)
	for k := range overlap {
		ia, ib := permA[k], permB[k]
		elemsB[ib] = elemsA[ia]
	}
	for i, e := range elemsA {
		byElem[string(e)] = uint64(i)
	}
	model = make(map[uint64]uint64)
	for j, e := range elemsB {
		if i, ok := byElem[string(e)]; ok {
			model[uint64(j)] = i
		}
	}
	records := func(elems [][]byte) []byte {
		s := psi.NewSorter(dir, tagSize+8, 1<<20)
		defer s.Close()
		rec := make([]byte, tagSize+8)
		for i, e := range elems {
			psi.Tag(rec[:tagSize], e)
			binary.BigEndian.PutUint64(rec[tagSize:], uint64(i))
			if err := s.Add(rec); err != nil {
				panic(err)
			}
		}
		it, err := s.Sort()
		if err != nil {
			panic(err)
		}
		var out []byte
		for it.Next() {
			out = append(out, it.Record()...)
		}
		if it.Err() != nil {
			panic(it.Err())
		}
		return out
	}
	return records(elemsA), records(elemsB), model
}

// TestIntersectSortedModel is the property test: over random sets with
// known overlap, IntersectSorted equals a map-based intersection.
func TestIntersectSortedModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tt := range []struct{ nA, nB, overlap int }{
		{0, 0, 0}, {0, 10, 0}, {10, 0, 0}, {1, 1, 1}, {1, 1, 0},
		{100, 1000, 50}, {1000, 100, 100}, {5000, 5000, 0}, {5000, 5000, 5000}, {20000, 7000, 3333},
	} {
		t.Run(fmt.Sprintf("%d×%d∩%d", tt.nA, tt.nB, tt.overlap), func(t *testing.T) {
			ts := psi.TagSize(int64(tt.nA), int64(tt.nB))
			a, b, model := intersectTestSides(rng, tt.nA, tt.nB, tt.overlap, ts, t.TempDir())
			got := make(map[uint64]uint64)
			n, err := psi.IntersectSorted(psi.NewSliceIterator(a, ts+8), psi.NewSliceIterator(b, ts+8), ts,
				func(ia, ib uint64) error {
					if _, dup := got[ib]; dup {
						t.Fatalf("position %d emitted twice", ib)
					}
					got[ib] = ia
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(got)) || len(got) != tt.overlap {
				t.Fatalf("got %d matches (%d distinct), want %d", n, len(got), tt.overlap)
			}
			for j, i := range model {
				if got[j] != i {
					t.Fatalf("position %d: got row %d, want %d", j, got[j], i)
				}
			}
		})
	}
}

// intersectTestRecs packs (tag byte, index) pairs as 1-byte-tag records.
func intersectTestRecs(pairs ...[2]uint64) []byte {
	var b []byte
	for _, p := range pairs {
		b = append(b, byte(p[0]))
		b = binary.BigEndian.AppendUint64(b, p[1])
	}
	return b
}

func TestIntersectSortedDuplicates(t *testing.T) {
	type pair = [2]uint64
	tests := []struct {
		name string
		a, b []byte
		want []pair // (ia, ib) in emit order
	}{
		{"disjoint", intersectTestRecs(pair{1, 0}, pair{3, 1}), intersectTestRecs(pair{2, 0}, pair{4, 1}), nil},
		{"simple", intersectTestRecs(pair{1, 5}, pair{3, 6}), intersectTestRecs(pair{3, 9}, pair{4, 1}), []pair{{6, 9}}},
		{"dup in a", intersectTestRecs(pair{3, 1}, pair{3, 2}), intersectTestRecs(pair{3, 7}), []pair{{1, 7}}},
		{"dup in b", intersectTestRecs(pair{3, 4}), intersectTestRecs(pair{3, 7}, pair{3, 8}), []pair{{4, 7}}},
		{"dup both, zipped", intersectTestRecs(pair{3, 1}, pair{3, 2}, pair{3, 3}, pair{5, 0}),
			intersectTestRecs(pair{3, 7}, pair{3, 8}, pair{5, 9}), []pair{{1, 7}, {2, 8}, {0, 9}}},
		{"equal records", intersectTestRecs(pair{3, 1}, pair{3, 1}), intersectTestRecs(pair{3, 2}, pair{3, 2}), []pair{{1, 2}, {1, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []pair
			n, err := psi.IntersectSorted(psi.NewSliceIterator(tt.a, 9), psi.NewSliceIterator(tt.b, 9), 1,
				func(ia, ib uint64) error { got = append(got, pair{ia, ib}); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(got)) || !slices.Equal(got, tt.want) {
				t.Errorf("got %v (n=%d), want %v", got, n, tt.want)
			}
		})
	}
}

func TestIntersectSortedErrors(t *testing.T) {
	type pair = [2]uint64
	sorted := intersectTestRecs(pair{1, 0}, pair{2, 0})
	unsorted := intersectTestRecs(pair{1, 0}, pair{3, 0}, pair{2, 0})
	nop := func(uint64, uint64) error { return nil }

	if _, err := psi.IntersectSorted(psi.NewSliceIterator(unsorted, 9), psi.NewSliceIterator(sorted, 9), 1, nop); !errors.Is(err, psi.ErrUnsorted) {
		t.Errorf("unsorted a: got %v, want ErrUnsorted", err)
	}
	if _, err := psi.IntersectSorted(psi.NewSliceIterator(sorted, 9), psi.NewSliceIterator(unsorted, 9), 1, nop); !errors.Is(err, psi.ErrUnsorted) {
		t.Errorf("unsorted b: got %v, want ErrUnsorted", err)
	}
	if _, err := psi.IntersectSorted(psi.NewSliceIterator(sorted, 9), psi.NewSliceIterator(sorted, 9), 2, nop); err == nil {
		t.Error("wrong record size accepted")
	}
	if _, err := psi.IntersectSorted(psi.NewSliceIterator(nil, 9), psi.NewSliceIterator(nil, 9), 0, nop); err == nil {
		t.Error("tag size 0 accepted")
	}
	stop := errors.New("stop")
	n, err := psi.IntersectSorted(psi.NewSliceIterator(sorted, 9), psi.NewSliceIterator(sorted, 9), 1,
		func(uint64, uint64) error { return stop })
	if err != stop || n != 0 {
		t.Errorf("emit error: got n=%d err=%v, want 0, stop", n, err)
	}
}

// BenchmarkIntersectSorted merges two sorted 1e6-record sides (10-byte tags)
// with half overlapping, in memory, to isolate the merge from the sort.
func BenchmarkIntersectSorted(b *testing.B) {
	const n = 1_000_000
	ts := psi.TagSize(n, n)
	a, bb, _ := intersectTestSides(rand.New(rand.NewPCG(13, 14)), n, n, n/2, ts, b.TempDir())
	b.Run("n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := psi.IntersectSorted(psi.NewSliceIterator(a, ts+8), psi.NewSliceIterator(bb, ts+8), ts,
				func(uint64, uint64) error { return nil })
			if err != nil || m != n/2 {
				b.Fatal(m, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2*n), "ns/rec")
	})
}
