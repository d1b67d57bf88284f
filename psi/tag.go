package psi

import (
	"crypto/sha512"
	"math/bits"
)

// Tag truncation (the step after the last exponentiation: both parties hold
// H(x)^{ab}; the responder sends, and the initiator compares, short tags of
// it instead of the 32-byte element).
//
// False-positive bound. Tags are outputs of SHA-512/256 truncated to t bits,
// which we model as independent uniform strings for distinct final elements.
// Comparing every one of nA tags with every one of nB tags, the expected
// number of false matches is at most nA·nB·2^-t. TagSize picks
// t ≥ 40 + log2(nA·nB), so the expected number of false matches in one job is
// at most 2^-40 (and, by Markov, so is the probability of any false match).

const (
	// tagSecurityBits is the statistical security parameter λ of the tag
	// length: expected false matches per job ≤ 2^-λ.
	tagSecurityBits = 40
	// tagMaxSize is the SHA-512/256 output size; longer tags are pointless.
	tagMaxSize = sha512.Size256
	// tagDomain separates tag hashing from every other use of SHA-512/256 in
	// Tandem. It is followed by one byte holding the tag length, so a tag of
	// one length is never a prefix-truncation of a tag of another length.
	tagDomain = "tandem/psi/tag/v1\x00"
)

// TagSize returns the tag length in bytes for a job in which the two parties
// hold nA and nB elements: ceil((40 + log2(nA·nB)) / 8), at most 32.
// Sizes below 1 are treated as 1. For example 1×1 gives 5 bytes, 1e6 × 1e6
// gives 10 bytes and 1e8 × 1e8 gives 12 bytes.
//
// TagSize is a pure function, safe for concurrent use.
func TagSize(nA, nB int64) int {
	b := TagBits(nA, nB)
	return b / 8
}

// TagBits returns 8·TagSize(nA, nB): the tag length in bits, that is
// 40 + ceil(log2(max(nA,1)·max(nB,1))) rounded up to a whole number of bytes
// and capped at 256.
//
// TagBits is a pure function, safe for concurrent use.
func TagBits(nA, nB int64) int {
	a, b := uint64(max(nA, 1)), uint64(max(nB, 1))
	// ceil(log2(p)) for p = a·b ≥ 1 is the bit length of p-1 (p < 2^126,
	// exact in 128 bits).
	hi, lo := bits.Mul64(a, b)
	lo, borrow := bits.Sub64(lo, 1, 0)
	hi -= borrow
	logCeil := bits.Len64(lo)
	if hi != 0 {
		logCeil = 64 + bits.Len64(hi)
	}
	n := (tagSecurityBits + logCeil + 7) / 8
	return 8 * min(n, tagMaxSize)
}

// Tag writes the len(dst)-byte tag of a final (doubly-blinded) group element
// elem into dst:
//
//	dst = SHA-512/256("tandem/psi/tag/v1" ‖ 0x00 ‖ byte(len(dst)) ‖ elem)[:len(dst)]
//
// elem is normally a 32-byte canonical group encoding; Tag does not parse it.
// Both parties must use the same len(dst), normally TagSize(nA, nB).
// Tag does not allocate for elements up to 64 bytes.
//
// Tag panics if len(dst) is 0 or greater than 32 (a caller bug). It is safe
// for concurrent use as long as dst is not shared.
func Tag(dst, elem []byte) {
	if len(dst) == 0 || len(dst) > tagMaxSize {
		panic("psi: tag length out of range")
	}
	const pre = len(tagDomain) + 1
	var buf [pre + 64]byte
	var sum [sha512.Size256]byte
	if len(elem) <= 64 {
		copy(buf[:], tagDomain)
		buf[pre-1] = byte(len(dst))
		n := pre + copy(buf[pre:], elem)
		sum = sha512.Sum512_256(buf[:n])
	} else {
		h := sha512.New512_256()
		h.Write([]byte(tagDomain))
		h.Write([]byte{byte(len(dst))})
		h.Write(elem)
		h.Sum(sum[:0])
	}
	copy(dst, sum[:])
}
