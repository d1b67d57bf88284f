package ot

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
)

// aesTestImpl is one way of running fixedAES over a batch.
type aesTestImpl struct {
	name string
	run  func(a *fixedAES, dst, src []byte)
}

// aesTestImpls lists the implementations under test: the public dispatching
// entry point, the portable fallback, and (when the CPU supports it) the
// assembly called directly, so each path is checked regardless of which one
// encryptBlocks happens to pick on this machine.
func aesTestImpls() []aesTestImpl {
	impls := []aesTestImpl{
		{"dispatch", (*fixedAES).encryptBlocks},
		{"generic", (*fixedAES).encryptBlocksGeneric},
	}
	if useAsm {
		impls = append(impls, aesTestImpl{"asm", func(a *fixedAES, dst, src []byte) {
			if len(src) == 0 {
				return
			}
			encryptBlocksAsm(&a.rk, &dst[0], &src[0], len(src)/16)
		}})
	}
	return impls
}

func aesTestHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func aesTestKey(t testing.TB, s string) [16]byte {
	t.Helper()
	var k [16]byte
	if b := aesTestHex(t, s); copy(k[:], b) != 16 || len(b) != 16 {
		t.Fatalf("bad test key %q", s)
	}
	return k
}

// TestFixedAESKnownAnswer checks FIPS-197 Appendix C.1 (AES-128) through
// every implementation, as a single block and as a batch of 9 copies (one
// pass of the 8-block loop plus a one-block tail).
func TestFixedAESKnownAnswer(t *testing.T) {
	if !useAsm {
		t.Log("AES-NI assembly not available; testing the fallback only")
	}
	a := newFixedAES(aesTestKey(t, "000102030405060708090a0b0c0d0e0f"))
	pt := aesTestHex(t, "00112233445566778899aabbccddeeff")
	want := aesTestHex(t, "69c4e0d86a7b0430d8cdb78070b4c55a")

	for _, impl := range aesTestImpls() {
		for _, n := range []int{1, 9} {
			src := bytes.Repeat(pt, n)
			dst := make([]byte, len(src))
			impl.run(a, dst, src)
			for i := 0; i < n; i++ {
				if got := dst[16*i : 16*i+16]; !bytes.Equal(got, want) {
					t.Errorf("%s, %d blocks: block %d = %x, want %x", impl.name, n, i, got, want)
				}
			}
		}
	}
}

// TestFixedAESKeyExpansion checks the pure-Go key schedule against FIPS-197
// Appendix A.1.
func TestFixedAESKeyExpansion(t *testing.T) {
	key := aesTestKey(t, "2b7e151628aed2a6abf7158809cf4f3c")
	rk := newFixedAES(key).rk

	if !bytes.Equal(rk[0][:], key[:]) {
		t.Errorf("round key 0 = %x, want the cipher key %x", rk[0], key)
	}
	// w[4..7], the first expanded round key.
	if want := aesTestHex(t, "a0fafe17 88542cb1 23a33939 2a6c7605"); !bytes.Equal(rk[1][:], want) {
		t.Errorf("round key 1 = %x, want %x", rk[1], want)
	}
	// w[40..43], the last round key.
	if want := aesTestHex(t, "d014f9a8 c9ee2589 e13f0cc8 b6630ca6"); !bytes.Equal(rk[10][:], want) {
		t.Errorf("round key 10 = %x, want %x", rk[10], want)
	}
}

// TestFixedAESSbox spot-checks the computed S-box against FIPS-197 Figure 7
// and checks that it is a permutation.
func TestFixedAESSbox(t *testing.T) {
	for in, want := range map[byte]byte{0x00: 0x63, 0x01: 0x7c, 0x53: 0xed, 0x9a: 0xb8, 0xff: 0x16} {
		if got := aesSbox[in]; got != want {
			t.Errorf("S(%#02x) = %#02x, want %#02x", in, got, want)
		}
	}
	var seen [256]bool
	for _, v := range aesSbox {
		if seen[v] {
			t.Fatalf("S-box is not a permutation: %#02x appears twice", v)
		}
		seen[v] = true
	}
}

