//go:build amd64

package ot

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
