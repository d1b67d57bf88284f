// Package bands compares, for many positions at once, a 16-bit value held
// by one party (the partner: its fixed-point partial score) with up to 32
// thresholds per position held by the other (the bank: band edges minus
// its own part of the score), so that the bank learns the bits [p ≥ c_k]
// and nothing else, and the partner learns nothing. The bank turns the
// bits into a score band; neither side sees the score.
//
// One round, two 1-out-of-256 OTs per position (package ot). Write the
// value as two digits, p = 256·h + l, and a threshold as c = 256·c_h + c_l
// (c ∈ [0, 65536], so c_h ∈ [0, 256]). Then
//
//	[p < c] = [h < c_h] ⊕ [h = c_h]·[l < c_l]
//
// (the two terms never hold together). The partner chooses h in the first
// OT and l in the second. The bank, for each threshold k, draws four bits
// β, γ, μ, ν and offers, for every digit value v,
//
//	high OT:  x₂(v) = [v = c_h] ⊕ β
//	          x₁(v) = [v < c_h] ⊕ x₂(v)·γ ⊕ μ ⊕ ν
//	low OT:   y₁(v) = [v < c_l] ⊕ γ
//	          y₂(v) = β·y₁(v) ⊕ ν
//
// and the partner answers z = x₁ ⊕ x₂·y₁ ⊕ y₂ = [p < c] ⊕ μ ⊕ β·γ, so the
// bank has [p ≥ c] = ¬(z ⊕ μ ⊕ β·γ). The product of the two digit terms
// needs no extra round because each cross term has one factor the bank
// knows as a function of one digit: it is folded into that digit's OT.
//
// What each side learns. The partner receives x₁, x₂, y₁, y₂ for its own
// digits: each is masked by its own fresh bit (μ, β, γ, ν; ν also masks
// x₁, which μ alone masks again), so the four are uniform and independent
// whatever the thresholds; the other 255 messages of each OT are hidden
// by the OT. The bank receives z, which is [p < c] one-time-padded by
// bits it chose, and the OT corrections, which hide the choices. So the
// bank learns the K comparison bits per position, the partner nothing but
// the number of positions and of thresholds. Semi-honest parties, as in
// DESIGN §2: a bank that departs from the protocol could place its K
// thresholds anywhere and learn K bits of p per position (never more).
package bands

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync"

	"github.com/tandem-dev/tandem/ot"
)

// MaxThresholds bounds the thresholds per position (two bits each per
// OT message, and an OT pad is 64 bits).
const MaxThresholds = 32

// MaxThreshold is the largest threshold: [p ≥ 65536] is false for every
// 16-bit p.
const MaxThreshold = 1 << 16

// ErrMessage is wrapped by every error about a malformed peer message.
var ErrMessage = errors.New("bands: malformed message")

// TableBytes is what the bank sends per position: two OTs of 256
// messages of 2k bits, packed without padding (the tables are 97 % of the
// job's bytes, so byte-aligned messages would cost up to 17 % more).
func TableBytes(k int) int { return 2 * ot.Values * 2 * k / 8 }

// CorrectionBytes is what the partner sends per position before the tables.
const CorrectionBytes = 2 * ot.CorrectionBytes

// AnswerBytes is what the partner sends per position after the tables.
func AnswerBytes(k int) int { return (k + 7) / 8 }

func checkK(k int) error {
	if k < 1 || k > MaxThresholds {
		return fmt.Errorf("bands: %d thresholds per position, want 1…%d", k, MaxThresholds)
	}
	return nil
}

// Bank is the side with the thresholds.
type Bank struct {
	snd *ot.Sender
	k   int
	rng *rand.ChaCha8
	sc  [2]ot.PadsScratch
}

// NewBank compares against k thresholds per position; seed keys the bank's
// masks (draw it from a cryptographic source).
func NewBank(snd *ot.Sender, k int, seed [32]byte) (*Bank, error) {
	if err := checkK(k); err != nil {
		return nil, err
	}
	return &Bank{snd: snd, k: k, rng: rand.NewChaCha8(seed)}, nil
}

