package bands

import (
	"crypto/rand"
	"encoding/binary"
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

func seed() (s [32]byte) {
	rand.Read(s[:])
	return s
}

// sides sets up both parties on two real OT sessions, one each way.
func sides(t testing.TB, k int) (*Bank, *Partner) {
	t.Helper()
	rcv1, snd1 := otPair(t) // round 1: the partner chooses
	rcv2, snd2 := otPair(t) // round 2: the bank chooses
	bank, err := NewBank(snd1, rcv2, k, seed())
	if err != nil {
		t.Fatal(err)
	}
	partner, err := NewPartner(rcv1, snd2, k, seed())
	if err != nil {
		t.Fatal(err)
	}
	return bank, partner
}

// compare runs one batch through both sides and returns what the bank
// opens.
func compare(t testing.TB, bank *Bank, partner *Partner, vals []uint16, th []uint32) []uint32 {
	t.Helper()
	_, _, ge := exchange(t, bank, partner, vals, th)
	return ge
}

// exchange runs one batch through both sides: the bank's keys, the
// partner's answers and what the bank opens.
func exchange(t testing.TB, bank *Bank, partner *Partner, vals []uint16, th []uint32) (*Keys, []byte, []uint32) {
	t.Helper()
	k, m := bank.k, len(vals)
	u := make([]byte, CorrectionsBytes(m))
	partner.Choose(vals, u)
	tables := make([]byte, TablesBytes(k, m))
	var keys Keys
	if err := bank.Tables(th, u, tables, &keys); err != nil {
		t.Fatal(err)
	}
	z := make([]byte, m*AnswerBytes(k))
	if err := partner.Answer(tables, z); err != nil {
		t.Fatal(err)
	}
	ge := make([]uint32, m)
	if err := bank.Open(&keys, z, ge); err != nil {
		t.Fatal(err)
	}
	return &keys, z, ge
}

// TestCompareMatchesPlaintext: every bit the bank opens is [p ≥ c], for
// random values and thresholds and for the digit edge cases (equal
// leading digits, c = 0, 1, 65535, 65536, p = 0, 65535, c = p, p ± 1),
// over batches of several sizes and thresholds counts (one and two pad
// groups, odd counts with a lone round-2 threshold), in sequence on one
// OT session.
func TestCompareMatchesPlaintext(t *testing.T) {
	r := mrand.New(mrand.NewPCG(7, 8))
	edge := []uint32{0, 1, 15, 16, 255, 256, 257, 4095, 4096, 65279, 65280, 65535, MaxThreshold}
	for _, k := range []int{1, 3, 10, 16, 17, 32} {
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
					case 1: // the same leading 1, 2 or 3 digits, any others
						keep := uint32(0xffff) << (4 * (1 + r.IntN(3))) & 0xffff
						c = uint32(vals[i])&keep | uint32(r.IntN(1<<16))&^keep
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

// chi2 is Pearson's statistic of counts against the uniform distribution.
func chi2(count []int) float64 {
	n := 0
	for _, c := range count {
		n += c
	}
	e := float64(n) / float64(len(count))
	x := 0.0
	for _, c := range count {
		d := float64(c) - e
		x += d * d / e
	}
	return x
}

// TestPartnerViewIsUniform: the bits the partner unmasks per threshold in
// round 1 — seven from the high digits (x₁_A, x₁_B, x₂, y₁_A, y₂_A, y₁_B,
// y₂_B) and four from the low ones — are uniform and independent of the
// thresholds: for thresholds equal to the value in 0…4 leading digits,
// below and above it, and 65536, the 128 (16) joint outcomes each occur
// equally often (χ²). Leaving out any one mask of the construction fails
// this test.
func TestPartnerViewIsUniform(t *testing.T) {
	const k, m = 16, 2048
	bank, partner := sides(t, k)
	for _, c := range []uint32{0x1280, 0x1281, 0x127f, 0x1234, 0x1334, 0x12ff, 0x0fff, 0x2000, 0, MaxThreshold} {
		vals := make([]uint16, m)
		th := make([]uint32, m*k)
		for i := range vals {
			vals[i] = 0x1280
			for j := range k {
				th[i*k+j] = c
			}
		}
		u := make([]byte, CorrectionsBytes(m))
		partner.Choose(vals, u)
		tables := make([]byte, TablesBytes(k, m))
		var keys Keys
		if err := bank.Tables(th, u, tables, &keys); err != nil {
			t.Fatal(err)
		}
		high, low := make([]int, 128), make([]int, 16)
		for i := range m {
			tb := tables[i*tableUnits*k:]
			var msg [digits]uint64
			o := uint(0)
			for d, w := range [digits]uint{width3 * k, width2 * k, width1 * k, width0 * k} {
				msg[d] = getBits(tb, 8*o+uint(partner.choices[digits*i+d])*w, w) ^ partner.pads[0][digits*i+d]&widthMask(w)
				o += 2 * w
			}
			for j := range k {
				h := msg[0]>>j&1 | msg[0]>>(k+j)&1<<1 | msg[0]>>(2*k+j)&1<<2 |
					msg[1]>>j&1<<3 | msg[1]>>(k+j)&1<<4 | msg[1]>>(2*k+j)&1<<5 | msg[1]>>(3*k+j)&1<<6
				high[h]++
				low[msg[2]>>j&1|msg[2]>>(k+j)&1<<1|msg[3]>>j&1<<2|msg[3]>>(k+j)&1<<3]++
			}
		}
		// 127 and 15 degrees of freedom: P(χ² > 200) and P(χ² > 44) ≈ 1e-4.
		if x := chi2(high); x > 200 || math.IsNaN(x) {
			t.Errorf("threshold %#x: partner's view of the high digits, χ² = %.1f", c, x)
		}
		if x := chi2(low); x > 44 || math.IsNaN(x) {
			t.Errorf("threshold %#x: partner's view of the low digits %v, χ² = %.1f", c, low, x)
		}
	}
}

// TestBankViewIsUniform: what the bank opens from a round-2 OT,
// z_B∧w_C ⊕ w_B∧z_C ⊕ σ, is a uniform bit even where its choice makes the
// product terms vanish (w_B = w_C = 0), so it is only Z ⊕ that bit that
// carries anything, and that is [p < c] ⊕ bits the bank holds. Without σ
// it would be constant there.
func TestBankViewIsUniform(t *testing.T) {
	const k, m = 10, 4096
	bank, partner := sides(t, k)
	vals := make([]uint16, m)
	th := make([]uint32, m*k)
	for i := range vals {
		vals[i] = 0x1280
		for j := range k {
			th[i*k+j] = 0x1280 + uint32(j) - 5
		}
	}
	keys, z, _ := exchange(t, bank, partner, vals, th)
	np, ab := pairs(k), AnswerBytes(k)
	count := make([]int, 2)
	for i := range m {
		for j := range np {
			c := keys.choice[i*np+j]
			if c&3 != 0 {
				continue
			}
			tab := binary.LittleEndian.Uint32(z[i*ab+4*j:])
			count[tab>>(2*c)&1^uint32(keys.pads[i*np+j])&1]++
		}
	}
	if x := chi2(count); x > 15 || count[0] < 500 { // 1 degree of freedom: P(χ² > 15) ≈ 1e-4
		t.Errorf("bank's round-2 bit at choice (0, 0): %v, χ² = %.1f", count, x)
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

// TestBitStream: take deals out the stream's bits in order, whatever the
// widths.
func TestBitStream(t *testing.T) {
	var seed [32]byte
	seed[0] = 9
	ref := mrand.NewChaCha8(seed)
	var want []byte // the stream, a bit a byte
	for range 40 {
		w := ref.Uint64()
		for b := range 64 {
			want = append(want, byte(w>>b&1))
		}
	}
	s := bitStream{rng: mrand.NewChaCha8(seed)}
	r := mrand.New(mrand.NewPCG(1, 3))
	o := 0
	for o < len(want)-64 {
		k := uint(1 + r.IntN(64))
		x := s.take(k)
		for b := range k {
			if byte(x>>b&1) != want[o] {
				t.Fatalf("bit %d of the stream (width %d): %d", o, k, x>>b&1)
			}
			o++
		}
		if k < 64 && x>>k != 0 {
			t.Fatalf("width %d: bits above it set", k)
		}
	}
}

// TestBitPacking: 16 messages of every width from 1 to 64 bits, packed
// as the bank writes a table, read back at their offsets.
func TestBitPacking(t *testing.T) {
	r := mrand.New(mrand.NewPCG(11, 12))
	for w := uint(1); w <= 64; w++ {
		var msgs [digitValues]uint64
		tab := make([]byte, 2*w)
		for i := range msgs {
			msgs[i] = r.Uint64() & widthMask(w)
		}
		put16(tab, &msgs, w)
		for i, m := range msgs {
			if got := getBits(tab, uint(i)*w, w); got != m {
				t.Fatalf("width %d message %d: %x, want %x", w, i, got, m)
			}
		}
	}
}

func TestRejects(t *testing.T) {
	bank, partner := sides(t, 4)
	if _, err := NewBank(nil, nil, 0, [32]byte{}); err == nil {
		t.Error("0 thresholds accepted")
	}
	if _, err := NewPartner(nil, nil, 33, [32]byte{}); err == nil {
		t.Error("33 thresholds accepted")
	}
	var keys Keys
	if err := bank.Tables(make([]uint32, 4), make([]byte, CorrectionsBytes(1)-1), make([]byte, TablesBytes(4, 1)), &keys); !errors.Is(err, ErrMessage) {
		t.Errorf("short corrections: %v", err)
	}
	if err := bank.Tables([]uint32{0, 1, 2, MaxThreshold + 1}, make([]byte, CorrectionsBytes(1)), make([]byte, TablesBytes(4, 1)), &keys); err == nil {
		t.Error("threshold above 65536 accepted")
	}
	u := make([]byte, CorrectionsBytes(2))
	partner.Choose([]uint16{1, 2}, u)
	if err := partner.Answer(make([]byte, TablesBytes(4, 1)), make([]byte, 2)); !errors.Is(err, ErrMessage) {
		t.Errorf("short tables: %v", err)
	}
	keys.size(2, pairs(4))
	z := make([]byte, 2*AnswerBytes(4))
	z[AnswerBytes(4)-1] = 0x10
	if err := bank.Open(&keys, z, make([]uint32, 2)); !errors.Is(err, ErrMessage) {
		t.Errorf("answer bits beyond k: %v", err)
	}
	if err := bank.Open(&keys, z[1:], make([]uint32, 2)); !errors.Is(err, ErrMessage) {
		t.Errorf("short answers: %v", err)
	}
}

// FuzzAnswer: the partner reads any table bytes without panicking.
func FuzzAnswer(f *testing.F) {
	_, partner := sides(f, 3)
	f.Add(make([]byte, TablesBytes(3, 2)))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, tables []byte) {
		u := make([]byte, CorrectionsBytes(2))
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
	var keys Keys
	keys.size(2, pairs(10))
	for i := range keys.choice {
		keys.choice[i] = byte(i * 7 % 16)
		keys.pads[i] = uint64(i) * 0x9e3779b97f4a7c15
	}
	keys.w[0], keys.w[1] = 5, 9
	f.Add(make([]byte, 2*AnswerBytes(10)))
	f.Add([]byte{0xff, 0x03, 0, 0})
	f.Fuzz(func(t *testing.T, z []byte) {
		ge := make([]uint32, 2)
		if err := bank.Open(&keys, z, ge); err != nil {
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
	u := make([]byte, CorrectionsBytes(m))
	tables := make([]byte, TablesBytes(k, m))
	z := make([]byte, m*AnswerBytes(k))
	ge := make([]uint32, m)
	var keys Keys
	b.ReportAllocs()
	for b.Loop() {
		partner.Choose(vals, u)
		if err := bank.Tables(th, u, tables, &keys); err != nil {
			b.Fatal(err)
		}
		if err := partner.Answer(tables, z); err != nil {
			b.Fatal(err)
		}
		if err := bank.Open(&keys, z, ge); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*m)/b.Elapsed().Seconds(), "positions/s")
}
