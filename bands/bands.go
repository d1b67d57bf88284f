// Package bands compares, for many positions at once, a 16-bit value held
// by one party (the partner: its fixed-point partial score) with up to 32
// thresholds per position held by the other (the bank: band edges minus
// its own part of the score), so that the bank learns the bits [p ≥ c_k]
// and nothing else, and the partner learns nothing. The bank turns the
// bits into a score band; neither side sees the score.
//
// Write the value as four hexadecimal digits, p = (a₃a₂a₁a₀)₁₆, and a
// threshold c ∈ [0, 65536] as (t₃t₂t₁t₀)₁₆ (t₃ = 16 for c = 65536). With
// ltᵢ = [aᵢ < tᵢ] and eqᵢ = [aᵢ = tᵢ],
//
//	[p < c] = LT_H ⊕ EQ_H·LT_L,  LT_H = lt₃ ⊕ eq₃·lt₂,  EQ_H = eq₃·eq₂,
//	                              LT_L = lt₁ ⊕ eq₁·lt₀
//
// (the terms of each ⊕ never hold together). Two rounds of OTs (package
// ot), in the three messages of one batch:
//
// Round 1: four 1-out-of-16 OTs a position, the partner choosing its
// digits. Each of LT_H, EQ_H and LT_L has the form A(x) ⊕ B(x)·C(y) in two
// digits x, y, and such a function costs one round: the bank draws bits
// β, γ, μ, ν and offers, for every digit value v,
//
//	x's OT:  x₂(v) = B(v) ⊕ β,  x₁(v) = A(v) ⊕ x₂(v)·γ ⊕ μ ⊕ ν
//	y's OT:  y₁(v) = C(v) ⊕ γ,  y₂(v) = β·y₁(v) ⊕ ν
//
// and the partner computes z = x₁ ⊕ x₂·y₁ ⊕ y₂ = A ⊕ B·C ⊕ w with the
// bank's share w = μ ⊕ β·γ: the cross terms each have one factor the
// bank knows as a function of one digit, folded into that digit's OT.
// LT_H (A = lt₃, B = eq₃, C = lt₂) and EQ_H (A = 0, B = eq₃, C = eq₂)
// share their β, so x₂ is sent once. So the partner holds z_A, z_B, z_C
// and the bank w_A, w_B, w_C, XOR shares of LT_H, EQ_H, LT_L.
//
// Round 2: [p < c] = (z_A ⊕ w_A) ⊕ (z_B ⊕ w_B)(z_C ⊕ w_C), whose only term
// mixing the two sides is z_B·w_C ⊕ w_B·z_C. The bank knows w_B and w_C
// when it builds round 1's tables (they are its masks), so it is the
// chooser here: a second OT extension runs the other way, the bank
// choosing (w_B, w_C) for two thresholds at once in a 1-out-of-16 OT
// whose corrections travel with round 1's tables; the partner, with a
// fresh bit σ per threshold, offers m(x, y) = z_B·y ⊕ x·z_C ⊕ σ and sends
// those tables with Z = z_A ⊕ z_B·z_C ⊕ σ. The bank has [p < c] =
// Z ⊕ m(w_B, w_C) ⊕ w_A ⊕ w_B·w_C.
//
// What each side learns. The partner receives, per threshold, x₂, x₁ (two
// of them), y₁, y₂ (two) from the high digits' OTs and x₁, x₂, y₁, y₂ from
// the low ones: each masked by a fresh bit of its own (β, μ_A, μ_B, γ_A,
// ν_A, γ_B, ν_B; and β′, μ_C, γ_C, ν_C), so they are uniform and
// independent whatever the thresholds; the other 15 messages of each OT
// are hidden by the OT, and the round-2 corrections hide the bank's
// choices. The bank receives m(w_B, w_C), uniform by σ, and Z, which with
// it gives exactly [p < c] ⊕ (bits it knows); the other 15 messages of
// each round-2 OT are hidden by that OT. So the bank learns the K
// comparison bits per position, the partner nothing but the number of
// positions and of thresholds. Semi-honest parties, as in DESIGN §2: a
// bank that departs from the protocol could place its K thresholds
// anywhere and learn K bits of p per position (never more).
//
// Cost per position at K thresholds: 4 + ⌈K/2⌉ OTs (32 bytes of
// corrections each), 22·K bytes of round-1 tables, 4 bytes of round-2
// table per pair, K bits of Z; the bank hashes 64 pads (128 beyond 16
// thresholds), the partner 16·⌈K/2⌉.
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

