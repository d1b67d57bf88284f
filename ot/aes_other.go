//go:build !amd64

package ot

// useAsm is always false off amd64: encryptBlocks uses crypto/aes.
var useAsm = false

// encryptBlocksAsm exists only so that the portable code compiles; it is
// never called because useAsm is false.
func encryptBlocksAsm(rk *[11][16]byte, dst, src *byte, n int) {
	panic("ot: encryptBlocksAsm called on a non-amd64 build")
}
