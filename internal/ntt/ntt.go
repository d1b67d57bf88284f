// Package ntt is the negacyclic number-theoretic transform and its
// inverse for one prime below 2^61, bit-exact with lattigo's ring.NTT and
// ring.INTT (same roots, same order, N⁻¹ included, values reduced to
// [0, q)). On CPUs with AVX-512 the forward transform is 2.6× as fast as
// lattigo's and within 1.2× of its butterfly's compute limit, the inverse
// 2.4× (BENCHMARKS.md).
//
// Why not lattigo's: the forward NTT was a third of a training epoch's
// CPU. lattigo's is scalar Go with Montgomery products, three 64-bit
// multiplications a butterfly; this one uses Harvey's lazy butterfly with
// Shoup's precomputed quotients (Gentleman–Sande for the inverse), eight
// lanes at a time. The assembly has no branch or memory access that
// depends on the data (keys and messages go through it). Where AVX-512 is
// missing, callers keep lattigo's NTT; the Go version here is the
// reference the tests hold the assembly to.
package ntt

import (
	"errors"
	"math/big"
	"math/bits"
)

// Plan holds one prime's twiddles in the order the transforms read them.
type Plan struct {
	n, logN int
	q       uint64
	fwd     tables // ψ^k: lattigo's RootsForward
	inv     tables // ψ^−k: lattigo's RootsBackward
	// nInv = N⁻¹ mod q and its Shoup quotient: the inverse's last factor.
	nInv, nInvP uint64
}

// tables are one direction's twiddles: w[m+i] is the twiddle of group i
// at the stage with m groups (lattigo's layout, canonical instead of
// Montgomery), wp[k] = ⌊w[k]·2^64/q⌋ (Shoup's precomputed quotient), and
// narrow[s] the stages of distance 4, 2, 1 expanded per lane, in the
// order the narrow kernels consume them (8 per 16-element block).
type tables struct {
	w, wp  []uint64
	narrow [3]struct{ w, wp []uint64 }
}

// ErrPlan reports parameters the transform does not support.
var ErrPlan = errors.New("ntt: need a power-of-two length ≥ 16, an odd prime below 2^61 and roots below it")

// New builds the plan for length n = len(forward) and prime q; forward[k]
// and backward[k] < q are lattigo's RootsForward[k] and RootsBackward[k]
// out of Montgomery form.
func New(q uint64, forward, backward []uint64) (*Plan, error) {
	n := len(forward)
	if n < 16 || n&(n-1) != 0 || len(backward) != n || q < 3 || q>>61 != 0 || q&1 == 0 {
		return nil, ErrPlan
	}
	p := &Plan{n: n, logN: bits.TrailingZeros(uint(n)), q: q}
	var err error
	if p.fwd, err = newTables(q, forward); err != nil {
		return nil, err
	}
	if p.inv, err = newTables(q, backward); err != nil {
		return nil, err
	}
	p.nInv = new(big.Int).ModInverse(big.NewInt(int64(n)), new(big.Int).SetUint64(q)).Uint64()
	p.nInvP = shoup(p.nInv, q)
	return p, nil
}

func newTables(q uint64, roots []uint64) (tables, error) {
	n := len(roots)
	t := tables{w: make([]uint64, n), wp: make([]uint64, n)}
	for k, r := range roots {
		if r >= q {
			return tables{}, ErrPlan
		}
		t.w[k], t.wp[k] = r, shoup(r, q)
	}
	for s, d := range [3]int{4, 2, 1} {
		m := n / (2 * d)
		lanes := narrowIndex[s][0]
		w, wp := make([]uint64, n/2), make([]uint64, n/2)
		for b := range n / 16 {
			for l, e := range lanes {
				g := 16*b + int(e)
				w[8*b+l], wp[8*b+l] = t.w[m+g/(2*d)], t.wp[m+g/(2*d)]
			}
		}
		t.narrow[s].w, t.narrow[s].wp = w, wp
	}
	return t, nil
}

// shoup returns ⌊w·2^64/q⌋ for w < q.
func shoup(w, q uint64) uint64 {
	quo, _ := bits.Div64(w, 0, q)
	return quo
}

