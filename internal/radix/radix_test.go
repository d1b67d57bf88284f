package radix

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPairsMatchesStableSort: against slices.SortStableFunc, on key
// distributions that exercise skipped bytes, many ties, and the short
// path.
func TestPairsMatchesStableSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	gens := map[string]func() uint64{
		"uniform":   r.Uint64,
		"small":     func() uint64 { return uint64(r.IntN(1000)) },
		"ties":      func() uint64 { return uint64(r.IntN(3)) << 40 },
		"high-only": func() uint64 { return uint64(r.IntN(256)) << 56 },
		"constant":  func() uint64 { return 7 },
	}
	for name, gen := range gens {
		for _, n := range []int{0, 1, 2, 63, 64, 65, 1000, 20000} {
			keys, vals := make([]uint64, n), make([]uint32, n)
			for i := range keys {
				keys[i], vals[i] = gen(), uint32(i)
			}
			type pair struct {
				k uint64
				v uint32
			}
			want := make([]pair, n)
			for i := range want {
				want[i] = pair{keys[i], vals[i]}
			}
			slices.SortStableFunc(want, func(a, b pair) int { return cmp.Compare(a.k, b.k) })
			Pairs(keys, vals)
			for i := range want {
				if keys[i] != want[i].k || vals[i] != want[i].v {
					t.Fatalf("%s n=%d: at %d got (%d,%d), want (%d,%d)", name, n, i, keys[i], vals[i], want[i].k, want[i].v)
				}
			}
		}
	}
}

func TestFloatOrder(t *testing.T) {
	xs := []float64{math.NaN(), math.Inf(-1), -math.MaxFloat64, -1.5, -1, -math.SmallestNonzeroFloat64, math.Copysign(0, -1), 0,
		math.SmallestNonzeroFloat64, 1e-300, 0.5, 1, math.MaxFloat64, math.Inf(1)}
	for i := 1; i < len(xs); i++ {
		a, b := Float(xs[i-1]), Float(xs[i])
		if xs[i-1] == xs[i] {
			if a != b {
				t.Errorf("Float(%v) = %x, Float(%v) = %x: want equal", xs[i-1], a, xs[i], b)
			}
		} else if a >= b {
			t.Errorf("Float(%v) = %x ≥ Float(%v) = %x", xs[i-1], a, xs[i], b)
		}
	}
}

func BenchmarkPairs(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 281676
	src := make([]uint64, n)
	for i := range src {
		src[i] = Float(r.Float64())
	}
	keys, vals := make([]uint64, n), make([]uint32, n)
	b.ReportAllocs()
	for b.Loop() {
		copy(keys, src)
		for i := range vals {
			vals[i] = uint32(i)
		}
		Pairs(keys, vals)
	}
}
