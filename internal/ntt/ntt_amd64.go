//go:build amd64 && !purego

package ntt

import "golang.org/x/sys/cpu"

// useAsm: the kernels need AVX-512 F (64-bit lanes, VPERMT2Q, VPMINUQ)
// and DQ (VPMULLQ).
var useAsm = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ

// fwdWide runs one stage with butterfly distance t ≥ 8 over m groups,
// from src to dst (the same slice after the first stage).
//
//go:noescape
func fwdWide(dst, src *uint64, t, m int, w, wp *uint64, q uint64)

// fwdNarrow runs one stage with distance 4, 2 or 1 over blocks of 16.
//
//go:noescape
func fwdNarrow(a *uint64, blocks int, w, wp *uint64, q uint64, idx *[4][8]uint64)

// reduce6q maps values in [0, 6q) to [0, q), 8 at a time.
//
//go:noescape
func reduce6q(a *uint64, n int, q uint64)

func (p *Plan) forwardAsm(a, src []uint64) {
	m, t := 1, p.n/2
	for ; t >= 8; m, t = 2*m, t/2 {
		fwdWide(&a[0], &src[0], t, m, &p.w[0], &p.wp[0], p.q)
		src = a
	}
	for s := range p.narrow {
		fwdNarrow(&a[0], p.n/16, &p.narrow[s].w[0], &p.narrow[s].wp[0], p.q, &narrowIndex[s])
	}
	reduce6q(&a[0], p.n, p.q)
}

// butterflies runs n/8 vector butterflies on registers only (benchmark).
//
//go:noescape
func butterflies(n int, q uint64)