// Protocol names this comparison for the peers' hello: four hexadecimal
// digits, round-2 OTs the other way, corrections as columns. (Releases
// before it compared two digits in two 1-out-of-256 OTs and sent no name.)
const Protocol = "hex4-and"

// MaxThresholds bounds the thresholds per position: round 1's widest
// message is four bits a threshold of a group of 16 under one 64-bit pad,
// and a position has at most two groups (pad domains 0 and 1).
const MaxThresholds = 32

// MaxThreshold is the largest threshold: [p ≥ 65536] is false for every
// 16-bit p.
const MaxThreshold = 1 << 16

// ErrMessage is wrapped by every error about a malformed peer message.
var ErrMessage = errors.New("bands: malformed message")

const (
	digits      = 4  // round 1's OTs a position, most significant first
	digitValues = 16 // messages an OT
	group       = 16 // thresholds under one pad
	// Round 1's message widths in bits a threshold, per digit: the high
	// pair's x (x₁ of LT_H and EQ_H, their common x₂) and y (y₁, y₂ of
	// each), the low pair's x and y.
	width3, width2, width1, width0 = 3, 4, 2, 2
	tableUnits                     = digitValues * (width3 + width2 + width1 + width0) / 8 // bytes a threshold
)

// pairs is the number of round-2 OTs a position: one per two thresholds.
func pairs(k int) int { return (k + 1) / 2 }

// CorrectionsBytes is what the partner sends for a batch of m positions
// before the tables: round 1's OT corrections, 128 bytes a position
// (rounded up to 16 positions).
func CorrectionsBytes(m int) int { return ot.CorrectionsBytes(digits * m) }

// TablesBytes is what the bank sends for a batch of m positions at k
// thresholds: round 1's tables (22·k bytes a position), then round 2's
// corrections (32 bytes a pair of thresholds, rounded up to 64 pairs).
func TablesBytes(k, m int) int { return tableUnits*k*m + ot.CorrectionsBytes(pairs(k)*m) }

// AnswerBytes is what the partner sends per position after the tables:
// round 2's tables (16 messages of two bits per pair) and Z.
func AnswerBytes(k int) int { return 4*pairs(k) + (k+7)/8 }

func checkK(k int) error {
	if k < 1 || k > MaxThresholds {
		return fmt.Errorf("bands: %d thresholds per position, want 1…%d", k, MaxThresholds)
	}
	return nil
}

// groups splits k thresholds into groups of at most 16; the sizes.
func groups(k int) []int {
	if k <= group {
		return []int{k}
	}
	return []int{group, k - group}
}

// Bank is the side with the thresholds.
type Bank struct {
	snd   *ot.Sender   // round 1: the partner chooses
	rcv   *ot.Receiver // round 2: the bank chooses
	k     int
	rng   bitStream
	masks []uint64
	sc    [2]scratch
}

// scratch is one goroutine's memory for the pads of a chunk of positions.
type scratch struct {
	pads [][]uint64 // per pad domain
	ot   ot.PadsScratch
}

func (s *scratch) size(domains, n int) {
	for len(s.pads) < domains {
		s.pads = append(s.pads, nil)
	}
	for d := range domains {
		if cap(s.pads[d]) < n {
			s.pads[d] = make([]uint64, n)
		}
		s.pads[d] = s.pads[d][:n]
	}
}

// NewBank compares against k thresholds per position, on the two OT
// extensions of one session (snd for round 1, rcv for round 2, run the
// other way); seed keys the bank's masks (draw it from a cryptographic
// source).
func NewBank(snd *ot.Sender, rcv *ot.Receiver, k int, seed [32]byte) (*Bank, error) {
	if err := checkK(k); err != nil {
		return nil, err
	}
	return &Bank{snd: snd, rcv: rcv, k: k, rng: bitStream{rng: rand.NewChaCha8(seed)}}, nil
}

