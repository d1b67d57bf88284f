package ot

import (
	"crypto/sha256"
	"encoding/binary"
	"unsafe"
)

// The hash of the extension, H(i, x) for a 256-bit row x = (x0, x1) and
// the OT index i, built on a fixed-key AES permutation π (public key):
//
//	y = π(x0) ⊕ x0 ⊕ x1          Matyas–Meyer–Oseas on x0, chained with x1
//	H = π(π(y) ⊕ T(i)) ⊕ π(y)     TMMO of Guo et al. (S&P 2020), a tweakable
//	                              circular correlation-robust hash
//
// Why this shape: the Sender hashes 256 rows per OT, so H must cost a few
// AES blocks, not a SHA-3 call (≈ 100 ns: 26 µs an OT). A row the Receiver
// did not choose differs from its own by C(v)∧s with 128 unknown bits of
// s, split between x0 and x1 as 64/64, or 0/128 when v differs from the
// choice in its top bit only (C is linear: the difference is C(v ⊕ r)); the chain makes H depend on both halves through π, so
// guessing one half (2^64 work when it holds 64 bits) does not expose the
// output: a meet-in-the-middle needs π(y), which needs both halves. The
// index tweak T(i) = (i, "tandemot") separates OTs. Three π calls per pad.
//
// hasher.run below is the definition and the portable implementation:
// each π layer batched over thousands of independent blocks (aes.go), so
// the AES pipeline stays full, with Go loops in between. On amd64 the
// whole hash runs in assembly instead (hash_amd64.s): the three layers of
// a group of blocks stay in registers, the XORs between them are folded
// into AES round keys, and the Sender's 256 rows of an OT are formed from
// q and C(v)∧s on the fly, so no intermediate arrays are written at all.

var prp = func() *fixedAES {
	d := sha256.Sum256([]byte("tandem/v1 ot fixed-key AES"))
	return newFixedAES([16]byte(d[:16]))
}()

// tweakHigh domain-separates the tweak from other uses of π.
const tweakHigh = 0x746f6d65646e6174 // "tandemot"

// A block is two words, w[0] the low 8 bytes in little-endian order: the
// hash is defined on that byte string whatever the machine.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// encryptWords applies π to each block of src (two words each) into dst.
// On little-endian machines the words already are the block's bytes.
func encryptWords(dst, src []uint64, tmp []byte) {
	if littleEndian {
		prp.encryptBlocks(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 8*len(src)),
			unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(src))), 8*len(src)))
		return
	}
	tmp = tmp[:8*len(src)]
	for k, w := range src {
		binary.LittleEndian.PutUint64(tmp[8*k:], w)
	}
	prp.encryptBlocks(tmp, tmp)
	for k := range src {
		dst[k] = binary.LittleEndian.Uint64(tmp[8*k:])
	}
}

// hasher holds one goroutine's hashing memory: per block, x0 (x) and
// x0 ⊕ x1 (mix), two words each.
type hasher struct {
	x, mix, a, b []uint64
	tmp          []byte
}

func (h *hasher) size(n int) {
	if cap(h.x) < 2*n {
		h.x, h.mix, h.a, h.b = make([]uint64, 2*n), make([]uint64, 2*n), make([]uint64, 2*n), make([]uint64, 2*n)
		if !littleEndian {
			h.tmp = make([]byte, 16*n)
		}
	}
}

// run hashes the n blocks loaded in x and mix; block k is of OT
// first + k>>shift. out[k] is the low word of H.
func (h *hasher) run(n int, first uint64, shift uint, out []uint64) {
	x, mix, a, b := h.x[:2*n], h.mix[:2*n], h.a[:2*n], h.b[:2*n]
	encryptWords(a, x, h.tmp) // π(x0)
	for k := range x {
		x[k] = a[k] ^ x[k] ^ mix[k] // y = π(x0) ⊕ x0 ⊕ x1
	}
	encryptWords(b, x, h.tmp) // π(y)
	for k := range n {
		x[2*k] = b[2*k] ^ (first + uint64(k>>shift))
		x[2*k+1] = b[2*k+1] ^ tweakHigh
	}
	encryptWords(a, x, h.tmp) // π(π(y) ⊕ T(i))
	for k := range n {
		out[k] = a[2*k] ^ b[2*k]
	}
}

// hashImpl is one implementation of the hash: hasher.run, or the amd64
// assembly with AES-NI or with AVX-512 VAES. hashBest (per architecture)
// is the one used; tests and benchmarks name the others explicitly.
type hashImpl uint8

const (
	hashGo hashImpl = iota
	hashAESNI
	hashVAES
)

func (i hashImpl) String() string {
	return [...]string{"go", "aesni", "vaes"}[i]
}

// hashRows sets out[k] to the low word of H(first+k, xs[k]).
func (h *hasher) hashRows(first uint64, xs []row, out []uint64) {
	h.hashRowsWith(hashBest, first, xs, out)
}

func (h *hasher) hashRowsWith(impl hashImpl, first uint64, xs []row, out []uint64) {
	n := len(xs)
	h.size(n)
	for k, r := range xs {
		h.x[2*k], h.x[2*k+1] = r[0], r[1]
		h.mix[2*k], h.mix[2*k+1] = r[0]^r[2], r[1]^r[3]
	}
	if impl == hashGo {
		h.run(n, first, 0, out)
		return
	}
	hashBlocksWith(impl, h.x[:2*n], h.mix[:2*n], first, 0, out[:n])
}
