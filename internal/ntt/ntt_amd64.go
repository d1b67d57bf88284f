//go:build amd64 && !purego

package ntt

import "golang.org/x/sys/cpu"

// useAsm: the kernels need AVX-512 F (64-bit lanes, VPERMT2Q, VPMINUQ)
// and DQ (VPMULLQ).
var useAsm = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ

// fwdWide and invWide run one stage with butterfly distance t ≥ 8 over m
// groups, from src to dst (the same slice after the first stage).
//
//go:noescape
func fwdWide(dst, src *uint64, t, m int, w, wp *uint64, q uint64)

//go:noescape
func invWide(dst, src *uint64, t, m int, w, wp *uint64, q uint64)

// fwdNarrow and invNarrow run one stage with distance 4, 2 or 1 over
// blocks of 16.
//
//go:noescape
func fwdNarrow(dst, src *uint64, blocks int, w, wp *uint64, q uint64, idx *[4][8]uint64)

//go:noescape
func invNarrow(dst, src *uint64, blocks int, w, wp *uint64, q uint64, idx *[4][8]uint64)

// reduce6q maps values in [0, 6q) to [0, q), 8 at a time.
//
//go:noescape
func reduce6q(a *uint64, n int, q uint64)

// scaleReduce multiplies values below 2q by w (Shoup's wp) into [0, q).
//
//go:noescape
func scaleReduce(a *uint64, n int, w, wp, q uint64)

// butterflies runs n/8 vector butterflies on registers only (benchmark).
//
//go:noescape
func butterflies(n int, q uint64)

func (p *Plan) forwardAsm(a, src []uint64) {
	m, t := 1, p.n/2
	for ; t >= 8; m, t = 2*m, t/2 {
		fwdWide(&a[0], &src[0], t, m, &p.fwd.w[0], &p.fwd.wp[0], p.q)
		src = a
	}
	for s := range p.fwd.narrow {
		fwdNarrow(&a[0], &a[0], p.n/16, &p.fwd.narrow[s].w[0], &p.fwd.narrow[s].wp[0], p.q, &narrowIndex[s])
	}
	reduce6q(&a[0], p.n, p.q)
}

func (p *Plan) inverseAsm(a, src []uint64) {
	for s := 2; s >= 0; s-- { // distances 1, 2, 4
		invNarrow(&a[0], &src[0], p.n/16, &p.inv.narrow[s].w[0], &p.inv.narrow[s].wp[0], p.q, &narrowIndex[s])
		src = a
	}
	for m, t := p.n/16, 8; m >= 1; m, t = m/2, 2*t {
		invWide(&a[0], &a[0], t, m, &p.inv.w[0], &p.inv.wp[0], p.q)
	}
	scaleReduce(&a[0], p.n, p.nInv, p.nInvP, p.q)
}
