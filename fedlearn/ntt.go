package fedlearn

import (
	"github.com/tuneinsight/lattigo/v6/ring"

	"github.com/tandem-dev/tandem/internal/ntt"
)

// nttPlans returns one plan per prime of r when the AVX-512 transforms are
// available (2.6× lattigo's forward and 2.4× its inverse per transform,
// BENCHMARKS.md), else nil.
func nttPlans(r *ring.Ring) []*ntt.Plan {
	if !ntt.Accelerated() {
		return nil
	}
	var plans []*ntt.Plan
	for _, s := range r.SubRings[:r.ModuliChainLength()] {
		fwd, inv := make([]uint64, len(s.RootsForward)), make([]uint64, len(s.RootsBackward))
		for k := range fwd { // out of Montgomery form
			fwd[k] = ring.MRed(s.RootsForward[k], 1, s.Modulus, s.MRedConstant)
			inv[k] = ring.MRed(s.RootsBackward[k], 1, s.Modulus, s.MRedConstant)
		}
		p, err := ntt.New(s.Modulus, fwd, inv)
		if err != nil {
			return nil // a ring the kernels do not take: lattigo's transforms
		}
		plans = append(plans, p)
	}
	return plans
}

// forwardNTT writes the NTT of src (values < 4q) into dst, values in
// [0, q): r.NTT(src, dst), faster where plans is not nil.
func forwardNTT(r *ring.Ring, plans []*ntt.Plan, src, dst ring.Poly) {
	if plans == nil {
		r.NTT(src, dst)
		return
	}
	for i, p := range plans {
		p.Forward(dst.Coeffs[i], src.Coeffs[i])
	}
}

// inverseNTT writes the inverse NTT of src (values < 2q) into dst, values
// in [0, q): r.INTT(src, dst), faster where plans is not nil.
func inverseNTT(r *ring.Ring, plans []*ntt.Plan, src, dst ring.Poly) {
	if plans == nil {
		r.INTT(src, dst)
		return
	}
	for i, p := range plans {
		p.Inverse(dst.Coeffs[i], src.Coeffs[i])
	}
}

// toNTT and toINTT are the transforms of the session's ring Q.
func (s *Session) toNTT(src, dst ring.Poly)  { forwardNTT(s.ringQ, s.plans, src, dst) }
func (s *Session) toINTT(src, dst ring.Poly) { inverseNTT(s.ringQ, s.plans, src, dst) }