// Keys is the bank's secret per position of one batch: w = μ ⊕ β∧γ, one
// bit per threshold.
type Keys []uint64

// Tables answers the partner's corrections u (CorrectionBytes per
// position) for the m positions whose thresholds are th[i·k : (i+1)·k]
// (each in [0, MaxThreshold]): it writes the tables into out
// (TableBytes(k) per position) and returns the keys that open the answers.
func (b *Bank) Tables(th []uint32, u []byte, out []byte) (Keys, error) {
	k := b.k
	if len(th)%k != 0 {
		return nil, fmt.Errorf("bands: %d thresholds for %d per position", len(th), k)
	}
	m := len(th) / k
	if len(u) != m*CorrectionBytes {
		return nil, fmt.Errorf("%w: %d correction bytes for %d positions, want %d", ErrMessage, len(u), m, m*CorrectionBytes)
	}
	if len(out) != m*TableBytes(k) {
		return nil, fmt.Errorf("bands: table buffer of %d bytes for %d positions", len(out), m)
	}
	for _, c := range th {
		if c > MaxThreshold {
			return nil, fmt.Errorf("bands: a threshold above %d", MaxThreshold) // no value in errors: it is the bank's score part
		}
	}
	batch, err := b.snd.Extend(u)
	if err != nil {
		return nil, err
	}
	// The masks, drawn in position order so a seed fixes them whatever
	// the split between goroutines.
	masks := make([]uint64, 4*m) // β, γ, μ, ν per position
	all := uint64(1)<<k - 1
	for i := range masks {
		masks[i] = b.rng.Uint64() & all
	}
	keys := make(Keys, m)
	for i := range keys {
		beta, gamma, mu := masks[4*i], masks[4*i+1], masks[4*i+2]
		keys[i] = mu ^ beta&gamma
	}
	half := (m + 1) / 2
	var wg sync.WaitGroup
	for g, r := range [2][2]int{{0, half}, {half, m}} {
		wg.Go(func() { b.tables(batch, th, masks, out, r[0], r[1], &b.sc[g]) })
	}
	wg.Wait()
	return keys, nil
}

// tablesChunk positions are padded together (2·8·256 pads, 32 KiB).
const tablesChunk = 8

func (b *Bank) tables(batch *ot.Batch, th []uint32, masks []uint64, out []byte, lo, hi int, sc *ot.PadsScratch) {
	k := uint(b.k)
	tb := TableBytes(b.k)
	pads := make([]uint64, 2*tablesChunk*ot.Values)
	var eqH, eqL [ot.Values + 1]uint64 // bits j whose digit is v (index 256: c_h = 256)
	all := uint64(1)<<k - 1
	for c := lo; c < hi; c += tablesChunk {
		n := min(tablesChunk, hi-c)
		batch.Pads(2*c, 2*(c+n), pads[:2*n*ot.Values], sc)
		for i := range n {
			pos := c + i
			beta, gamma, mu, nu := masks[4*pos], masks[4*pos+1], masks[4*pos+2], masks[4*pos+3]
			cs := th[pos*b.k : (pos+1)*b.k]
			for j, t := range cs {
				eqH[t>>8] |= 1 << j
				eqL[t&0xff] |= 1 << j
			}
			var msgs [2 * ot.Values]uint64
			// High digit, message x₁ | x₂<<k with x₂ = eq ⊕ β and
			// x₁ = lt ⊕ x₂∧γ ⊕ μ ⊕ ν, i.e. (the ∧ distributes over ⊕)
			// a constant ⊕ lt ⊕ eq∧γ ⊕ eq<<k; lt(v) is every bit whose
			// c_h exceeds v.
			ph := (*[ot.Values]uint64)(pads[2*i*ot.Values:])
			base := (beta&gamma ^ mu ^ nu) | beta<<k
			lt := all
			for v := range ot.Values {
				eq := eqH[v]
				lt &^= eq
				msgs[v] = base ^ lt ^ eq&gamma ^ eq<<k ^ ph[v]
			}
			// Low digit, message y₁ | y₂<<k with y₁ = lt ⊕ γ and
			// y₂ = β∧y₁ ⊕ ν = β∧lt ⊕ β∧γ ⊕ ν.
			pl := (*[ot.Values]uint64)(pads[(2*i+1)*ot.Values:])
			base = gamma | (beta&gamma^nu)<<k
			lt = all
			for v := range ot.Values {
				lt &^= eqL[v]
				msgs[ot.Values+v] = base ^ lt ^ (beta&lt)<<k ^ pl[v]
			}
			for _, t := range cs {
				eqH[t>>8], eqL[t&0xff] = 0, 0
			}
			pack(out[pos*tb:(pos+1)*tb], &msgs, 2*k)
		}
	}
}

