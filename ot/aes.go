package ot

import (
	"crypto/aes"
	"crypto/cipher"
	"unsafe"
)

// fixedAES is AES-128 under a fixed, public key, used as the random
// permutation π of fixed-key correlation-robust hashing in OT extension
// (H(x) = π(x) ⊕ x and variants). The key is not secret; what matters is
// throughput, because every extended OT costs one or more evaluations of π.
//
// Go's crypto/aes encrypts one block per call, so each block pays the full
// latency of the ten dependent AES rounds (about 4 cycles per AESENC) plus a
// call. The blocks we need are independent, so on amd64 encryptBlocks hands
// the whole batch to an assembly routine that keeps eight blocks in flight:
// it issues round r for all eight blocks before round r+1 of any of them, so
// the AES unit is kept busy instead of waiting on its own result.
type fixedAES struct {
	// rk holds the AES-128 encryption key schedule: round key i is
	// w[4i] || w[4i+1] || w[4i+2] || w[4i+3] in FIPS-197 notation, with
	// each word's bytes in order. This is exactly the byte layout AESENC
	// expects when a round key is loaded from memory with MOVOU.
	rk [11][16]byte

	// fallback is a crypto/aes block under the same key, used where the
	// assembly is unavailable (other architectures, CPUs without AES-NI).
	fallback cipher.Block
}

// newFixedAES returns the fixed-key AES-128 permutation for key.
func newFixedAES(key [16]byte) *fixedAES {
	a := &fixedAES{rk: expandKey128(key)}
	b, err := aes.NewCipher(key[:])
	if err != nil {
		// Unreachable: a 16-byte key is always a valid AES key.
		panic("ot: aes.NewCipher: " + err.Error())
	}
	a.fallback = b
	return a
}

// encryptBlocks sets dst[i*16:(i+1)*16] = AES_k(src[i*16:(i+1)*16]) for every
// 16-byte block of src (ECB over a batch of independent blocks).
//
// len(src) must be a multiple of 16 and len(dst) must be at least len(src);
// bytes of dst beyond len(src) are left untouched. dst and src may be the
// same memory (in-place encryption, &dst[0] == &src[0]), but must not
// otherwise overlap. encryptBlocks panics if any of these rules is broken.
func (a *fixedAES) encryptBlocks(dst, src []byte) {
	if len(src)%aes.BlockSize != 0 {
		panic("ot: fixedAES.encryptBlocks: len(src) is not a multiple of 16")
	}
	if len(dst) < len(src) {
		panic("ot: fixedAES.encryptBlocks: dst is shorter than src")
	}
	if len(src) == 0 {
		return
	}
	dst = dst[:len(src)]
	if aesInexactOverlap(dst, src) {
		panic("ot: fixedAES.encryptBlocks: dst and src overlap but are not the same")
	}
	if useAsm {
		encryptBlocksAsm(&a.rk, &dst[0], &src[0], len(src)/aes.BlockSize)
		return
	}
	a.encryptBlocksGeneric(dst, src)
}

// encryptBlocksGeneric is the portable implementation of encryptBlocks: one
// crypto/aes call per block. It performs no argument checks of its own.
func (a *fixedAES) encryptBlocksGeneric(dst, src []byte) {
	for i := 0; i+aes.BlockSize <= len(src); i += aes.BlockSize {
		a.fallback.Encrypt(dst[i:i+aes.BlockSize], src[i:i+aes.BlockSize])
	}
}

// aesInexactOverlap reports whether the non-empty slices x and y share memory
// without starting at the same address. Exact aliasing is fine for
// encryptBlocks because the assembly loads a group of blocks before it
// stores any of them and never revisits a block; a shifted overlap is not.
func aesInexactOverlap(x, y []byte) bool {
	xs := uintptr(unsafe.Pointer(&x[0]))
	ys := uintptr(unsafe.Pointer(&y[0]))
	xe := xs + uintptr(len(x))
	ye := ys + uintptr(len(y))
	return xs != ys && xs < ye && ys < xe
}

// aesSbox is the AES S-box (FIPS-197 §5.1.1), computed at start-up from its
// definition rather than written out as a table literal.
var aesSbox = aesComputeSbox()

// aesComputeSbox builds the S-box: the multiplicative inverse in
// GF(2^8) = GF(2)[x]/(x^8+x^4+x^3+x+1) (with 0 mapped to 0), followed by the
// affine map b ⊕ rotl(b,1) ⊕ rotl(b,2) ⊕ rotl(b,3) ⊕ rotl(b,4) ⊕ 0x63.
func aesComputeSbox() [256]byte {
	// 0x03 generates the multiplicative group, so walk its powers to get
	// exp/log tables and read inverses off them: x^-1 = g^(255 - log x).
	var exp [255]byte
	var log [256]byte
	p := byte(1)
	for i := range exp {
		exp[i] = p
		log[p] = byte(i)
		p ^= aesXtime(p) // p *= 3, i.e. p*x + p
	}

	var s [256]byte
	for x := 0; x < 256; x++ {
		var inv byte
		if x != 0 {
			inv = exp[(255-int(log[x]))%255]
		}
		b := inv
		s[x] = b ^ aesRotl8(b, 1) ^ aesRotl8(b, 2) ^ aesRotl8(b, 3) ^ aesRotl8(b, 4) ^ 0x63
	}
	return s
}

// aesXtime multiplies b by x in the AES field.
func aesXtime(b byte) byte {
	r := b << 1
	if b&0x80 != 0 {
		r ^= 0x1b
	}
	return r
}

func aesRotl8(b byte, n uint) byte { return b<<n | b>>(8-n) }

// expandKey128 is the FIPS-197 §5.2 key expansion for AES-128 (Nk = 4,
// Nr = 10). It returns the 44 words w[0..43] grouped as 11 round keys.
func expandKey128(key [16]byte) [11][16]byte {
	var w [44][4]byte
	for i := 0; i < 4; i++ {
		copy(w[i][:], key[4*i:4*i+4])
	}
	rcon := byte(1)
	for i := 4; i < 44; i++ {
		t := w[i-1]
		if i%4 == 0 {
			// SubWord(RotWord(t)) ⊕ Rcon[i/4]
			t = [4]byte{aesSbox[t[1]] ^ rcon, aesSbox[t[2]], aesSbox[t[3]], aesSbox[t[0]]}
			rcon = aesXtime(rcon)
		}
		for j := range t {
			w[i][j] = w[i-4][j] ^ t[j]
		}
	}

	var rk [11][16]byte
	for r := range rk {
		for j := 0; j < 4; j++ {
			copy(rk[r][4*j:4*j+4], w[4*r+j][:])
		}
	}
	return rk
}