// TestFixedAESMatchesCryptoAES compares every implementation with crypto/aes
// block by block for random keys and every batch length 0..100 blocks (all
// remainders of the 8-block loop), out of place with unaligned buffers and
// guard bytes, and in place.
func TestFixedAESMatchesCryptoAES(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{'o', 't', '-', 'a', 'e', 's'}))
	const maxBlocks = 100
	const guard = 7 // bytes after the output that must stay untouched

	for trial := 0; trial < 20; trial++ {
		var key [16]byte
		aesTestFill(rng, key[:])
		a := newFixedAES(key)
		ref, err := aes.NewCipher(key[:])
		if err != nil {
			t.Fatal(err)
		}

		for n := 0; n <= maxBlocks; n++ {
			// Offset src and dst by odd amounts so MOVOU really is unaligned.
			srcBuf := make([]byte, 1+16*n)
			src := srcBuf[1:]
			aesTestFill(rng, src)

			want := make([]byte, len(src))
			for i := 0; i < len(src); i += 16 {
				ref.Encrypt(want[i:i+16], src[i:i+16])
			}

			for _, impl := range aesTestImpls() {
				dstBuf := make([]byte, 3+len(src)+guard)
				aesTestFill(rng, dstBuf)
				tailBefore := bytes.Clone(dstBuf[3+len(src):])
				dst := dstBuf[3:]
				srcBefore := bytes.Clone(src)

				impl.run(a, dst, src)
				if !bytes.Equal(dst[:len(src)], want) {
					t.Fatalf("key %x, %d blocks, %s: output differs from crypto/aes", key, n, impl.name)
				}
				if !bytes.Equal(dstBuf[3+len(src):], tailBefore) {
					t.Fatalf("key %x, %d blocks, %s: wrote past len(src)", key, n, impl.name)
				}
				if !bytes.Equal(src, srcBefore) {
					t.Fatalf("key %x, %d blocks, %s: modified src", key, n, impl.name)
				}

				inPlace := bytes.Clone(src)
				impl.run(a, inPlace, inPlace)
				if !bytes.Equal(inPlace, want) {
					t.Fatalf("key %x, %d blocks, %s: in-place output differs from crypto/aes", key, n, impl.name)
				}
			}
		}
	}
}

// TestFixedAESPanics checks that encryptBlocks rejects bad arguments instead
// of reading or writing out of bounds.
func TestFixedAESPanics(t *testing.T) {
	a := newFixedAES([16]byte{})
	buf := make([]byte, 64)
	for _, tc := range []struct {
		name     string
		dst, src []byte
		msg      string
	}{
		{"partial block", buf[:32], buf[32:47], "multiple of 16"},
		{"short dst", buf[:16], buf[32:64], "shorter than src"},
		{"shifted overlap", buf[16:48], buf[0:32], "overlap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tc.msg) {
					t.Errorf("recovered %v, want a panic mentioning %q", r, tc.msg)
				}
			}()
			a.encryptBlocks(tc.dst, tc.src)
		})
	}
}

func aesTestFill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// BenchmarkFixedAES measures batch throughput on 4096 blocks (64 KiB) per
// operation for the assembly and the crypto/aes fallback.
func BenchmarkFixedAES(b *testing.B) {
	const blocks = 4096
	for _, impl := range aesTestImpls() {
		if impl.name == "dispatch" {
			continue
		}
		b.Run(impl.name, func(b *testing.B) {
			a := newFixedAES([16]byte{1, 2, 3})
			src := make([]byte, 16*blocks)
			dst := make([]byte, len(src))
			for i := range src {
				src[i] = byte(i)
			}
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			ops := 0
			for b.Loop() {
				impl.run(a, dst, src)
				ops++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(ops*blocks), "ns/block")
		})
	}
}
