package psi

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// BenchmarkSortInMemory compares the in-place radix sort used by Sorter with
// slices.SortFunc over an index of offsets into the flat buffer (the obvious
// alternative, which also costs 4 extra bytes per record and a gather pass).
func BenchmarkSortInMemory(b *testing.B) {
	const n, size = 1_000_000, 18
	rng := rand.New(rand.NewPCG(5, 6))
	src := make([]byte, n*size)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	buf := make([]byte, len(src))
	tmp := make([]byte, size)
	b.Run("radix/n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			copy(buf, src)
			sortRecords(buf, size, tmp)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/rec")
	})
	b.Run("index-sortfunc/n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		idx := make([]uint32, n)
		out := make([]byte, len(src))
		for b.Loop() {
			copy(buf, src)
			for i := range idx {
				idx[i] = uint32(i * size)
			}
			slices.SortFunc(idx, func(x, y uint32) int {
				return bytes.Compare(buf[x:x+size], buf[y:y+size])
			})
			for i, o := range idx {
				copy(out[i*size:], buf[o:o+size])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/rec")
	})
}

func TestSortRecordsSmall(t *testing.T) {
	// Exhaustive-ish: every length up to 3×the insertion cutoff, 2-byte
	// records over a tiny alphabet, so buckets collide and recursion runs to
	// the last byte.
	rng := rand.New(rand.NewPCG(7, 8))
	tmp := make([]byte, 2)
	for n := 0; n <= 3*sortInsertion+300; n++ {
		buf := make([]byte, 2*n)
		for i := range buf {
			buf[i] = byte(rng.IntN(3))
		}
		want := slices.Clone(buf)
		pairs := make([][2]byte, n)
		for i := range pairs {
			pairs[i] = [2]byte{want[2*i], want[2*i+1]}
		}
		slices.SortFunc(pairs, func(x, y [2]byte) int { return bytes.Compare(x[:], y[:]) })
		for i, p := range pairs {
			want[2*i], want[2*i+1] = p[0], p[1]
		}
		sortRecords(buf, 2, tmp)
		if !bytes.Equal(buf, want) {
			t.Fatalf("n=%d: got %v, want %v", n, buf, want)
		}
	}
}
