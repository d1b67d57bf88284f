package psi_test

import (
	"testing"

	"github.com/tandem-dev/tandem/psi"
)

func TestPermutationBijection(t *testing.T) {
	seed := [32]byte{1, 2, 3}
	for n := int64(0); n <= 300; n++ {
		p, err := psi.Permutation(seed, n)
		if err != nil {
			t.Fatal(err)
		}
		if p.Len() != n {
			t.Fatalf("Len() = %d, want %d", p.Len(), n)
		}
		seen := make([]bool, n)
		for i := range uint64(n) {
			j := p.Apply(i)
			if j >= uint64(n) {
				t.Fatalf("n=%d: Apply(%d) = %d out of range", n, i, j)
			}
			if seen[j] {
				t.Fatalf("n=%d: Apply not injective at %d", n, j)
			}
			seen[j] = true
			if back := p.Invert(j); back != i {
				t.Fatalf("n=%d: Invert(Apply(%d)) = %d", n, i, back)
			}
		}
	}
}

func TestPermutationLarge(t *testing.T) {
	// Sizes around powers of two exercise unbalanced halves and cycle walking.
	seed := [32]byte{9}
	for _, n := range []int64{1 << 16, 1<<16 + 1, 100_003, 1<<17 - 1} {
		p, err := psi.Permutation(seed, n)
		if err != nil {
			t.Fatal(err)
		}
		seen := make([]bool, n)
		fixed := 0
		for i := range uint64(n) {
			j := p.Apply(i)
			if seen[j] {
				t.Fatalf("n=%d: not injective", n)
			}
			seen[j] = true
			if j == i {
				fixed++
			}
			if i%97 == 0 && p.Invert(j) != i {
				t.Fatalf("n=%d: Invert(Apply(%d)) != %d", n, i, i)
			}
		}
		// A random permutation has Poisson(1) fixed points.
		if fixed > 20 {
			t.Errorf("n=%d: %d fixed points, want about 1", n, fixed)
		}
	}
}

func TestPermutationDeterministic(t *testing.T) {
	const n = 1000
	p1, _ := psi.Permutation([32]byte{7}, n)
	p2, _ := psi.Permutation([32]byte{7}, n)
	q, _ := psi.Permutation([32]byte{8}, n)
	r, _ := psi.Permutation([32]byte{7}, n+1)
	sameQ, sameR := 0, 0
	for i := range uint64(n) {
		if p1.Apply(i) != p2.Apply(i) {
			t.Fatalf("same seed, different image at %d", i)
		}
		if p1.Apply(i) == q.Apply(i) {
			sameQ++
		}
		if p1.Apply(i) == r.Apply(i) {
			sameR++
		}
	}
	if sameQ > 20 || sameR > 20 {
		t.Errorf("independent permutations agree on %d / %d points", sameQ, sameR)
	}
}

func TestPermutationErrors(t *testing.T) {
	if _, err := psi.Permutation([32]byte{}, -1); err == nil {
		t.Error("Permutation(-1) succeeded")
	}
	p, _ := psi.Permutation([32]byte{}, 5)
	for _, f := range []func(){func() { p.Apply(5) }, func() { p.Invert(5) }} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("out-of-range index did not panic")
				}
			}()
			f()
		}()
	}
}

func BenchmarkPermutation(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int64
	}{{"1e6", 1e6}, {"1e8", 1e8}} {
		n := size.n
		p, _ := psi.Permutation([32]byte{1}, n)
		b.Run("Apply/n="+size.name, func(b *testing.B) {
			b.ReportAllocs()
			var i uint64
			for b.Loop() {
				p.Apply(i)
				i++
				if i == uint64(n) {
					i = 0
				}
			}
		})
		b.Run("Invert/n="+size.name, func(b *testing.B) {
			b.ReportAllocs()
			var i uint64
			for b.Loop() {
				p.Invert(i)
				i++
				if i == uint64(n) {
					i = 0
				}
			}
		})
	}
}
