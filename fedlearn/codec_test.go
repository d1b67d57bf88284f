package fedlearn

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tuneinsight/lattigo/v6/ring"
)

// TestDecodeBelow holds the bulk residue decoder to the one-value-at-a-time
// definition: the same values, and a value at or above q rejected wherever
// it sits (the four-way maximum has a tail for lengths not divisible by 4).
func TestDecodeBelow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const q = 1<<60 - 93
	for _, n := range []int{1, 3, 4, 5, 7, 64, 8191, 8192} {
		want := make([]uint64, n)
		for j := range want {
			want[j] = rng.Uint64N(q)
		}
		want[n-1] = q - 1
		wire := appendResidues(nil, [][]uint64{want})
		for j, v := range want {
			if got := binary.LittleEndian.Uint64(wire[8*j:]); got != v {
				t.Fatalf("n=%d: appendResidues wrote %d at %d, want %d little-endian", n, got, j, v)
			}
		}
		row := make([]uint64, n)
		if !decodeBelow(row, wire, q) || !slices.Equal(row, want) {
			t.Fatalf("n=%d: valid residues not decoded as written", n)
		}
		for _, at := range []int{0, n / 2, n - 1} {
			for _, bad := range []uint64{q, q + 1, 1<<63 + 5, ^uint64(0)} {
				w := slices.Clone(wire)
				binary.LittleEndian.PutUint64(w[8*at:], bad)
				if decodeBelow(row, w, q) {
					t.Fatalf("n=%d: %d at %d accepted", n, bad, at)
				}
			}
		}
	}
}

// expandSeedReference is expandSeed's definition: the keystream in blocks
// of len(buf) bytes, 8 bytes a candidate, the rest of a block discarded
// once the row is full.
func expandSeedReference(moduli []uint64, seed [32]byte, a ring.Poly, buf []byte) {
	block, _ := aes.NewCipher(seed[:])
	stream := cipher.NewCTR(block, make([]byte, aes.BlockSize))
	for i, q := range moduli {
		mask := uint64(1)<<bits.Len64(q) - 1
		row := a.Coeffs[i]
		for j := 0; j < len(row); {
			clear(buf)
			stream.XORKeyStream(buf, buf)
			for b := buf; len(b) >= 8 && j < len(row); b = b[8:] {
				if v := binary.LittleEndian.Uint64(b) & mask; v < q {
					row[j] = v
					j++
				}
			}
		}
	}
}

// TestExpandSeedMatchesReference: the bank and the partner expand the same
// seeds, so the in-place fast path must give exactly the reference's
// polynomial, including when rejections need a second block (a modulus
// just above a power of two rejects almost half the candidates).
func TestExpandSeedMatchesReference(t *testing.T) {
	const n = 256
	moduli := []uint64{1<<59 + 1, 1<<60 - 93}
	for s := range 20 {
		seed := [32]byte{byte(s), 7}
		got, want := ring.NewPoly(n, len(moduli)-1), ring.NewPoly(n, len(moduli)-1)
		expandSeed(moduli, seed, got, make([]byte, 8*n))
		expandSeedReference(moduli, seed, want, make([]byte, 8*n))
		for i := range moduli {
			if !slices.Equal(got.Coeffs[i], want.Coeffs[i]) {
				t.Fatalf("seed %d, prime %d: fast path differs from the reference", s, i)
			}
			for _, v := range got.Coeffs[i] {
				if v >= moduli[i] {
					t.Fatalf("seed %d: %d not below %d", s, v, moduli[i])
				}
			}
		}
	}
}
