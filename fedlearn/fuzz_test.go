package fedlearn

import (
	"encoding/binary"
	"slices"
	"sync"
	"testing"
)

// One key-generation round shared by the fuzz targets.
var (
	fuzzOnce          sync.Once
	fuzzBank, fuzzPar *Session
	fuzzCts           [][]byte
	fuzzResult        []byte
	fuzzShare         []byte
	// the packed kernel's messages: a sealed chunk, a published packed
	// chunk, a real Result and its share
	fuzzSealed, fuzzPacked, fuzzRealResult, fuzzRealShare []byte
)

func fuzzSetup(tb testing.TB) {
	fuzzOnce.Do(func() {
		fuzzBank, fuzzPar = newPair(tb)
		fuzzCts, _ = fuzzBank.EncryptVector([]int64{1, 0, 1})
		fuzzResult, _ = fuzzPar.InnerProducts([][][]byte{fuzzCts}, [][]int64{{1, 2, 3}})
		fuzzShare, _ = fuzzPar.ReleaseShare(fuzzResult, Bank)

		_, size := fuzzBank.SealedLayout(3)
		fuzzSealed = make([]byte, size)
		if err := fuzzBank.SealPackedInto([]complex128{1, 0.5i, -1}, [][]byte{fuzzSealed}); err != nil {
			tb.Fatal(err)
		}
		v, err := fuzzPar.CombinePacked([][][]byte{{fuzzSealed}}, 24, func(_, lo, hi int, d []float64) {
			for i := range d {
				d[i] = 0.5
			}
		})
		if err != nil {
			tb.Fatal(err)
		}
		_, size = fuzzPar.PackedVectorLayout(3)
		fuzzPacked = make([]byte, size)
		if err := fuzzPar.PublishPackedInto(v, [][]byte{fuzzPacked}); err != nil {
			tb.Fatal(err)
		}
		cols, _ := fuzzPar.NewPackedColumns(1, 3, func(_, lo, hi int, d []complex128) { copy(d, []complex128{1, 2, 3}[lo:hi]) })
		fuzzRealResult, _ = fuzzPar.PackedInnerProducts(v, cols)
		fuzzRealShare, _ = fuzzBank.ReleaseShare(fuzzRealResult, Partner)
	})
}

func FuzzCombineSealed(f *testing.F) {
	fuzzSetup(f)
	mutations(f, fuzzSealed)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := fuzzPar.CombinePacked([][][]byte{{b}}, 24, func(_, lo, hi int, d []float64) { clear(d) })
		if err == nil && v.Len() < 1 {
			t.Fatal("accepted an empty vector")
		}
	})
}

func FuzzParsePackedVector(f *testing.F) {
	fuzzSetup(f)
	mutations(f, fuzzPacked)
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := fuzzBank.ParsePackedVector([][]byte{b}); err == nil && (v.Len() < 1 || v.Terms() < 1) {
			t.Fatal("accepted an empty vector")
		}
	})
}

func FuzzDecryptRealShare(f *testing.F) {
	fuzzSetup(f)
	mutations(f, fuzzRealShare)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = fuzzPar.DecryptReal(fuzzRealResult, b)
		if v, err := fuzzBank.parseResult(b); err == nil && v.count < 1 {
			t.Fatal("accepted empty result")
		}
	})
}

func mutations(f *testing.F, valid []byte) {
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte{})
	f.Add(valid[:headerLen])
	bad := append([]byte(nil), valid...)
	for i := headerLen; i < len(bad) && i < headerLen+64; i++ {
		bad[i] = 0xff
	}
	f.Add(bad)
}

func FuzzSetPeerKeyGenShare(f *testing.F) {
	fuzzSetup(f)
	valid, _ := fuzzPar.KeyGenShare()
	mutations(f, valid)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := NewSession(Bank, Params{}, [32]byte{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.SetPeerKeyGenShare(b)
	})
}

