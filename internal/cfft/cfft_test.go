package cfft

import (
	"math"
	"math/bits"
	"math/cmplx"
	"math/rand/v2"
	"testing"
)

// dft is the definition: X_j = Σ_l x_l·e^(−2πi·lj/M), x in natural order.
func dft(x []complex128) []complex128 {
	m := len(x)
	roots := make([]complex128, m)
	for k := range roots {
		roots[k] = cmplx.Rect(1, -2*math.Pi*float64(k)/float64(m))
	}
	out := make([]complex128, m)
	for j := range out {
		for l, v := range x {
			out[j] += v * roots[l*j%m]
		}
	}
	return out
}

func bitReversed(x []complex128) []complex128 {
	logM := bits.TrailingZeros(uint(len(x)))
	out := make([]complex128, len(x))
	for i, v := range x {
		out[bits.Reverse(uint(i))>>(bits.UintSize-logM)] = v
	}
	return out
}

func randomVector(r *rand.Rand, m int) []complex128 {
	x := make([]complex128, m)
	for i := range x {
		x[i] = complex(r.Float64()*2-1, r.Float64()*2-1)
	}
	return x
}

// TestTransformMatchesDFT: every length from 8 (the radix-8 pass alone)
// through odd and even numbers of remaining stages, and the length
// fedlearn uses, against the O(M²) definition, relative to the input's
// norm.
func TestTransformMatchesDFT(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, m := range []int{8, 16, 32, 64, 128, 256, 512, 4096} { // 4096: fedlearn's
		p, err := New(m)
		if err != nil {
			t.Fatal(err)
		}
		x := randomVector(r, m)
		want := dft(x)
		got := bitReversed(x)
		p.Transform(got)
		for j := range want {
			if d := cmplx.Abs(got[j] - want[j]); d > 1e-12*math.Sqrt(float64(m)) {
				t.Fatalf("m=%d: X[%d] = %v, want %v (|diff| %g)", m, j, got[j], want[j], d)
			}
		}
	}
	t.Logf("assembly in use: %v", useAsm)
}

// TestAsmMatchesGo holds the assembly passes to the Go passes at the
// length fedlearn uses, to the last few bits (FMA rounds once).
func TestAsmMatchesGo(t *testing.T) {
	if !useAsm {
		t.Skip("no AVX-512: the Go passes are the transform")
	}
	r := rand.New(rand.NewPCG(7, 8))
	const m = 4096
	p, _ := New(m)
	x := randomVector(r, m)
	a, b := append([]complex128(nil), x...), append([]complex128(nil), x...)
	p.Transform(a)
	radix8(b)
	for _, ps := range p.radix4 {
		radix4Go(b, ps.h, ps.tw)
	}
	if ps := p.radix2; ps != nil {
		radix2Go(b, ps.h, ps.tw)
	}
	var worst float64
	for j := range a {
		worst = max(worst, cmplx.Abs(a[j]-b[j]))
	}
	if worst > 1e-12 {
		t.Fatalf("assembly and Go passes differ by %g", worst)
	}
}

func TestNewRejects(t *testing.T) {
	for _, m := range []int{0, 4, 12, 100} {
		if _, err := New(m); err == nil {
			t.Errorf("New(%d) accepted", m)
		}
	}
}

func BenchmarkTransform(b *testing.B) {
	p, _ := New(4096)
	x := randomVector(rand.New(rand.NewPCG(1, 1)), 4096)
	a := make([]complex128, len(x))
	b.Run("tandem", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			copy(a, x)
			p.Transform(a)
		}
	})
	b.Run("go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			copy(a, x)
			radix8(a)
			for _, ps := range p.radix4 {
				radix4Go(a, ps.h, ps.tw)
			}
			radix2Go(a, p.radix2.h, p.radix2.tw)
		}
	})
	b.Run("copy", func(b *testing.B) {
		for b.Loop() {
			copy(a, x)
		}
	})
}
