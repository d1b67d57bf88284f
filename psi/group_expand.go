package psi

import (
	"crypto/sha512"
	"hash"
)

// xmdOversizePrefix is the RFC 9380 §5.3.3 prefix for hashing a long DST.
const xmdOversizePrefix = "H2C-OVERSIZE-DST-"

// xmdDSTPrime returns DST_prime = DST || I2OSP(len(DST), 1) for
// expand_message_xmd with SHA-512, first replacing a DST longer than 255 bytes
// by SHA-512("H2C-OVERSIZE-DST-" || DST) (RFC 9380 §5.3.3).
func xmdDSTPrime(dst []byte) []byte {
	if len(dst) > 255 {
		h := sha512.New()
		h.Write([]byte(xmdOversizePrefix))
		h.Write(dst)
		dst = h.Sum(nil)
	}
	out := make([]byte, 0, len(dst)+1)
	out = append(out, dst...)
	return append(out, byte(len(dst)))
}

// xmdExpander computes expand_message_xmd (RFC 9380 §5.3.1) with SHA-512.
// It keeps its hash state between calls so that expanding allocates nothing;
// it is not safe for concurrent use (give each goroutine its own).
type xmdExpander struct {
	h      hash.Hash
	b0, bi [sha512.Size]byte
	zpad   [sha512.BlockSize]byte // Z_pad: s_in_bytes zero bytes
	ctr    [3]byte                // scratch for the I2OSP fields
}

func newXMDExpander() *xmdExpander { return &xmdExpander{h: sha512.New()} }

// expand writes len(out) uniform bytes for msg under dstPrime (from
// xmdDSTPrime) into out. len(out) must be at most 255*64 and 65535.
func (x *xmdExpander) expand(out, msg, dstPrime []byte) {
	const bLen = sha512.Size
	n := len(out)
	ell := (n + bLen - 1) / bLen
	if ell > 255 || n > 0xffff || n == 0 {
		panic("psi: expand_message_xmd: invalid output length")
	}
	h := x.h
	// Steps 6–7: b_0 = H(Z_pad || msg || I2OSP(len_in_bytes, 2) || I2OSP(0, 1) || DST_prime).
	h.Reset()
	h.Write(x.zpad[:])
	h.Write(msg)
	x.ctr = [3]byte{byte(n >> 8), byte(n), 0}
	h.Write(x.ctr[:3])
	h.Write(dstPrime)
	h.Sum(x.b0[:0])
	// Step 8: b_1 = H(b_0 || I2OSP(1, 1) || DST_prime).
	h.Reset()
	h.Write(x.b0[:])
	x.ctr[0] = 1
	h.Write(x.ctr[:1])
	h.Write(dstPrime)
	h.Sum(x.bi[:0])
	off := copy(out, x.bi[:])
	// Steps 9–10: b_i = H(strxor(b_0, b_(i-1)) || I2OSP(i, 1) || DST_prime).
	for i := 2; i <= ell; i++ {
		for j := range x.bi {
			x.bi[j] ^= x.b0[j]
		}
		h.Reset()
		h.Write(x.bi[:])
		x.ctr[0] = byte(i)
		h.Write(x.ctr[:1])
		h.Write(dstPrime)
		h.Sum(x.bi[:0])
		off += copy(out[off:], x.bi[:])
	}
}

// expandMessageXMD is the allocating convenience form of xmdExpander.expand.
func expandMessageXMD(msg, dst []byte, n int) []byte {
	out := make([]byte, n)
	newXMDExpander().expand(out, msg, xmdDSTPrime(dst))
	return out
}
