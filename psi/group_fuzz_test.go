package psi

import (
	"bytes"
	"errors"
	"testing"

	"filippo.io/edwards25519"
)

// FuzzDecode checks the ristretto255 decoder on arbitrary 32-byte peer input:
// it never panics, accepts only canonical encodings (encode(decode(b)) == b),
// and rejects every RFC 9496 A.2 vector.
func FuzzDecode(f *testing.F) {
	for _, s := range r255Multiples {
		f.Add(mustHex(f, s))
	}
	for _, s := range r255Invalid {
		f.Add(mustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p edwards25519.Point
		ok := r255Decode(&p, b)
		if len(b) != 32 {
			if ok {
				t.Fatalf("accepted %d bytes", len(b))
			}
			return
		}
		if !ok {
			return
		}
		var re [32]byte
		r255Encode(&re, &p)
		if !bytes.Equal(re[:], b) {
			t.Fatalf("accepted non-canonical %x (re-encodes to %x)", b, re)
		}
	})
}

// FuzzRemask feeds arbitrary peer bytes to both suites' Remask: it never
// panics, errors only with ErrInvalidElement, and on success agrees with the
// element-by-element result.
func FuzzRemask(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	f.Add(make([]byte, 64))
	f.Add(mustHex(f, r255Multiples[1]))
	f.Add([]byte{1, 2, 3})
	k := testKey(f, 77)
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, s := range testSuites() {
			dst := make([]byte, len(src))
			err := s.Remask(k, src, dst, 2)
			if err != nil {
				if !errors.Is(err, ErrInvalidElement) {
					t.Fatalf("%s: unexpected error %v", s.Name(), err)
				}
				continue
			}
			if len(src)%32 != 0 {
				t.Fatalf("%s: accepted length %d", s.Name(), len(src))
			}
			for i := 0; i < len(src); i += 32 {
				one := make([]byte, 32)
				if err := s.Remask(k, src[i:i+32], one, 1); err != nil || !bytes.Equal(one, dst[i:i+32]) {
					t.Fatalf("%s: element %d differs when remasked alone", s.Name(), i/32)
				}
			}
		}
	})
}
