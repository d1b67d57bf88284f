//go:build amd64

package ot

import "encoding/binary"

// senderPadsAsm sets out[v] to the low word of H(idx, q ⊕ cs[v]) for all
// 256 values v, with q = [x0 (2 words), mix (2 words)] of the Sender's row
// in the layout of cs (low half, then low ⊕ high half) and the round keys
// rk of π. It is hasher.run's hash without the intermediate arrays: the
// three AES layers of eight blocks at a time stay in registers. It
// requires AES-NI.
//
//go:noescape
func senderPadsAsm(rk *[11][16]byte, q *[4]uint64, cs *[Values][4]uint64, idx uint64, out *[Values]uint64)

// senderPadsVAES is senderPadsAsm on AVX-512 VAES, 32 blocks at a time.
// It requires hashHasVAES.
//
//go:noescape
func senderPadsVAES(rk *[11][16]byte, q *[4]uint64, cs *[Values][4]uint64, idx uint64, out *[Values]uint64)

// senderPads16VAES sets out[32p+16h+v] to the pad of value v < 16 of OT
// h of pair p, for pairs pairs of OTs given by their constants (A, B,
// K2; see the assembly) and cs16 (Sender.cs16). It requires hashHasVAES.
//
//go:noescape
func senderPads16VAES(rk *[11][16]byte, consts *[6]uint64, cs16 *[2][16][2]uint64, pairs int, out *uint64)

// hashBlocksAsm is hasher.run on n blocks with AES-NI: block k has x0 at
// x[2k:2k+2] and mix at mix[2k:2k+2], its OT index is first + k>>shift
// (shift < 64), and out[k] is set to the low word of its hash. n may be 0.
//
//go:noescape
func hashBlocksAsm(rk *[11][16]byte, x *uint64, mix *uint64, n int, first uint64, shift uint64, out *uint64)

// hashBlocksVAES is hashBlocksAsm on AVX-512 VAES. It requires
// hashHasVAES. It never reads or writes memory past the n blocks
// (the last partial group uses masked loads and stores).
//
//go:noescape
func hashBlocksVAES(rk *[11][16]byte, x *uint64, mix *uint64, n int, first uint64, shift uint64, out *uint64)

// hashXGETBV0 returns the low half of XCR0, the state components the OS
// saves and restores.
func hashXGETBV0() (eax uint32)

// hashHasVAES reports whether the VAES code may run: the CPU has
// AVX512F and VAES (CPUID.(7,0):EBX bit 16, ECX bit 9) and AVX, and the OS
// has enabled the XMM, YMM and the three AVX-512 state components in XCR0
// (bits 1, 2, 5, 6, 7; CPUID.1:ECX.OSXSAVE says XGETBV may be used).
// Without the OS support the first ZMM instruction would fault.
var hashHasVAES = func() bool {
	if !useAsm {
		return false // the VAES code is only ever an upgrade of AES-NI
	}
	maxLeaf, _, _, _ := aesCPUID(0, 0)
	if maxLeaf < 7 {
		return false
	}
	const osxsave, avx = 1 << 27, 1 << 28
	if _, _, ecx, _ := aesCPUID(1, 0); ecx&osxsave == 0 || ecx&avx == 0 {
		return false
	}
	const xcr0 = 1<<1 | 1<<2 | 1<<5 | 1<<6 | 1<<7
	if hashXGETBV0()&xcr0 != xcr0 {
		return false
	}
	_, ebx, ecx, _ := aesCPUID(7, 0)
	return ebx&(1<<16) != 0 && ecx&(1<<9) != 0
}()

// hashBest is the fastest hash implementation this machine runs.
var hashBest = func() hashImpl {
	switch {
	case hashHasVAES:
		return hashVAES
	case useAsm:
		return hashAESNI
	}
	return hashGo
}()

// senderPadsWith runs impl's senderPads (impl is hashAESNI or hashVAES).
func senderPadsWith(impl hashImpl, q *[4]uint64, cs *[Values][4]uint64, idx uint64, out *[Values]uint64) {
	if impl == hashVAES {
		senderPadsVAES(&prp.rk, q, cs, idx, out)
		return
	}
	senderPadsAsm(&prp.rk, q, cs, idx, out)
}

// hashBlocksWith runs impl's hashBlocks (impl is hashAESNI or hashVAES)
// on len(out) blocks.
func hashBlocksWith(impl hashImpl, x, mix []uint64, first uint64, shift uint, out []uint64) {
	n := len(out)
	if n == 0 {
		return
	}
	if len(x) < 2*n || len(mix) < 2*n || shift >= 64 {
		panic("ot: hashBlocksWith: bad arguments")
	}
	if impl == hashVAES {
		hashBlocksVAES(&prp.rk, &x[0], &mix[0], n, first, uint64(shift), &out[0])
		return
	}
	hashBlocksAsm(&prp.rk, &x[0], &mix[0], n, first, uint64(shift), &out[0])
}

// pads16 is Batch.padsNWith for n = 16 with VAES (ok false: not
// available): the assembly forms the rows from per-OT constants and
// cs16 itself, so no rows are written to memory.
func (b *Batch) pads16(lo, hi, d int, pads []uint64) (ok bool) {
	if !hashHasVAES {
		return false
	}
	rk0 := [2]uint64{binary.LittleEndian.Uint64(prp.rk[0][:8]), binary.LittleEndian.Uint64(prp.rk[0][8:])}
	rk10 := [2]uint64{binary.LittleEndian.Uint64(prp.rk[10][:8]), binary.LittleEndian.Uint64(prp.rk[10][8:])}
	const chunk = 64 // OTs a call
	var consts [chunk][6]uint64
	var tail [32]uint64
	for c := lo; c < hi; c += chunk {
		m := min(chunk, hi-c)
		for i := range m {
			q := &b.q[c+i]
			idx := b.first + uint64(c+i) + uint64(d)<<60
			consts[i] = [6]uint64{
				q[0] ^ rk0[0], q[1] ^ rk0[1],
				q[2] ^ rk0[0] ^ rk10[0], q[3] ^ rk0[1] ^ rk10[1],
				idx ^ rk0[0] ^ rk10[0], tweakHigh ^ rk0[1] ^ rk10[1],
			}
		}
		out := pads[(c-lo)*16 : (c-lo+m)*16]
		if even := m &^ 1; even > 0 {
			senderPads16VAES(&prp.rk, &consts[0], &b.snd.cs16, even/2, &out[0])
		}
		if m&1 == 1 { // the last OT, paired with a copy of itself
			consts[m] = consts[m-1]
			senderPads16VAES(&prp.rk, &consts[m-1], &b.snd.cs16, 1, &tail[0])
			copy(out[16*(m-1):], tail[:16])
		}
	}
	return true
}