func FuzzParseCiphertext(f *testing.F) {
	fuzzSetup(f)
	mutations(f, fuzzCts[0])
	f.Fuzz(func(t *testing.T, b []byte) {
		if ev, err := fuzzPar.parseVector([][]byte{b}); err == nil && len(ev.cts) != 1 {
			t.Fatalf("accepted %d chunks", len(ev.cts))
		}
	})
}

func FuzzParseResult(f *testing.F) {
	fuzzSetup(f)
	mutations(f, fuzzResult)
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := fuzzBank.parseResult(b); err == nil && v.count < 1 {
			t.Fatal("accepted empty result")
		}
	})
}

func FuzzDecryptShare(f *testing.F) {
	fuzzSetup(f)
	mutations(f, fuzzShare)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = fuzzBank.Decrypt(fuzzResult, b)
	})
}

func FuzzParseNumericPlan(f *testing.F) {
	pl := NumericPlan{L: 10, LimbBits: 21, Features: []FeatureLayout{{ScaleBits: -3, SumLimbs: 2, SqLimbs: 3, Missing: true}}}
	valid, _ := pl.MarshalBinary()
	mutations(f, valid)
	f.Fuzz(func(t *testing.T, b []byte) {
		pl, err := ParseNumericPlan(b, 1<<24)
		if err != nil {
			return
		}
		// A parsed plan must decode any totals of the right shape without panicking.
		totals := [][]int64{make([]int64, pl.Multipliers())}
		if _, err := pl.Decode(totals); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseBinnedPlan(f *testing.F) {
	pl := BinnedPlan{L: 10, NumBins: []int{3, 4}}
	valid, _ := pl.MarshalBinary()
	mutations(f, valid)
	f.Fuzz(func(t *testing.T, b []byte) {
		pl, err := ParseBinnedPlan(b, 1<<24)
		if err != nil {
			return
		}
		if _, err := pl.Decode([][]int64{make([]int64, pl.Multipliers())}); err != nil {
			t.Fatal(err)
		}
	})
}

// Mask chunks (bank → partner) and masked releases (partner → bank) are
// peer input: parsing never panics and never accepts a message of the
// wrong shape.
func FuzzMaskedMessages(f *testing.F) {
	fuzzSetup(f)
	mask := []bool{true, false, true}
	chunks, err := fuzzBank.EncryptMask(mask, 0, 1)
	if err != nil {
		f.Fatal(err)
	}
	mutations(f, chunks[0])
	rel, err := fuzzPar.MaskedRelease(chunks, []int64{1, 2, 3})
	if err != nil {
		f.Fatal(err)
	}
	mutations(f, rel[0])
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, typ := range []byte{msgMaskChunk, msgMaskedRelease} {
			if mc, _, err := fuzzBank.parseMaskChunk(b, typ); err == nil && (mc.k >= mc.total || mc.length < 1) {
				t.Fatalf("accepted chunk %d of %d for %d positions", mc.k, mc.total, mc.length)
			}
		}
		_, _ = MaskChunkIndex(b)
		out := make([]int64, 3)
		_ = fuzzBank.DecryptMasked([][]byte{b}, map[int][32]byte{0: MaskDigest(chunks[0])}, out)
	})
}

// FuzzDecodeBelow: the bulk residue decoder of every peer message accepts
// exactly what the one-value-at-a-time definition accepts, with the same
// values, for any bytes and any bound.
func FuzzDecodeBelow(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}, uint64(3))
	f.Add(make([]byte, 40), uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, q uint64) {
		n := len(b) / 8
		if n == 0 {
			return
		}
		want := make([]uint64, n)
		ok := true
		for j := range want {
			want[j] = binary.LittleEndian.Uint64(b[8*j:])
			ok = ok && want[j] < q
		}
		got := make([]uint64, n)
		if decodeBelow(got, b, q) != ok {
			t.Fatalf("decodeBelow accepted=%v, definition %v", !ok, ok)
		}
		if ok && !slices.Equal(got, want) {
			t.Fatal("accepted values differ from the bytes")
		}
	})
}
