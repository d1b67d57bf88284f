package psi

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"
)

// The responder's per-job shuffle (protocol: "P shuffles its rows with a
// per-job permutation"). Position j of the shuffled order holds row
// Apply(j); row i sits at position Invert(i). The permutation is a keyed
// pseudo-random permutation of [0, n) built without O(n) memory:
//
//   - key = first 16 bytes of SHA-256("tandem/psi/perm/v1" ‖ 0x00 ‖ seed ‖ n),
//     so every (seed, n) gives an independent permutation;
//   - an 8-round alternating (possibly unbalanced, FF1-style) Feistel network
//     on m-bit integers, m = max(2, bitlen(n-1)), halves of ⌈m/2⌉ and ⌊m/2⌋
//     bits, round function AES-128_key(round ‖ 0^7 ‖ half) truncated;
//   - cycle walking: re-encrypt until the value falls in [0, n). Since
//     2^m < 2n the expected number of Feistel evaluations is below 2.
//
// (golang.org/x/crypto is not a dependency; crypto/aes has AES-NI.)

const (
	permRounds = 8 // even, so the halves end with the widths they started with
	permDomain = "tandem/psi/perm/v1\x00"
)

// Perm is a deterministic pseudo-random permutation of [0, n), keyed by a
// per-job seed. Perm is immutable and safe for concurrent use.
type Perm struct {
	n     uint64
	wa    uint // bits of the high half
	wb    uint // bits of the low half
	block cipher.Block
}

// Permutation returns the permutation of [0, n) determined by seed and n.
// The seed must be secret from the other party and fresh per job (derive it
// from the job key); the same (seed, n) always gives the same permutation.
// It returns an error if n is negative.
func Permutation(seed [32]byte, n int64) (*Perm, error) {
	if n < 0 {
		return nil, errors.New("psi: permutation: negative size")
	}
	var in [len(permDomain) + 32 + 8]byte
	copy(in[:], permDomain)
	copy(in[len(permDomain):], seed[:])
	binary.BigEndian.PutUint64(in[len(permDomain)+32:], uint64(n))
	key := sha256.Sum256(in[:])
	block, err := aes.NewCipher(key[:16])
	if err != nil {
		panic("psi: permutation: " + err.Error()) // 16-byte key cannot fail
	}
	m := uint(2)
	if n > 1 {
		m = max(m, uint(bits.Len64(uint64(n-1))))
	}
	return &Perm{n: uint64(n), wa: m - m/2, wb: m / 2, block: block}, nil
}

// Len returns n.
func (p *Perm) Len() int64 { return int64(p.n) }

// Apply returns the image of i: the row at shuffled position i. It panics if
// i ≥ n (an index out of range, like a slice). It performs one small
// allocation (the AES block) per call.
func (p *Perm) Apply(i uint64) uint64 {
	if i >= p.n {
		panic("psi: permutation: index out of range")
	}
	if p.n == 1 {
		return 0
	}
	var blk [aes.BlockSize]byte
	x := i
	for {
		x = p.encrypt(x, blk[:])
		if x < p.n {
			return x
		}
	}
}

// Invert returns the preimage of j, so Invert(Apply(i)) == i: the shuffled
// position of row j. It panics if j ≥ n.
func (p *Perm) Invert(j uint64) uint64 {
	if j >= p.n {
		panic("psi: permutation: index out of range")
	}
	if p.n == 1 {
		return 0
	}
	var blk [aes.BlockSize]byte
	x := j
	for {
		x = p.decrypt(x, blk[:])
		if x < p.n {
			return x
		}
	}
}

// round is the Feistel round function: w pseudo-random bits from (r, half).
func (p *Perm) round(r int, half uint64, w uint, blk []byte) uint64 {
	clear(blk)
	blk[0] = byte(r)
	binary.BigEndian.PutUint64(blk[8:], half)
	p.block.Encrypt(blk, blk)
	return binary.BigEndian.Uint64(blk) & (1<<w - 1)
}

// encrypt is one pass of the Feistel network over [0, 2^m): state (a, b)
// with widths (wa, wb) becomes (b, a ⊕ F_r(b)) with widths (wb, wa).
func (p *Perm) encrypt(x uint64, blk []byte) uint64 {
	wa, wb := p.wa, p.wb
	a, b := x>>wb, x&(1<<wb-1)
	for r := range permRounds {
		a, b = b, a^p.round(r, b, wa, blk)
		wa, wb = wb, wa
	}
	return a<<wb | b
}

// decrypt inverts encrypt.
func (p *Perm) decrypt(x uint64, blk []byte) uint64 {
	wa, wb := p.wa, p.wb
	a, b := x>>wb, x&(1<<wb-1)
	for r := permRounds - 1; r >= 0; r-- {
		a, b = b^p.round(r, a, wb, blk), a
		wa, wb = wb, wa
	}
	return a<<wb | b
}
