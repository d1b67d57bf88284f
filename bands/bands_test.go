package bands

import (
	"crypto/rand"
	"errors"
	"math"
	mrand "math/rand/v2"
	"testing"

	"github.com/tandem-dev/tandem/ot"
)

// otPair runs real base OTs and returns the two extension sides.
func otPair(t testing.TB) (*ot.Receiver, *ot.Sender) {
	t.Helper()
	rcv, snd, err := ot.LocalPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return rcv, snd
}

func sides(t testing.TB, k int) (*Bank, *Partner) {
	t.Helper()
	rcv, snd := otPair(t)
	var seed [32]byte
	rand.Read(seed[:])
	bank, err := NewBank(snd, k, seed)
	if err != nil {
		t.Fatal(err)
	}
	partner, err := NewPartner(rcv, k)
	if err != nil {
		t.Fatal(err)
	}
	return bank, partner
}

// compare runs one batch through both sides.
func compare(t testing.TB, bank *Bank, partner *Partner, vals []uint16, th []uint32) []uint32 {
	t.Helper()
	k, m := bank.k, len(vals)
	u := make([]byte, m*CorrectionBytes)
	partner.Choose(vals, u)
	tables := make([]byte, m*TableBytes(k))
	keys, err := bank.Tables(th, u, tables)
	if err != nil {
		t.Fatal(err)
	}
	z := make([]byte, m*AnswerBytes(k))
	if err := partner.Answer(tables, z); err != nil {
		t.Fatal(err)
	}
	ge := make([]uint32, m)
	if err := bank.Open(keys, z, ge); err != nil {
		t.Fatal(err)
	}
	return ge
}

// TestCompareMatchesPlaintext: every bit the bank opens is [p ≥ c], for
// random values and thresholds and for the digit edge cases (equal high
// digits, c = 0, 1, 65535, 65536, p = 0, 65535, c = p, p ± 1), over
// batches of several sizes and thresholds counts, in sequence on one OT
// session.
func TestCompareMatchesPlaintext(t *testing.T) {
	r := mrand.New(mrand.NewPCG(7, 8))
	edge := []uint32{0, 1, 255, 256, 257, 65279, 65280, 65535, MaxThreshold}
	for _, k := range []int{1, 3, 10, 32} {
		bank, partner := sides(t, k)
		for _, m := range []int{1, 17, 300} {
			vals := make([]uint16, m)
			th := make([]uint32, m*k)
			for i := range vals {
				vals[i] = uint16(r.IntN(1 << 16))
				switch i % 4 {
				case 1:
					vals[i] = uint16(edge[r.IntN(len(edge)-1)])
				case 2:
					vals[i] = uint16(r.IntN(3)) * 0x7fff // 0, 32767, 65534
				}
				for j := range k {
					c := uint32(r.IntN(MaxThreshold + 1))
					switch r.IntN(5) {
					case 0:
						c = edge[r.IntN(len(edge))]
					case 1: // same high digit, any low digit
						c = uint32(vals[i])&0xff00 | uint32(r.IntN(256))
					case 2:
						c = uint32(int(vals[i]) + r.IntN(3) - 1)
					}
					th[i*k+j] = min(c, MaxThreshold)
				}
			}
			ge := compare(t, bank, partner, vals, th)
			for i, p := range vals {
				for j := range k {
					want := uint32(p) >= th[i*k+j]
					if got := ge[i]>>j&1 == 1; got != want {
						t.Fatalf("k=%d m=%d position %d: [%d ≥ %d] opened as %v", k, m, i, p, th[i*k+j], got)
					}
				}
			}
		}
	}
}

// TestPartnerViewIsUniform: the four bits the partner unmasks per
// threshold (x₁, x₂, y₁, y₂) are uniform and independent of the
// thresholds: for a value whose high digit equals the threshold's, one
// below it and one above it, the 16 joint outcomes each occur 1/16 of the
// time (χ² with 15 degrees of freedom). Leaving out any one mask of the
// construction fails this test.
func TestPartnerViewIsUniform(t *testing.T) {
	const k, m = 32, 2048
	bank, partner := sides(t, k)
	for _, c := range []uint32{0x1234, 0x1334, 0x12ff, 0x1200, MaxThreshold} {
		vals := make([]uint16, m)
		th := make([]uint32, m*k)
		for i := range vals {
			vals[i] = 0x1280 // high digit 0x12, low 0x80
			for j := range k {
				th[i*k+j] = c
			}
		}
		u := make([]byte, m*CorrectionBytes)
		partner.Choose(vals, u)
		tables := make([]byte, m*TableBytes(k))
		if _, err := bank.Tables(th, u, tables); err != nil {
			t.Fatal(err)
		}
		var count [16]int
		for i := range m {
			tb := tables[i*TableBytes(k) : (i+1)*TableBytes(k)]
			xh := getBits(tb, 0x12*2*k, 2*k) ^ partner.pads[2*i]
			xl := getBits(tb, (ot.Values+0x80)*2*k, 2*k) ^ partner.pads[2*i+1]
			for j := range k {
				o := xh>>j&1 | xh>>(k+j)&1<<1 | xl>>j&1<<2 | xl>>(k+j)&1<<3
				count[o]++
			}
		}
		n := float64(m * k)
		chi2 := 0.0
		for _, c := range count {
			d := float64(c) - n/16
			chi2 += d * d / (n / 16)
		}
		// 15 degrees of freedom: P(χ² > 44) ≈ 1e-4.
		if chi2 > 44 || math.IsNaN(chi2) {
			t.Errorf("threshold %#x: partner's view %v, χ² = %.1f", c, count, chi2)
		}
	}
}

