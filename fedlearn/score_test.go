package fedlearn

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// maskedRound runs EncryptMask → MaskedRelease → DecryptMasked over all
// chunks and returns what the bank decrypted.
func maskedRound(t *testing.T, bank, partner *Session, mask []bool, u []int64) []int64 {
	t.Helper()
	chunks, err := bank.EncryptMask(mask, 0, bank.MaskedChunks(len(mask)))
	if err != nil {
		t.Fatal(err)
	}
	sent := map[int][32]byte{}
	for k, c := range chunks {
		sent[k] = MaskDigest(c)
	}
	rel, err := partner.MaskedRelease(chunks, u)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, len(mask))
	if err := bank.DecryptMasked(rel, sent, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The bank decrypts exactly m_i·u_i: the partner's value where the mask is
// 1 and 0 elsewhere, for values up to the slot limit, over a last chunk
// that is only partly used.
func TestMaskedReleaseMatchesPlaintext(t *testing.T) {
	bank, partner := newPair(t)
	limit, err := partner.MaskedLimit()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 2*bank.N() + 1234
	mask := make([]bool, n)
	u := make([]int64, n)
	for i := range n {
		mask[i] = rng.IntN(3) == 0
		u[i] = rng.Int64N(2*limit-1) - (limit - 1)
	}
	u[0], u[1], u[2] = limit-1, -(limit - 1), 0
	mask[0], mask[1] = true, true
	got := maskedRound(t, bank, partner, mask, u)
	for i := range n {
		want := int64(0)
		if mask[i] {
			want = u[i]
		}
		if got[i] != want {
			t.Fatalf("position %d (mask %v): got %d, want %d", i, mask[i], got[i], want)
		}
	}
}

func TestMaskedReleaseRefusals(t *testing.T) {
	bank, partner := newPair(t)
	n := bank.N() + 10
	mask := make([]bool, n)
	u := make([]int64, n)
	chunks, err := bank.EncryptMask(mask, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	limit, _ := partner.MaskedLimit()
	u[5] = limit
	if _, err := partner.MaskedRelease(chunks, u); !errors.Is(err, ErrMaskedRange) {
		t.Fatalf("value at the limit: %v, want ErrMaskedRange", err)
	}
	u[5] = 0
	if _, err := partner.MaskedRelease(chunks, u[:n-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("length mismatch: %v, want ErrMalformed", err)
	}
	if _, err := partner.MaskedRelease([][]byte{chunks[0][:len(chunks[0])-1]}, u); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated chunk: %v, want ErrMalformed", err)
	}
	if _, err := bank.MaskedRelease(chunks, u); !errors.Is(err, ErrRole) {
		t.Fatalf("bank releasing: %v, want ErrRole", err)
	}
	rel, err := partner.MaskedRelease(chunks[:1], u)
	if err != nil {
		t.Fatal(err)
	}
	// A second answer for the same chunk would let the bank average the
	// flooding away: refused, and nothing is returned for the batch.
	if out, err := partner.MaskedRelease(chunks, u); !errors.Is(err, ErrShareReused) || out != nil {
		t.Fatalf("chunk answered twice: %v", err)
	}
	// The bank accepts only answers to chunks it sent.
	out := make([]int64, n)
	if err := bank.DecryptMasked(rel, map[int][32]byte{0: MaskDigest(chunks[1])}, out); !errors.Is(err, ErrState) {
		t.Fatalf("answer to another chunk: %v, want ErrState", err)
	}
	if err := bank.DecryptMasked(rel, map[int][32]byte{0: MaskDigest(chunks[0])}, out); err != nil {
		t.Fatal(err)
	}
}

func TestFloodResidueRange(t *testing.T) {
	for _, f := range []uint{20, 63, 64, 84, 100} {
		var b [16]byte
		for i := range b {
			b[i] = 0xff
		}
		hi := floodResidue(b[:], f) // x = 2^(f+1)-1 → e = 2^f − 1
		for i := range b {
			b[i] = 0
		}
		lo := floodResidue(b[:], f) // x = 0 → e = −2^f
		q := uint64(1<<61 - 1)
		want := func(neg bool) uint64 {
			// 2^f mod q, computed by doubling
			r := uint64(1)
			for range f {
				r = (r * 2) % q
			}
			if neg {
				return (q - r) % q
			}
			return (r + q - 1) % q
		}
		if hi.neg || hi.mod(q) != want(false) {
			t.Errorf("f=%d: max %v", f, hi)
		}
		if !lo.neg || lo.mod(q) != want(true) {
			t.Errorf("f=%d: min %v", f, lo)
		}
	}
}

func BenchmarkMaskedRelease(b *testing.B) {
	bank, partner := newPair(b)
	n := 1 << 17
	mask := make([]bool, n)
	u := make([]int64, n)
	for i := range n {
		mask[i] = i%3 == 0
		u[i] = int64(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		chunks, err := bank.EncryptMask(mask, 0, bank.MaskedChunks(n))
		if err != nil {
			b.Fatal(err)
		}
		sent := map[int][32]byte{}
		for k, c := range chunks {
			sent[k] = MaskDigest(c)
		}
		rel, err := partner.MaskedRelease(chunks, u)
		if err != nil {
			b.Fatal(err)
		}
		out := make([]int64, n)
		if err := bank.DecryptMasked(rel, sent, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