// Keys is the bank's secret of one batch, which opens the partner's
// answers: per position w = w_A ⊕ w_B∧w_C (a bit per threshold); per
// round-2 OT its choice and pad. Tables fills it, reusing its memory.
type Keys struct {
	w      []uint64
	choice []byte
	pads   []uint64
}

// Len is the number of positions the keys open.
func (k *Keys) Len() int { return len(k.w) }

func (k *Keys) size(m, p int) {
	if cap(k.w) < m || cap(k.pads) < m*p {
		k.w, k.choice, k.pads = make([]uint64, m), make([]byte, m*p), make([]uint64, m*p)
	}
	k.w, k.choice, k.pads = k.w[:m], k.choice[:m*p], k.pads[:m*p]
}

// masksPerGroup bits per threshold the bank draws for a position: β, γ_A,
// μ_A, ν_A, γ_B, μ_B, ν_B (high pair), β′, γ_C, μ_C, ν_C (low pair).
const masksPerGroup = 11

// Tables answers the partner's corrections u (CorrectionsBytes(m)) for
// the m positions whose thresholds are th[i·k : (i+1)·k] (each in [0,
// MaxThreshold]): it writes round 1's tables and round 2's corrections
// into out (TablesBytes(k, m)) and the secret that opens the answers into
// keys.
func (b *Bank) Tables(th []uint32, u []byte, out []byte, keys *Keys) error {
	k := b.k
	if len(th)%k != 0 {
		return fmt.Errorf("bands: %d thresholds for %d per position", len(th), k)
	}
	m := len(th) / k
	if len(u) != CorrectionsBytes(m) {
		return fmt.Errorf("%w: %d correction bytes for %d positions, want %d", ErrMessage, len(u), m, CorrectionsBytes(m))
	}
	if len(out) != TablesBytes(k, m) {
		return fmt.Errorf("bands: table buffer of %d bytes for %d positions", len(out), m)
	}
	for _, c := range th {
		if c > MaxThreshold {
			return fmt.Errorf("bands: a threshold above %d", MaxThreshold) // no value in errors: it is the bank's score part
		}
	}
	batch, err := b.snd.Extend(digits*m, u)
	if err != nil {
		return err
	}
	gs := groups(k)
	// The masks, drawn in position order so a seed fixes them whatever
	// the split between goroutines.
	if cap(b.masks) < m*len(gs)*masksPerGroup {
		b.masks = make([]uint64, m*len(gs)*masksPerGroup)
	}
	masks := b.masks[:m*len(gs)*masksPerGroup]
	for i := range m {
		for g, kg := range gs {
			ms := masks[(i*len(gs)+g)*masksPerGroup:][:masksPerGroup]
			for j := range ms {
				ms[j] = b.rng.take(uint(kg))
			}
		}
	}
	np := pairs(k)
	keys.size(m, np)
	for i := range m {
		var wA, wB, wC uint64
		for g := range gs {
			ms := masks[(i*len(gs)+g)*masksPerGroup:][:masksPerGroup]
			beta, gA, muA, gB, muB := ms[0], ms[1], ms[2], ms[4], ms[5]
			betaL, gC, muC := ms[7], ms[8], ms[9]
			wA |= (muA ^ beta&gA) << (group * g)
			wB |= (muB ^ beta&gB) << (group * g)
			wC |= (muC ^ betaL&gC) << (group * g)
		}
		keys.w[i] = wA ^ wB&wC
		for j := range np {
			keys.choice[i*np+j] = byte(wB>>(2*j)&1 | wC>>(2*j)&1<<1 | wB>>(2*j+1)&1<<2 | wC>>(2*j+1)&1<<3)
		}
	}
	tb := tableUnits * k
	half := (m + 1) / 2
	var wg sync.WaitGroup
	// Round 2's corrections while round 1's tables are built.
	wg.Go(func() { b.rcv.Extend(keys.choice, out[m*tb:], keys.pads) })
	for g, r := range [2][2]int{{0, half}, {half, m}} {
		wg.Go(func() { b.tables(batch, th, masks, out[:m*tb], r[0], r[1], &b.sc[g]) })
	}
	wg.Wait()
	return nil
}