// narrowIndex[s] are the permutations of the last three stages (butterfly
// distance 4, 2, 1) on a block of 16 elements held in two vectors A (0–7)
// and B (8–15), in VPERMT2Q's encoding (0–7 pick from the first table,
// 8–15 from the second): the X lanes, the Y lanes, then the inverse that
// puts (X′, Y′) back as A and as B.
var narrowIndex = [3][4][8]uint64{
	{{0, 1, 2, 3, 8, 9, 10, 11}, {4, 5, 6, 7, 12, 13, 14, 15}, {0, 1, 2, 3, 8, 9, 10, 11}, {4, 5, 6, 7, 12, 13, 14, 15}},
	{{0, 1, 4, 5, 8, 9, 12, 13}, {2, 3, 6, 7, 10, 11, 14, 15}, {0, 1, 8, 9, 2, 3, 10, 11}, {4, 5, 12, 13, 6, 7, 14, 15}},
	{{0, 2, 4, 6, 8, 10, 12, 14}, {1, 3, 5, 7, 9, 11, 13, 15}, {0, 8, 1, 9, 2, 10, 3, 11}, {4, 12, 5, 13, 6, 14, 7, 15}},
}

// Forward writes the NTT of src to dst (the same slice, or two that do not
// overlap), each at least as long as the plan's roots. Inputs must be below 4q; outputs are in
// [0, q).
func (p *Plan) Forward(dst, src []uint64) {
	dst, src = p.slices(dst, src)
	if useAsm {
		p.forwardAsm(dst, src) // the first stage reads src
		return
	}
	copy(dst, src)
	p.forwardGo(dst)
}

// Inverse writes the inverse NTT of src to dst, lattigo's ring.INTT (the
// factor N⁻¹ included): the same slice or two that do not overlap, inputs
// below 2q, outputs in [0, q).
func (p *Plan) Inverse(dst, src []uint64) {
	dst, src = p.slices(dst, src)
	if useAsm {
		p.inverseAsm(dst, src)
		return
	}
	copy(dst, src)
	p.inverseGo(dst)
}

func (p *Plan) slices(dst, src []uint64) ([]uint64, []uint64) {
	if len(dst) < p.n || len(src) < p.n {
		panic("ntt: slice shorter than the plan")
	}
	return dst[:p.n], src[:p.n]
}

// forwardGo is the transform in Go: Harvey's butterfly, values kept in
// [0, 4q) between stages (4q < 2^64 since q < 2^61).
func (p *Plan) forwardGo(a []uint64) {
	q, twoQ := p.q, 2*p.q
	for m, t := 1, p.n/2; m < p.n; m, t = 2*m, t/2 {
		for i := range m {
			w, wp := p.fwd.w[m+i], p.fwd.wp[m+i]
			x, y := a[2*i*t:2*i*t+t], a[2*i*t+t:2*i*t+2*t]
			for j := range x {
				u := x[j]
				if u >= twoQ {
					u -= twoQ
				}
				v := mulShoup(y[j], w, wp, q)
				x[j], y[j] = u+v, u+twoQ-v
			}
		}
	}
	for i, x := range a {
		a[i] = reduce4q(x, q)
	}
}

// inverseGo is the inverse in Go: Gentleman–Sande butterflies, values
// kept in [0, 2q), then the factor N⁻¹.
func (p *Plan) inverseGo(a []uint64) {
	q, twoQ := p.q, 2*p.q
	for m, t := p.n/2, 1; m >= 1; m, t = m/2, 2*t {
		for i := range m {
			w, wp := p.inv.w[m+i], p.inv.wp[m+i]
			x, y := a[2*i*t:2*i*t+t], a[2*i*t+t:2*i*t+2*t]
			for j := range x {
				u, v := x[j], y[j]
				s := u + v
				if s >= twoQ {
					s -= twoQ
				}
				x[j], y[j] = s, mulShoup(u+twoQ-v, w, wp, q) // < 2q: Shoup's product is exact here
			}
		}
	}
	for i, x := range a {
		a[i] = reduce4q(mulShoup(x, p.nInv, p.nInvP, q), q)
	}
}

// reduce4q maps x < 4q to x mod q.
func reduce4q(x, q uint64) uint64 {
	if x >= 2*q {
		x -= 2 * q
	}
	if x >= q {
		x -= q
	}
	return x
}

// mulShoup returns y·w mod q in [0, 2q), for any y and w < q.
func mulShoup(y, w, wp, q uint64) uint64 {
	hi, _ := bits.Mul64(y, wp)
	return y*w - hi*q
}

// Accelerated reports whether Forward runs the AVX-512 kernels. Without
// them the Go version here is slower than lattigo's unrolled one, so
// callers keep lattigo's NTT.
func Accelerated() bool { return useAsm }
