package psi

import (
	"crypto/ecdh"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"filippo.io/edwards25519"
)

func TestX25519RFC7748(t *testing.T) {
	// Source: RFC 7748 §5.2 (the two single-shot vectors) and §6.1 (ECDH).
	tests := []struct{ k, u, want string }{
		{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
		{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
		{"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
			"0900000000000000000000000000000000000000000000000000000000000000",
			"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"},
		{"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
			"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
			"4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"},
	}
	for _, tt := range tests {
		var k, u, got [32]byte
		copy(k[:], mustHex(t, tt.k))
		copy(u[:], mustHex(t, tt.u))
		x25519Clamp(&k)
		x25519ScalarMult(&got, &k, &u)
		if hex.EncodeToString(got[:]) != tt.want {
			t.Errorf("X25519(%.8s…, %.8s…): got %x, want %s", tt.k, tt.u, got, tt.want)
		}
	}
}

func TestX25519RFC7748Iterated(t *testing.T) {
	// Source: RFC 7748 §5.2, iterated test: after 1 and 1000 iterations.
	if testing.Short() {
		t.Skip("1000 ladders")
	}
	var k, u, r [32]byte
	k[0], u[0] = 9, 9
	for i := 1; i <= 1000; i++ {
		kc := k
		x25519Clamp(&kc)
		x25519ScalarMult(&r, &kc, &u)
		u, k = k, r
		switch i {
		case 1:
			if hex.EncodeToString(k[:]) != "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079" {
				t.Fatalf("after 1 iteration: got %x", k)
			}
		case 1000:
			if hex.EncodeToString(k[:]) != "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51" {
				t.Fatalf("after 1000 iterations: got %x", k)
			}
		}
	}
}

func TestX25519MatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		var k, u, got [32]byte
		for i := range k {
			k[i], u[i] = byte(r.Uint32()), byte(r.Uint32())
		}
		u[31] &= 127
		priv, err := ecdh.X25519().NewPrivateKey(k[:])
		if err != nil {
			t.Fatal(err)
		}
		pub, err := ecdh.X25519().NewPublicKey(u[:])
		if err != nil {
			t.Fatal(err)
		}
		want, err := priv.ECDH(pub)
		if err != nil {
			continue // low-order point
		}
		x25519Clamp(&k)
		x25519ScalarMult(&got, &k, &u)
		if hex.EncodeToString(got[:]) != hex.EncodeToString(want) {
			t.Fatalf("X25519 mismatch with crypto/ecdh: got %x, want %x", got, want)
		}
	}
}

// reverseHex turns the big-endian integers of RFC 9380 vectors into the
// little-endian RFC 7748 encoding.
func reverseHex(t *testing.T, s string) []byte {
	b := mustHex(t, strings.TrimPrefix(s, "0x"))
	slices.Reverse(b)
	return b
}

func TestHashToCurve25519(t *testing.T) {
	// Source: RFC 9380 Appendix J.4.1, curve25519_XMD:SHA-512_ELL2_RO_,
	// DST "QUUX-V01-CS02-with-curve25519_XMD:SHA-512_ELL2_RO_" (P.x only:
	// the suite keeps the u-coordinate).
	dst := []byte("QUUX-V01-CS02-with-curve25519_XMD:SHA-512_ELL2_RO_")
	tests := []struct{ msg, px string }{
		{"", "2de3780abb67e861289f5749d16d3e217ffa722192d16bbd9d1bfb9d112b98c0"},
		{"abc", "2b4419f1f2d48f5872de692b0aca72cc7b0a60915dd70bde432e826b6abc526d"},
		{"abcdef0123456789", "68ca1ea5a6acf4e9956daa101709b1eee6c1bb0df1de3b90d4602382a104c036"},
		{"q128_" + strings.Repeat("q", 128), "096e9c8bae6c06b554c1ee69383bb0e82267e064236b3a30608d4ed20b73ac5a"},
	}
	h := &x25519Hasher{x: newXMDExpander(), dstPrime: xmdDSTPrime(dst)}
	ids := make([][]byte, len(tests))
	for i, tt := range tests {
		ids[i] = []byte(tt.msg)
		// Single-point path.
		var p edwards25519.Point
		ell2HashToCurve(&p, newXMDExpander(), ids[i], xmdDSTPrime(dst))
		if got, want := hex.EncodeToString(p.BytesMontgomery()), hex.EncodeToString(reverseHex(t, tt.px)); got != want {
			t.Errorf("hash_to_curve(%.10q): u = %s, want %s", tt.msg, got, want)
		}
	}
	// Batched path (Montgomery's trick) gives the same u.
	var us [x25519Batch][32]byte
	h.hashBlock(ids, &us)
	for i, tt := range tests {
		if got, want := hex.EncodeToString(us[i][:]), hex.EncodeToString(reverseHex(t, tt.px)); got != want {
			t.Errorf("batched hash_to_curve(%.10q): u = %s, want %s", tt.msg, got, want)
		}
	}
}

func TestX25519RemaskRejects(t *testing.T) {
	k := testKey(t, 1)
	s := FastSuite()
	bad := []string{
		// Low-order points (RFC 7748 §6.1 all-zero output).
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		// Non-canonical: p, p+1, bit 255 set.
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"0900000000000000000000000000000000000000000000000000000000000080",
	}
	for _, b := range bad {
		src := mustHex(t, b)
		if err := s.Remask(k, src, make([]byte, 32), 1); err == nil {
			t.Errorf("Remask(%s) accepted, want ErrInvalidElement", b)
		}
	}
}