// tablesChunk positions are padded together (4·16 pads each a group).
const tablesChunk = 32

func (b *Bank) tables(batch *ot.Batch, th []uint32, masks []uint64, out []byte, lo, hi int, sc *scratch) {
	k := b.k
	gs := groups(k)
	tb := tableUnits * k
	sc.size(len(gs), tablesChunk*digits*digitValues)
	pads := sc.pads
	for c := lo; c < hi; c += tablesChunk {
		n := min(tablesChunk, hi-c)
		for g := range gs {
			batch.PadsN(digits*c, digits*(c+n), digitValues, g, pads[g][:n*digits*digitValues], &sc.ot)
		}
		for i := range n {
			pos := c + i
			dst := out[pos*tb : (pos+1)*tb]
			for g, kg := range gs {
				ms := masks[(pos*len(gs)+g)*masksPerGroup:][:masksPerGroup]
				cs := th[pos*k+group*g : pos*k+group*g+kg]
				p := pads[g][i*digits*digitValues : (i+1)*digits*digitValues]
				groupTables(dst[tableUnits*group*g:tableUnits*(group*g+kg)], cs, ms, p)
			}
		}
	}
}

// groupTables writes round 1's four tables of one position for the
// thresholds cs (at most 16) with the masks ms, under the pads p (16 per
// digit, most significant digit first). Bit j of every field is
// threshold j's; eqᵢ[v] has the bits of the thresholds whose digit i is v
// (index 16: t₃ of c = 65536), ltᵢ those whose digit exceeds v.
func groupTables(dst []byte, cs []uint32, ms []uint64, p []uint64) {
	kg := uint(len(cs))
	all := uint64(1)<<kg - 1
	var e3, e2, e1, e0 [digitValues + 1]uint64
	for j, t := range cs {
		e3[t>>12] |= 1 << j
		e2[t>>8&15] |= 1 << j
		e1[t>>4&15] |= 1 << j
		e0[t&15] |= 1 << j
	}
	beta, gA, muA, nuA, gB, muB, nuB := ms[0], ms[1], ms[2], ms[3], ms[4], ms[5], ms[6]
	betaL, gC, muC, nuC := ms[7], ms[8], ms[9], ms[10]
	// The fields, expanded so that each message is a constant ⊕ terms in
	// the digit's eq and lt (∧ distributes over ⊕):
	//   digit 3: x₁_A = lt ⊕ eq∧γ_A ⊕ (β∧γ_A ⊕ μ_A ⊕ ν_A)
	//            x₁_B = eq∧γ_B ⊕ (β∧γ_B ⊕ μ_B ⊕ ν_B),  x₂ = eq ⊕ β
	//   digit 2: y₁_A = lt ⊕ γ_A, y₂_A = β∧lt ⊕ (β∧γ_A ⊕ ν_A)
	//            y₁_B = eq ⊕ γ_B, y₂_B = β∧eq ⊕ (β∧γ_B ⊕ ν_B)
	//   digit 1: x₁_C = lt ⊕ eq∧γ_C ⊕ (β′∧γ_C ⊕ μ_C ⊕ ν_C), x₂_C = eq ⊕ β′
	//   digit 0: y₁_C = lt ⊕ γ_C, y₂_C = β′∧lt ⊕ (β′∧γ_C ⊕ ν_C)
	base3 := (beta&gA ^ muA ^ nuA) | (beta&gB^muB^nuB)<<kg | beta<<(2*kg)
	base2 := gA | (beta&gA^nuA)<<kg | gB<<(2*kg) | (beta&gB^nuB)<<(3*kg)
	base1 := (betaL&gC ^ muC ^ nuC) | betaL<<kg
	base0 := gC | (betaL&gC^nuC)<<kg
	var m3, m2, m1, m0 [digitValues]uint64
	lt3, lt2, lt1, lt0 := all, all, all, all
	for v := range digitValues {
		q3, q2, q1, q0 := e3[v], e2[v], e1[v], e0[v]
		lt3, lt2, lt1, lt0 = lt3&^q3, lt2&^q2, lt1&^q1, lt0&^q0
		m3[v] = base3 ^ lt3 ^ q3&gA ^ (q3&gB)<<kg ^ q3<<(2*kg) ^ p[v]&(1<<(width3*kg)-1)
		m2[v] = base2 ^ lt2 ^ (beta&lt2)<<kg ^ q2<<(2*kg) ^ (beta&q2)<<(3*kg) ^ p[digitValues+v]&widthMask(width2*kg)
		m1[v] = base1 ^ lt1 ^ q1&gC ^ q1<<kg ^ p[2*digitValues+v]&(1<<(width1*kg)-1)
		m0[v] = base0 ^ lt0 ^ (betaL&lt0)<<kg ^ p[3*digitValues+v]&(1<<(width0*kg)-1)
	}
	o := 0
	for _, t := range [digits]struct {
		m *[digitValues]uint64
		w uint
	}{{&m3, width3 * kg}, {&m2, width2 * kg}, {&m1, width1 * kg}, {&m0, width0 * kg}} {
		put16(dst[o:o+2*int(t.w)], t.m, t.w)
		o += 2 * int(t.w)
	}
}

