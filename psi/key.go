package psi

import (
	"fmt"
	"io"

	"filippo.io/edwards25519"
)

// Key is one party's secret blinding exponent for one PSI job.
//
// A Key holds two independent secrets, one per suite: a scalar uniform
// modulo the ristretto255 group order ℓ, and an RFC 7748 clamped X25519
// scalar. Call Zero when the job ends; a zeroed Key makes the suites panic.
//
// Key never prints its secret: String, GoString and Format all return a
// redacted text. It is safe for concurrent use by the suites (read only);
// Zero must not race with them.
type Key struct {
	r255   edwards25519.Scalar // uniform in [1, ℓ)
	x25519 [32]byte            // clamped per RFC 7748 §5: multiple of 8, bit 254 set
	zeroed bool
}

// GenerateKey draws a fresh Key from rand (normally crypto/rand.Reader; a
// seeded reader gives a reproducible key for deterministic replay). It
// returns an error only if rand fails.
func GenerateKey(rand io.Reader) (*Key, error) {
	var buf [64 + 32]byte
	defer clear(buf[:])
	k := new(Key)
	for {
		if _, err := io.ReadFull(rand, buf[:]); err != nil {
			return nil, fmt.Errorf("psi: generating key: %w", err)
		}
		// 512 bits reduced modulo ℓ: statistically uniform (bias < 2^-250).
		if _, err := k.r255.SetUniformBytes(buf[:64]); err != nil {
			panic("psi: SetUniformBytes rejected 64 bytes")
		}
		if k.r255.Equal(edwards25519.NewScalar()) == 0 {
			break // probability 2^-252 of looping
		}
	}
	copy(k.x25519[:], buf[64:])
	x25519Clamp(&k.x25519)
	return k, nil
}

// x25519Clamp applies the RFC 7748 §5 decodeScalar25519 clamping.
func x25519Clamp(s *[32]byte) {
	s[0] &= 248
	s[31] &= 127
	s[31] |= 64
}

// Zero overwrites the secret scalars. Later use of k by a Suite panics.
// Zero is idempotent; calling it on a nil Key does nothing.
func (k *Key) Zero() {
	if k == nil {
		return
	}
	k.r255 = edwards25519.Scalar{}
	clear(k.x25519[:])
	k.zeroed = true
}

// mustLive panics if k is nil or was zeroed: using a wiped key is a
// programming error, and continuing would produce identity elements.
func (k *Key) mustLive() {
	if k == nil || k.zeroed {
		panic("psi: use of nil or zeroed Key")
	}
}

const redactedKey = "psi.Key{REDACTED}"

// String returns a redacted placeholder; the secret is never printed. The
// value receivers cover both Key and *Key.
func (Key) String() string { return redactedKey }

// GoString returns a redacted placeholder; the secret is never printed.
func (Key) GoString() string { return redactedKey }

// Format prints a redacted placeholder for every verb, including %x and %#v.
func (Key) Format(f fmt.State, _ rune) { io.WriteString(f, redactedKey) }