// pack writes the 512 messages of a table, bits each (≤ 64), back to back
// little-endian: bit j of the table is bit j%8 of byte j/8. Branch-free,
// in registers: the word being filled is stored after every message and
// the store moves on once it is full (a flush test, taken at the irregular
// rhythm of 2k-bit messages, cost more than the message itself). Each
// quarter of the table (128 messages) fills exactly 2·bits words, so the
// quarters are four independent chains, interleaved for the CPU to
// overlap.
func pack(dst []byte, msgs *[2 * ot.Values]uint64, bits uint) {
	mask := uint64(1)<<bits - 1 // (for bits = 64, 1<<64 is 0 and the mask all ones)
	const q = len(msgs) / 4
	qb := int(bits) * 16 // a quarter in bytes: 128 messages of bits bits
	d0, d1, d2, d3 := dst[:qb], dst[qb:2*qb], dst[2*qb:3*qb], dst[3*qb:4*qb]
	var a0, a1, a2, a3 uint64
	var n uint
	o := 0
	for i := range q {
		m0, m1, m2, m3 := msgs[i]&mask, msgs[q+i]&mask, msgs[2*q+i]&mask, msgs[3*q+i]&mask
		a0, a1, a2, a3 = a0|m0<<n, a1|m1<<n, a2|m2<<n, a3|m3<<n
		binary.LittleEndian.PutUint64(d0[o:o+8], a0)
		binary.LittleEndian.PutUint64(d1[o:o+8], a1)
		binary.LittleEndian.PutUint64(d2[o:o+8], a2)
		binary.LittleEndian.PutUint64(d3[o:o+8], a3)
		t := n + bits
		full := -uint64(t >> 6) // all ones when the words are full (t < 128)
		o += int(full & 8)
		r := 64 - n // the rest of each message moves to the next word (x>>64 is 0 in Go)
		a0, a1, a2, a3 = a0&^full|m0>>r&full, a1&^full|m1>>r&full, a2&^full|m2>>r&full, a3&^full|m3>>r&full
		n = t & 63
	}
}

// getBits reads the bits-long message at bit offset off of src.
func getBits(src []byte, off, bits uint) uint64 {
	b, sh := off/8, off%8
	var tmp [16]byte
	copy(tmp[:], src[b:min(uint(len(src)), b+16)])
	lo, hi := binary.LittleEndian.Uint64(tmp[:]), binary.LittleEndian.Uint64(tmp[8:])
	x := lo >> sh
	if sh > 0 {
		x |= hi << (64 - sh)
	}
	if bits < 64 {
		x &= 1<<bits - 1
	}
	return x
}

// putMsg writes the low mb bytes of x at dst[o:], little-endian.
func putMsg(dst []byte, o, mb int, x uint64) {
	for b := range mb {
		dst[o+b] = byte(x >> (8 * b))
	}
}

func getMsg(src []byte, mb int) uint64 {
	var tmp [8]byte
	copy(tmp[:], src[:mb])
	return binary.LittleEndian.Uint64(tmp[:])
}