func TestBand(t *testing.T) {
	for _, tc := range []struct {
		ge       uint32
		presence bool
		n        int
		present  bool
		bad      bool
	}{
		{0, true, 0, false, false},
		{1, true, 0, true, false},
		{0b111, true, 2, true, false},
		{0b1111, true, 3, true, false},
		{0b10, true, 0, false, true},   // a value both missing and past an edge
		{0b1011, true, 0, false, true}, // not a prefix
		{0b11111, true, 0, false, true},
		{0, false, 0, true, false},
		{0b1111, false, 4, true, false},
		{0b101, false, 0, false, true},
		{0b11111, false, 0, false, true},
	} {
		n, present, err := Band(tc.ge, 4, tc.presence)
		if (err != nil) != tc.bad || (!tc.bad && (n != tc.n || present != tc.present)) {
			t.Errorf("Band(%b, 4, %v) = %d, %v, %v", tc.ge, tc.presence, n, present, err)
		}
	}
}

// TestBitPacking: messages of every width from 1 to 64 bits, 512 to a
// table as the bank writes them, read back at their offsets.
func TestBitPacking(t *testing.T) {
	r := mrand.New(mrand.NewPCG(11, 12))
	for w := uint(1); w <= 64; w++ {
		var msgs [2 * ot.Values]uint64
		tab := make([]byte, 2*ot.Values*int(w)/8)
		for i := range msgs {
			msgs[i] = r.Uint64()
		}
		pack(tab, &msgs, w)
		for i, m := range msgs {
			want := m
			if w < 64 {
				want &= 1<<w - 1
			}
			if got := getBits(tab, uint(i)*w, w); got != want {
				t.Fatalf("width %d message %d: %x, want %x", w, i, got, want)
			}
		}
	}
}

func TestRejects(t *testing.T) {
	bank, partner := sides(t, 4)
	if _, err := NewBank(nil, 0, [32]byte{}); err == nil {
		t.Error("0 thresholds accepted")
	}
	if _, err := NewPartner(nil, 33); err == nil {
		t.Error("33 thresholds accepted")
	}
	if _, err := bank.Tables(make([]uint32, 4), make([]byte, CorrectionBytes-1), make([]byte, TableBytes(4))); !errors.Is(err, ErrMessage) {
		t.Errorf("short corrections: %v", err)
	}
	if _, err := bank.Tables([]uint32{0, 1, 2, MaxThreshold + 1}, make([]byte, CorrectionBytes), make([]byte, TableBytes(4))); err == nil {
		t.Error("threshold above 65536 accepted")
	}
	u := make([]byte, 2*CorrectionBytes)
	partner.Choose([]uint16{1, 2}, u)
	if err := partner.Answer(make([]byte, TableBytes(4)), make([]byte, 2)); !errors.Is(err, ErrMessage) {
		t.Errorf("short tables: %v", err)
	}
	if err := bank.Open(Keys{0, 0}, []byte{0x10, 0}, make([]uint32, 2)); !errors.Is(err, ErrMessage) {
		t.Errorf("answer bits beyond k: %v", err)
	}
	if err := bank.Open(Keys{0, 0}, []byte{0}, make([]uint32, 2)); !errors.Is(err, ErrMessage) {
		t.Errorf("short answers: %v", err)
	}
}

// FuzzAnswer: the partner reads any table bytes without panicking.
func FuzzAnswer(f *testing.F) {
	_, partner := sides(f, 3)
	f.Add(make([]byte, 2*TableBytes(3)))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, tables []byte) {
		u := make([]byte, 2*CorrectionBytes)
		partner.Choose([]uint16{7, 65535}, u)
		if err := partner.Answer(tables, make([]byte, 2*AnswerBytes(3))); err != nil && !errors.Is(err, ErrMessage) {
			t.Fatal(err)
		}
	})
}

// FuzzOpen: the bank reads any answer bytes without panicking, and what it
// accepts has no bit beyond its thresholds.
func FuzzOpen(f *testing.F) {
	bank, _ := sides(f, 10)
	f.Add([]byte{0xff, 0x03, 0, 0})
	f.Fuzz(func(t *testing.T, z []byte) {
		ge := make([]uint32, 2)
		if err := bank.Open(Keys{5, 9}, z, ge); err != nil {
			if !errors.Is(err, ErrMessage) {
				t.Fatal(err)
			}
			return
		}
		for _, g := range ge {
			if g>>10 != 0 {
				t.Fatalf("opened %b", g)
			}
		}
	})
}

func BenchmarkCompare(b *testing.B) {
	const k, m = 10, 2048
	bank, partner := sides(b, k)
	vals := make([]uint16, m)
	th := make([]uint32, m*k)
	for i := range vals {
		vals[i] = uint16(i * 31)
		for j := range k {
			th[i*k+j] = uint32(j * 6000)
		}
	}
	u := make([]byte, m*CorrectionBytes)
	tables := make([]byte, m*TableBytes(k))
	z := make([]byte, m*AnswerBytes(k))
	ge := make([]uint32, m)
	b.ReportAllocs()
	for b.Loop() {
		partner.Choose(vals, u)
		keys, err := bank.Tables(th, u, tables)
		if err != nil {
			b.Fatal(err)
		}
		if err := partner.Answer(tables, z); err != nil {
			b.Fatal(err)
		}
		if err := bank.Open(keys, z, ge); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*m)/b.Elapsed().Seconds(), "positions/s")
}