// bitStream deals out a ChaCha8 stream a few bits at a time, so that a
// position's eleven masks of k bits cost ⌈11k/64⌉ words, not eleven.
type bitStream struct {
	rng  *rand.ChaCha8
	word uint64 // the next left bits of the stream, low bits first
	left uint
}

// take returns the next k bits of the stream (1 ≤ k ≤ 64).
func (s *bitStream) take(k uint) uint64 {
	if k <= s.left {
		x := s.word & widthMask(k)
		s.word >>= k // (k = 64 shifts all out: 0 in Go)
		s.left -= k
		return x
	}
	x := s.word // the left bits there are, then the rest from a new word
	w := s.rng.Uint64()
	x |= w << s.left
	used := k - s.left
	s.word, s.left = w>>used, 64-used
	return x & widthMask(k)
}

// widthMask is the mask of the low w bits, w ≤ 64.
func widthMask(w uint) uint64 {
	if w >= 64 {
		return ^uint64(0)
	}
	return 1<<w - 1
}

// put16 writes 16 messages of w bits (1 ≤ w ≤ 64, no bits above w) back
// to back into dst (2w bytes), little-endian: bit j of the table is bit
// j%8 of byte j/8.
func put16(dst []byte, msgs *[digitValues]uint64, w uint) {
	var acc uint64
	var n uint // bits in acc
	o := 0
	for _, x := range msgs {
		acc |= x << n
		if n+w < 64 {
			n += w
			continue
		}
		binary.LittleEndian.PutUint64(dst[o:], acc)
		o += 8
		acc = x >> (64 - n) // (x>>64 is 0 in Go)
		n = n + w - 64
	}
	for b := range n / 8 { // 16w bits: whole bytes remain
		dst[o+int(b)] = byte(acc >> (8 * b))
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

// putMsg writes the low mb bytes of x at dst, little-endian.
func putMsg(dst []byte, mb int, x uint64) {
	for b := range mb {
		dst[b] = byte(x >> (8 * b))
	}
}

func getMsg(src []byte, mb int) uint64 {
	var tmp [8]byte
	copy(tmp[:], src[:mb])
	return binary.LittleEndian.Uint64(tmp[:])
}

// Open reads the partner's answers z (AnswerBytes(k) per position) and
// sets ge[i] bit j to [p_i ≥ c_{i,j}].
func (b *Bank) Open(keys *Keys, z []byte, ge []uint32) error {
	k, ab, np := b.k, AnswerBytes(b.k), pairs(b.k)
	m := keys.Len()
	if len(z) != m*ab || len(ge) != m {
		return fmt.Errorf("%w: %d answer bytes for %d positions, want %d", ErrMessage, len(z), m, m*ab)
	}
	all := uint64(1)<<k - 1
	for i, w := range keys.w {
		zi := z[i*ab : (i+1)*ab]
		var o uint64 // z_B∧w_C ⊕ w_B∧z_C ⊕ σ, from the partner's round-2 tables
		for j := range np {
			tab := binary.LittleEndian.Uint32(zi[4*j:])
			c := keys.choice[i*np+j]
			o |= uint64(tab>>(2*c)&3^uint32(keys.pads[i*np+j])&3) << (2 * j)
		}
		Z := getMsg(zi[4*np:], ab-4*np)
		if Z&^all != 0 {
			return fmt.Errorf("%w: answer %d has bits beyond its %d thresholds", ErrMessage, i, k)
		}
		ge[i] = uint32(^(Z ^ o ^ w) & all)
	}
	return nil
}

// Partner is the side with the values.
type Partner struct {
	rcv     *ot.Receiver // round 1: the partner chooses
	snd     *ot.Sender   // round 2: the bank chooses
	k       int
	rng     bitStream
	choices []byte
	pads    [2][]uint64 // round 1's pads, domain per group
	sigma   []uint64
	sc      [2]scratch
}

// NewPartner answers comparisons against k thresholds per position, on
// the two OT extensions of one session (rcv for round 1, snd for round 2,
// run the other way); seed keys its round-2 masks σ (draw it from a
// cryptographic source).
func NewPartner(rcv *ot.Receiver, snd *ot.Sender, k int, seed [32]byte) (*Partner, error) {
	if err := checkK(k); err != nil {
		return nil, err
	}
	return &Partner{rcv: rcv, snd: snd, k: k, rng: bitStream{rng: rand.NewChaCha8(seed)}}, nil
}

// Choose starts a batch: for its values p (one per position) it writes the
// OT corrections into u (CorrectionsBytes(len(vals))). The batch ends
// with Answer.
func (p *Partner) Choose(vals []uint16, u []byte) {
	m := len(vals)
	if len(u) != CorrectionsBytes(m) {
		panic(fmt.Sprintf("bands: Partner.Choose: %d values, %d correction bytes", m, len(u)))
	}
	p.choices = p.choices[:0]
	for _, v := range vals {
		p.choices = append(p.choices, byte(v>>12), byte(v>>8&15), byte(v>>4&15), byte(v&15))
	}
	for g := range groups(p.k) {
		if cap(p.pads[g]) < digits*m {
			p.pads[g] = make([]uint64, digits*m)
		}
		p.pads[g] = p.pads[g][:digits*m]
		if g == 0 {
			p.rcv.Extend(p.choices, u, p.pads[0])
		} else {
			p.rcv.MorePads(g, p.pads[g])
		}
	}
}

// Answer reads the bank's tables for the batch and writes the answers into
// z (AnswerBytes(k) per position).
func (p *Partner) Answer(tables []byte, z []byte) error {
	k, ab := p.k, AnswerBytes(p.k)
	m := len(p.choices) / digits
	if len(tables) != TablesBytes(k, m) {
		return fmt.Errorf("%w: %d table bytes for %d positions, want %d", ErrMessage, len(tables), m, TablesBytes(k, m))
	}
	if len(z) != m*ab {
		panic(fmt.Sprintf("bands: Partner.Answer: answer buffer of %d bytes for %d positions", len(z), m))
	}
	tb := tableUnits * k
	batch, err := p.snd.Extend(pairs(k)*m, tables[m*tb:])
	if err != nil {
		return err
	}
	if cap(p.sigma) < m {
		p.sigma = make([]uint64, m)
	}
	p.sigma = p.sigma[:m]
	for i := range p.sigma {
		p.sigma[i] = p.rng.take(uint(k))
	}
	half := (m + 1) / 2
	var wg sync.WaitGroup
	for g, r := range [2][2]int{{0, half}, {half, m}} {
		wg.Go(func() { p.answer(batch, tables[:m*tb], z, r[0], r[1], &p.sc[g]) })
	}
	wg.Wait()
	return nil
}

// answerChunk positions are padded together (16 pads a round-2 OT).
const answerChunk = 64

// Masks of the round-2 table word, whose message for the bank's choice
// c = (x₀, y₀, x₁, y₁) (bit 0 first) sits at bits 2c (first threshold of
// the pair) and 2c+1 (second): the messages where x₀ (y₀, x₁, y₁) is 1.
var roundTwoX0, roundTwoY0, roundTwoX1, roundTwoY1 = func() (x0, y0, x1, y1 uint32) {
	for c := range digitValues {
		x0 |= uint32(c&1) << (2 * c)
		y0 |= uint32(c>>1&1) << (2 * c)
		x1 |= uint32(c>>2&1) << (2*c + 1)
		y1 |= uint32(c>>3&1) << (2*c + 1)
	}
	return
}()

func (p *Partner) answer(batch *ot.Batch, tables, z []byte, lo, hi int, sc *scratch) {
	k, ab, np := p.k, AnswerBytes(p.k), pairs(p.k)
	gs := groups(k)
	tb := tableUnits * k
	sc.size(1, answerChunk*np*digitValues)
	pads := sc.pads[0]
	for c := lo; c < hi; c += answerChunk {
		n := min(answerChunk, hi-c)
		batch.PadsN(c*np, (c+n)*np, digitValues, 0, pads[:n*np*digitValues], &sc.ot)
		for i := range n {
			pos := c + i
			var zA, zB, zC uint64
			for g, kg := range gs {
				a, b, cc := p.shares(tables[pos*tb+tableUnits*group*g:], pos, g, uint(kg))
				zA, zB, zC = zA|a<<(group*g), zB|b<<(group*g), zC|cc<<(group*g)
			}
			sigma := p.sigma[pos]
			zi := z[pos*ab : (pos+1)*ab]
			for j := range np {
				bit := func(x uint64, t int) uint32 { return -uint32(x >> (2*j + t) & 1) }
				tab := bit(zB, 0)&roundTwoY0 ^ bit(zC, 0)&roundTwoX0 ^ bit(sigma, 0)&0x55555555 ^
					bit(zB, 1)&roundTwoY1 ^ bit(zC, 1)&roundTwoX1 ^ bit(sigma, 1)&0xaaaaaaaa
				for v, pad := range pads[(i*np+j)*digitValues : (i*np+j+1)*digitValues] {
					tab ^= uint32(pad&3) << (2 * v)
				}
				binary.LittleEndian.PutUint32(zi[4*j:], tab)
			}
			putMsg(zi[4*np:], ab-4*np, zA^zB&zC^sigma)
		}
	}
}

// shares reads, from one position's tables of group g (kg thresholds),
// the four messages the partner chose and returns its shares z_A, z_B,
// z_C of LT_H, EQ_H, LT_L.
func (p *Partner) shares(t []byte, pos, g int, kg uint) (zA, zB, zC uint64) {
	all := uint64(1)<<kg - 1
	var msg [digits]uint64
	o := 0
	for d, w := range [digits]uint{width3 * kg, width2 * kg, width1 * kg, width0 * kg} {
		i := digits*pos + d
		msg[d] = getBits(t[o:o+2*int(w)], uint(p.choices[i])*w, w) ^ p.pads[g][i]&widthMask(w)
		o += 2 * int(w)
	}
	x1A, x1B, x2 := msg[0]&all, msg[0]>>kg&all, msg[0]>>(2*kg)&all
	y1A, y2A, y1B, y2B := msg[1]&all, msg[1]>>kg&all, msg[1]>>(2*kg)&all, msg[1]>>(3*kg)&all
	x1C, x2C := msg[2]&all, msg[2]>>kg&all
	y1C, y2C := msg[3]&all, msg[3]>>kg&all
	return x1A ^ x2&y1A ^ y2A, x1B ^ x2&y1B ^ y2B, x1C ^ x2C&y1C ^ y2C
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
