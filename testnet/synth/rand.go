package synth

import (
	"math"
	"math/bits"
)

// rng is a small splitmix64 generator. Every person and every side draws
// from its own stream keyed by (seed, person, stream), so a person's data do
// not depend on generation order and files can be written in any order.
type rng struct{ s uint64 }

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func newRNG(seed int64, person int64, stream uint64) rng {
	return rng{splitmix(splitmix(uint64(seed)^stream*0x632be59bd9b4e019) ^ uint64(person))}
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	x := r.s
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// float returns a uniform value in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// intn returns a uniform value in [0, n); n > 0.
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// bernoulli returns true with probability p.
func (r *rng) bernoulli(p float64) bool { return r.float() < p }

// normal returns a standard normal value (Box–Muller).
func (r *rng) normal() float64 {
	u := r.float()
	if u < 1e-300 {
		u = 1e-300
	}
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*r.float())
}

// pick returns an index drawn with the given (unnormalised) weights.
func (r *rng) pick(w []float64) int {
	var sum float64
	for _, x := range w {
		sum += x
	}
	u := r.float() * sum
	for i, x := range w {
		if u < x {
			return i
		}
		u -= x
	}
	return len(w) - 1
}

// affine is a bijection of [0, n) (x ↦ (a·x + b) mod n with gcd(a, n) = 1),
// good enough to scatter rows; it needs O(1) memory at any n.
type affine struct{ a, b, n uint64 }

func newAffine(n int64, r *rng) affine {
	if n <= 1 {
		return affine{1, 0, uint64(max(n, 1))}
	}
	un := uint64(n)
	for {
		a := r.next()%un | 1
		if gcd(a, un) == 1 {
			return affine{a, r.next() % un, un}
		}
	}
}

func (p affine) at(x int64) int64 {
	hi, lo := bits.Mul64(p.a, uint64(x))
	_, rem := bits.Div64(hi, lo, p.n) // hi < n because a, x < n
	return int64((rem + p.b) % p.n)
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