// Open reads the partner's answers z (AnswerBytes(k) per position) and
// sets ge[i] bit j to [p_i ≥ c_{i,j}].
func (b *Bank) Open(keys Keys, z []byte, ge []uint32) error {
	ab := AnswerBytes(b.k)
	if len(z) != len(keys)*ab || len(ge) != len(keys) {
		return fmt.Errorf("%w: %d answer bytes for %d positions, want %d", ErrMessage, len(z), len(keys), len(keys)*ab)
	}
	all := uint64(1)<<b.k - 1
	for i, w := range keys {
		zi := getMsg(z[i*ab:], ab)
		if zi&^all != 0 {
			return fmt.Errorf("%w: answer %d has bits beyond its %d thresholds", ErrMessage, i, b.k)
		}
		ge[i] = uint32(^(zi ^ w) & all)
	}
	return nil
}

// Partner is the side with the values.
type Partner struct {
	rcv     *ot.Receiver
	k       int
	choices []byte
	pads    []uint64
}

// NewPartner answers comparisons against k thresholds per position.
func NewPartner(rcv *ot.Receiver, k int) (*Partner, error) {
	if err := checkK(k); err != nil {
		return nil, err
	}
	return &Partner{rcv: rcv, k: k}, nil
}

// Choose starts a batch: for its values p (one per position) it writes the
// OT corrections into u (CorrectionBytes per position). The batch ends
// with Answer.
func (p *Partner) Choose(vals []uint16, u []byte) {
	m := len(vals)
	if len(u) != m*CorrectionBytes {
		panic(fmt.Sprintf("bands: Partner.Choose: %d values, %d correction bytes", m, len(u)))
	}
	p.choices = p.choices[:0]
	for _, v := range vals {
		p.choices = append(p.choices, byte(v>>8), byte(v))
	}
	if cap(p.pads) < 2*m {
		p.pads = make([]uint64, 2*m)
	}
	p.pads = p.pads[:2*m]
	p.rcv.Extend(p.choices, u, p.pads)
}

// Answer reads the bank's tables for the batch and writes the answers into
// z (AnswerBytes(k) per position).
func (p *Partner) Answer(tables []byte, z []byte) error {
	k, ab := p.k, AnswerBytes(p.k)
	m := len(p.choices) / 2
	if len(tables) != m*TableBytes(k) {
		return fmt.Errorf("%w: %d table bytes for %d positions, want %d", ErrMessage, len(tables), m, m*TableBytes(k))
	}
	if len(z) != m*ab {
		panic(fmt.Sprintf("bands: Partner.Answer: answer buffer of %d bytes for %d positions", len(z), m))
	}
	all := uint64(1)<<k - 1
	tb := TableBytes(k)
	for i := range m {
		t := tables[i*tb : (i+1)*tb]
		mbits := uint(2 * k)
		xh := getBits(t, uint(p.choices[2*i])*mbits, mbits) ^ p.pads[2*i]
		xl := getBits(t, uint(ot.Values+int(p.choices[2*i+1]))*mbits, mbits) ^ p.pads[2*i+1]
		x1, x2 := xh&all, xh>>k&all
		y1, y2 := xl&all, xl>>k&all
		putMsg(z[i*ab:(i+1)*ab], 0, ab, x1^x2&y1^y2)
	}
	return nil
}

// Band reads the comparison bits of one position against ascending band
// edges and returns how many edges the value reaches (0…). With presence,
// bit 0 was compared against 1 (the partner sends 0 for "no value") and
// the edges are bits 1…k−1: present is false for a missing value. Without,
// the edges are bits 0…k−1 and present is true. An error when the bits
// are not a prefix, which honest parties never produce.
func Band(ge uint32, k int, presence bool) (edges int, present bool, err error) {
	if presence {
		if ge&1 == 0 {
			if ge != 0 {
				return 0, false, errors.New("bands: comparison bits of a missing value reach an edge") // bits stay out of errors: they are a band
			}
			return 0, false, nil
		}
		ge, k = ge>>1, k-1
	}
	n := bits.OnesCount32(ge)
	if ge != 1<<n-1 || n > k {
		return 0, false, errors.New("bands: comparison bits are not a prefix of ascending edges")
	}
	return n, true, nil
}
