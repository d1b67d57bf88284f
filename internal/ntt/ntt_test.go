package ntt

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v6/ring"
)

// lattigoRing returns a ring of degree n over primes of the sizes
// fedlearn uses (60 bits) and one just below the 2^61 limit.
func lattigoRing(t testing.TB, n int) *ring.Ring {
	t.Helper()
	g := ring.NewNTTFriendlyPrimesGenerator(60, uint64(2*n))
	qs, err := g.NextAlternatingPrimes(2)
	if err != nil {
		t.Fatal(err)
	}
	g61 := ring.NewNTTFriendlyPrimesGenerator(61, uint64(2*n))
	q61, err := g61.NextDownstreamPrimes(1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ring.NewRing(n, append(qs, q61...))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// plans builds one Plan per prime from lattigo's own roots.
func plans(t testing.TB, r *ring.Ring) []*Plan {
	t.Helper()
	var ps []*Plan
	for _, s := range r.SubRings[:r.ModuliChainLength()] {
		fwd, inv := make([]uint64, len(s.RootsForward)), make([]uint64, len(s.RootsBackward))
		for k := range fwd {
			fwd[k] = ring.MRed(s.RootsForward[k], 1, s.Modulus, s.MRedConstant)
			inv[k] = ring.MRed(s.RootsBackward[k], 1, s.Modulus, s.MRedConstant)
		}
		p, err := New(s.Modulus, fwd, inv)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// TestForwardMatchesLattigo holds the transform (assembly where the CPU
// has it, and the Go version) to lattigo's NTT, value for value, on
// random inputs below q and, since callers feed lazily reduced values, on
// inputs up to 4q − 1.
func TestForwardMatchesLattigo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{16, 32, 64, 1024, 8192} {
		r := lattigoRing(t, n)
		for i, p := range plans(t, r) {
			q := p.q
			for trial := range 6 {
				in := make([]uint64, n)
				bound := q
				if trial >= 2 {
					bound = 4 * q
				}
				for k := range in {
					switch trial {
					case 4: // the largest input everywhere: the largest products
						in[k] = 4*q - 1
					case 5:
						in[k] = q - 1 - uint64(k&1)
					default:
						in[k] = rng.Uint64N(bound)
					}
				}
				if trial == 3 {
					in[0], in[n-1] = 4*q-1, 4*q-1
				}
				label := fmt.Sprintf("n=%d q=%d trial %d", n, q, trial)
				matchReference(t, label, in, q, r.SubRings[i].NTT,
					impl{"go", p.forwardGo}, impl{"dispatch", func(a []uint64) { p.Forward(a, a) }})
			}
		}
	}
	t.Logf("assembly in use: %v", useAsm)
}

// impl is one implementation under test, in place.
type impl struct {
	name string
	run  func(a []uint64)
}

// matchReference runs every implementation on a copy of in and requires
// each output value to equal lattigo's (reference, given in reduced mod
// q, since lattigo's transforms expect canonical inputs); it returns
// lattigo's output.
func matchReference(t *testing.T, label string, in []uint64, q uint64, reference func(src, dst []uint64), impls ...impl) []uint64 {
	t.Helper()
	reduced, want := make([]uint64, len(in)), make([]uint64, len(in))
	for k, x := range in {
		reduced[k] = x % q
	}
	reference(reduced, want)
	for _, f := range impls {
		got := append([]uint64(nil), in...)
		f.run(got)
		for k := range want {
			if got[k] != want[k] {
				t.Fatalf("%s %s: out[%d] = %d, lattigo %d", label, f.name, k, got[k], want[k])
			}
		}
	}
	return want
}

// TestInverseMatchesLattigo: the inverse against lattigo's INTT (N⁻¹
// included), value for value, on inputs below q and up to 2q − 1, and the
// round trip Inverse(Forward(x)) = x.
func TestInverseMatchesLattigo(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{16, 32, 64, 1024, 8192} {
		r := lattigoRing(t, n)
		for i, p := range plans(t, r) {
			q := p.q
			for trial := range 4 {
				in := make([]uint64, n)
				for k := range in {
					switch trial {
					case 0:
						in[k] = rng.Uint64N(q)
					case 1:
						in[k] = rng.Uint64N(2 * q)
					case 2:
						in[k] = 2*q - 1
					default:
						in[k] = q - 1 - uint64(k&1)
					}
				}
				label := fmt.Sprintf("n=%d q=%d trial %d", n, q, trial)
				want := matchReference(t, label, in, q, r.SubRings[i].INTT,
					impl{"go", p.inverseGo}, impl{"dispatch", func(a []uint64) { p.Inverse(a, a) }})
				back := make([]uint64, n)
				p.Forward(back, want)
				p.Inverse(back, back)
				for k := range back {
					if back[k] != want[k] {
						t.Fatalf("n=%d: Inverse(Forward(x)) differs at %d", n, k)
					}
				}
			}
		}
	}
}

func TestForwardOutOfPlace(t *testing.T) {
	r := lattigoRing(t, 64)
	p := plans(t, r)[0]
	src := make([]uint64, 64)
	for k := range src {
		src[k] = uint64(k * k)
	}
	keep := append([]uint64(nil), src...)
	for name, f := range map[string]func(dst, src []uint64){"Forward": p.Forward, "Inverse": p.Inverse} {
		dst := make([]uint64, 64)
		f(dst, src)
		want := append([]uint64(nil), src...)
		f(want, want)
		for k := range src {
			if src[k] != keep[k] {
				t.Fatalf("%s wrote to its source", name)
			}
			if dst[k] != want[k] {
				t.Fatalf("%s out of place differs at %d", name, k)
			}
		}
	}
}

func TestNewRejects(t *testing.T) {
	for _, c := range []struct {
		q     uint64
		roots []uint64
	}{
		{97, nil},                            // no roots
		{97, make([]uint64, 8)},              // too short
		{97, make([]uint64, 24)},             // not a power of two
		{1 << 61, make([]uint64, 16)},        // even, too large
		{(1 << 61) + 1, make([]uint64, 16)},  // too large
		{96, make([]uint64, 16)},             // even
		{17, append(make([]uint64, 15), 17)}, // root not reduced
	} {
		if _, err := New(c.q, c.roots, c.roots); err == nil {
			t.Errorf("New(%d, %d roots) accepted", c.q, len(c.roots))
		}
	}
}

func BenchmarkForward(b *testing.B) {
	r := lattigoRing(b, 8192)
	p := plans(b, r)[0]
	a := make([]uint64, 8192)
	for k := range a {
		a[k] = uint64(k) * 12345 % p.q
	}
	b.Run("tandem", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.Forward(a, a)
		}
	})
	b.Run("go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.forwardGo(a)
		}
	})
	b.Run("compute-limit", func(b *testing.B) {
		// The same number of butterflies on registers only: no loads,
		// stores, permutations or loop over groups.
		if !useAsm {
			b.Skip("no AVX-512")
		}
		for b.Loop() {
			butterflyCount(p.n/2*p.logN, p.q)
		}
	})
	b.Run("lattigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.SubRings[0].NTT(a, a)
		}
	})
	b.Run("inverse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.Inverse(a, a)
		}
	})
	b.Run("lattigoInverse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.SubRings[0].INTT(a, a)
		}
	})
	b.Run("lattigoLazy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.SubRings[0].NTTLazy(a, a)
		}
	})
}
