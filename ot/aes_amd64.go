//go:build amd64

package ot

// useAsm reports whether encryptBlocks uses the AES-NI assembly. It is set
// once at start-up from CPUID and never changed afterwards.
var useAsm = aesCPUHasAESNI()

// encryptBlocksAsm encrypts n consecutive 16-byte blocks from src into dst
// with the expanded key rk, eight blocks at a time with a one-block tail.
// It requires AES-NI. n == 0 is allowed (nothing is read or written). dst
// and src must either be equal or not overlap at all.
//
//go:noescape
func encryptBlocksAsm(rk *[11][16]byte, dst, src *byte, n int)

// aesCPUID executes the CPUID instruction with EAX = leaf, ECX = subleaf.
func aesCPUID(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// aesCPUHasAESNI reports whether the CPU implements AES-NI
// (CPUID.01H:ECX bit 25). Leaf 1 exists on every amd64 processor, and the
// instructions only touch XMM state, which every amd64 OS saves, so no
// XGETBV check is needed.
func aesCPUHasAESNI() bool {
	_, _, ecx, _ := aesCPUID(1, 0)
	return ecx&(1<<25) != 0
}
