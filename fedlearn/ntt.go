package fedlearn

import (
	"github.com/tuneinsight/lattigo/v6/ring"

	"github.com/tandem-dev/tandem/internal/ntt"
)

// nttPlans returns one plan per prime of r when the AVX-512 transform is
// available (2.6× lattigo's per transform, BENCHMARKS.md), else nil.
func nttPlans(r *ring.Ring) []*ntt.Plan {
	if !ntt.Accelerated() {
		return nil
	}
	var plans []*ntt.Plan
	for _, s := range r.SubRings[:r.ModuliChainLength()] {
		roots := make([]uint64, len(s.RootsForward))
		for k, x := range s.RootsForward {
			roots[k] = ring.MRed(x, 1, s.Modulus, s.MRedConstant) // out of Montgomery form
		}
		p, err := ntt.New(s.Modulus, roots)
		if err != nil {
			return nil // a ring the kernels do not take: lattigo's transform
		}
		plans = append(plans, p)
	}
	return plans
}

// toNTT writes the NTT of src (values < 4q) into dst, values in [0, q):
// the same as s.ringQ.NTT(src, dst), faster where the CPU allows.
func (s *Session) toNTT(src, dst ring.Poly) {
	if s.fwd == nil {
		s.ringQ.NTT(src, dst)
		return
	}
	for i, p := range s.fwd {
		p.Forward(dst.Coeffs[i], src.Coeffs[i])
	}
}
