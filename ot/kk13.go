package ot

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math/bits"
	"unsafe"
)

// CorrectionBytes is what the Receiver sends per OT: its row u_i.
const CorrectionBytes = CodeBits / 8

// CorrectionsBytes is what the Receiver sends for a batch of m OTs. The
// corrections travel as the matrix's 256 columns of ⌈m/64⌉ words (the
// rows u_i read down the columns), so that neither side transposes them:
// the Receiver forms the columns without its second transpose, the
// Sender applies them to its columns before its only one.
func CorrectionsBytes(m int) int { return (m + 63) / 64 * 64 * CorrectionBytes }

// maxBatch bounds the OTs of one Sender batch (its corrections: 8 GiB).
const maxBatch = 1 << 28

// prgs expands each seed into a column of the extension matrix: AES-CTR
// under the seed, one stream per column kept across batches, so batch k
// uses the next bits of every column on both sides.
type prgs [CodeBits]cipher.Stream

func newPRGs(seed func(j int) []byte) (*prgs, error) {
	var p prgs
	var iv [aes.BlockSize]byte
	for j := range p {
		blk, err := aes.NewCipher(seed(j))
		if err != nil {
			return nil, err
		}
		p[j] = cipher.NewCTR(blk, iv[:])
	}
	return &p, nil
}

// columns fills cols (CodeBits columns of w words) with the next 64·w
// bits of every stream; zero is 8·w zero bytes. On little-endian machines
// the key stream is written straight into the words (the word's bytes in
// stream order, as the portable path reads them).
func (p *prgs) columns(cols []uint64, w int, zero []byte) {
	for j := range p {
		col := cols[j*w : (j+1)*w]
		if littleEndian {
			p[j].XORKeyStream(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(col))), 8*w), zero)
			continue
		}
		buf := make([]byte, 8*w)
		p[j].XORKeyStream(buf, zero)
		for k := range col {
			col[k] = binary.LittleEndian.Uint64(buf[8*k:])
		}
	}
}

// scratch is the per-batch memory of one side.
type scratch struct {
	zero       []byte   // never written
	cols, col2 []uint64 // col2: the Receiver's t' columns
	rows       []row
	bitCols    []uint64 // the Receiver's choices, bit b of each in column b
}

func (s *scratch) size(m int) (w int) {
	w = (m + 63) / 64
	if cap(s.rows) < 64*w {
		s.zero = make([]byte, 8*w)
		s.cols, s.col2 = make([]uint64, CodeBits*w), make([]uint64, CodeBits*w)
		s.rows = make([]row, 64*w)
		s.bitCols = make([]uint64, 9*w)
	}
	s.zero, s.cols, s.col2 = s.zero[:8*w], s.cols[:CodeBits*w], s.col2[:CodeBits*w]
	s.rows, s.bitCols = s.rows[:64*w], s.bitCols[:9*w]
	return w
}

// Receiver is the choosing side of the extension.
type Receiver struct {
	g0, g1 *prgs
	next   uint64 // index of the next OT
	last   int    // OTs of the last Extend, whose rows sc.rows holds
	sc     scratch
	h      hasher
}

func newReceiver(seeds *[CodeBits][2][seedBytes]byte) (*Receiver, error) {
	g0, err := newPRGs(func(j int) []byte { return seeds[j][0][:] })
	if err != nil {
		return nil, err
	}
	g1, err := newPRGs(func(j int) []byte { return seeds[j][1][:] })
	if err != nil {
		return nil, err
	}
	return &Receiver{g0: g0, g1: g1}, nil
}

// Extend runs the next len(choices) OTs: it writes the corrections to
// send into u (CorrectionsBytes) and the pad of each choice into pads.
func (r *Receiver) Extend(choices []byte, u []byte, pads []uint64) {
	m := len(choices)
	if len(u) != CorrectionsBytes(m) || len(pads) != m {
		panic(fmt.Sprintf("ot: Receiver.Extend: %d choices, %d correction bytes, %d pads", m, len(u), len(pads)))
	}
	w := r.sc.size(m)
	t, t2 := r.sc.cols, r.sc.col2
	r.g0.columns(t, w, r.sc.zero)
	r.g1.columns(t2, w, r.sc.zero)
	// u = t ⊕ t' ⊕ C(r) column by column. Bit i of C's column j is the
	// parity of r_i ∧ j: the XOR, over the bits b of j, of the column R_b
	// of the choices' bit b. In Gray-code order each column of C is the
	// one before XOR one R_b.
	bc, c := r.sc.bitCols[:8*w], r.sc.bitCols[8*w:]
	choiceBits(choices, bc, w)
	clear(c)
	for i := range CodeBits {
		j := i ^ i>>1
		if i > 0 {
			rb := bc[bits.TrailingZeros(uint(i))*w:][:w]
			for k := range c {
				c[k] ^= rb[k]
			}
		}
		tj, t2j, uj := t[j*w:(j+1)*w], t2[j*w:(j+1)*w], u[8*j*w:8*(j+1)*w]
		for k := range tj {
			binary.LittleEndian.PutUint64(uj[8*k:], tj[k]^t2j[k]^c[k])
		}
	}
	columnsToRows(t, r.sc.rows) // t_i
	r.h.hashRows(r.next, r.sc.rows[:m], pads)
	r.next += uint64(m)
	r.last = m
}

// choiceBits sets bit i of word k of column b (cols[b·w+k]) to bit b of
// choices[64k+i] (0 past the end): eight bits at a time, each byte's bit
// b moved into one byte by a multiplication (the partial products land on
// distinct bits, so there are no carries).
func choiceBits(choices []byte, cols []uint64, w int) {
	clear(cols)
	var tmp [8]byte
	for o := 0; o < len(choices); o += 8 {
		n := copy(tmp[:], choices[o:])
		clear(tmp[n:])
		x := binary.LittleEndian.Uint64(tmp[:])
		k, sh := o/64, uint(o%64)
		for b := range 8 {
			gathered := (x >> b & 0x0101010101010101) * 0x0102040810204080 >> 56
			cols[b*w+k] |= gathered << sh
		}
	}
}

// Domains is the number of pads an OT has per value: domain d hashes the
// same row with the index i + d·2^60 (indices stay far below 2^60), so a
// message of up to 64·Domains bits takes one independent pad per 64.
const Domains = 4

func checkDomain(d int) {
	if d < 0 || d >= Domains {
		panic(fmt.Sprintf("ot: pad domain %d, want 0…%d", d, Domains-1))
	}
}

// MorePads writes the pads of the last Extend's choices in domain d (the
// pads Extend wrote are domain 0); the Sender's are Batch.PadsN with the
// same domain.
func (r *Receiver) MorePads(d int, pads []uint64) {
	checkDomain(d)
	if len(pads) != r.last {
		panic(fmt.Sprintf("ot: Receiver.MorePads: %d pads for %d OTs", len(pads), r.last))
	}
	r.h.hashRows(r.next-uint64(r.last)+uint64(d)<<60, r.sc.rows[:r.last], pads)
}

// Sender is the side that learns every pad.
type Sender struct {
	s    row
	cs   [Values][4]uint64 // C(v) ∧ s as the hash loads it: low half, then low ⊕ high half
	cs16 [2][16][2]uint64  // C(v) ∧ s of v < 16: low halves, then high halves
	g    *prgs
	next uint64
	sc   scratch
}

func newSender(s row, seeds *[CodeBits][seedBytes]byte) (*Sender, error) {
	g, err := newPRGs(func(j int) []byte { return seeds[j][:] })
	if err != nil {
		return nil, err
	}
	snd := senderTables(s)
	snd.g = g
	return snd, nil
}

// senderTables is a Sender for the secret s with its tables of C(v)∧s,
// without its PRGs.
func senderTables(s row) *Sender {
	snd := &Sender{s: s}
	for v := range snd.cs {
		c := codeword[v].and(s)
		snd.cs[v] = [4]uint64{c[0], c[1], c[0] ^ c[2], c[1] ^ c[3]}
		if v < 16 {
			snd.cs16[0][v], snd.cs16[1][v] = [2]uint64{c[0], c[1]}, [2]uint64{c[2], c[3]}
		}
	}
	return snd
}

// Batch is one extension batch on the Sender's side: its rows q_i, from
// which Pads derives the pads. Pads may run concurrently on disjoint
// ranges; the Batch is valid until the next Extend.
type Batch struct {
	snd   *Sender
	first uint64
	q     []row
}

// Len is the number of OTs of the batch.
func (b *Batch) Len() int { return len(b.q) }

// Extend takes the Receiver's corrections u (CorrectionsBytes(m)) for the
// next m OTs.
func (s *Sender) Extend(m int, u []byte) (*Batch, error) {
	if m < 0 || m > maxBatch {
		return nil, fmt.Errorf("ot: a batch of %d OTs, want 0…%d", m, maxBatch)
	}
	if len(u) != CorrectionsBytes(m) {
		return nil, fmt.Errorf("%w: corrections of %d bytes for %d OTs, want %d", ErrMessage, len(u), m, CorrectionsBytes(m))
	}
	w := s.sc.size(m)
	g := s.sc.cols
	s.g.columns(g, w, s.sc.zero) // g^j = t^j, or t'^j where s_j = 1
	// q^j = g^j ⊕ s_j·u^j = t^j ⊕ s_j·C^j, without a branch on s.
	for j := range CodeBits {
		sj := -(s.s[j/64] >> (j % 64) & 1)
		gj, uj := g[j*w:(j+1)*w], u[8*j*w:8*(j+1)*w]
		for k := range gj {
			gj[k] ^= binary.LittleEndian.Uint64(uj[8*k:]) & sj
		}
	}
	columnsToRows(g, s.sc.rows) // q_i = t_i ⊕ C(r_i)∧s
	b := &Batch{snd: s, first: s.next, q: s.sc.rows[:m]}
	s.next += uint64(m)
	return b, nil
}

// PadsScratch is one goroutine's memory for Batch.Pads and PadsN.
type PadsScratch struct{ h hasher }

// Pads writes the 256 pads of OTs lo…hi−1 of the batch into pads
// (pads[(i−lo)·256 + v] for value v).
func (b *Batch) Pads(lo, hi int, pads []uint64, sc *PadsScratch) {
	if lo < 0 || hi > len(b.q) || lo > hi || len(pads) != (hi-lo)*Values {
		panic(fmt.Sprintf("ot: Batch.Pads(%d, %d) of %d OTs into %d pads", lo, hi, len(b.q), len(pads)))
	}
	b.padsWith(hashBest, lo, hi, pads, sc)
}

// padsWith is Pads with the hash implementation impl; the assembly ones
// do not use sc.
func (b *Batch) padsWith(impl hashImpl, lo, hi int, pads []uint64, sc *PadsScratch) {
	if impl == hashGo {
		b.padsNWith(impl, lo, hi, Values, 0, pads, sc)
		return
	}
	// The assembly forms the rows q ⊕ C(v)∧s itself, one OT per call.
	for i := lo; i < hi; i++ {
		q := &b.q[i]
		qh := [4]uint64{q[0], q[1], q[0] ^ q[2], q[1] ^ q[3]} // x0, mix as in cs
		senderPadsWith(impl, &qh, &b.snd.cs, b.first+uint64(i), (*[Values]uint64)(pads[(i-lo)*Values:]))
	}
}

// PadsN writes the pads of values 0…n−1 of OTs lo…hi−1 in domain d into
// pads (pads[(i−lo)·n + v]): for OTs whose Receiver chooses among the
// first n values only (n a power of two, 2…256), at n hashes an OT
// instead of 256. The code keeps its distance on any subset, so the
// pads are as strong as Pads' (which are PadsN's with n = 256, d = 0).
func (b *Batch) PadsN(lo, hi, n, d int, pads []uint64, sc *PadsScratch) {
	checkDomain(d)
	if lo < 0 || hi > len(b.q) || lo > hi || n < 2 || n > Values || n&(n-1) != 0 || len(pads) != (hi-lo)*n {
		panic(fmt.Sprintf("ot: Batch.PadsN(%d, %d, %d) of %d OTs into %d pads", lo, hi, n, len(b.q), len(pads)))
	}
	b.padsNWith(hashBest, lo, hi, n, d, pads, sc)
}

// padsNBlocks rows are hashed together: enough to keep the AES pipeline
// full, few enough (64 KiB of rows) for the L2 cache.
const padsNBlocks = 2048

func (b *Batch) padsNWith(impl hashImpl, lo, hi, n, d int, pads []uint64, sc *PadsScratch) {
	if impl == hashVAES && n == 16 && b.pads16(lo, hi, d, pads) {
		return
	}
	shift := uint(bits.TrailingZeros(uint(n)))
	per := padsNBlocks / n // OTs a chunk
	h := &sc.h
	h.size(per * n)
	cs := b.snd.cs[:n]
	for c := lo; c < hi; c += per {
		m := min(per, hi-c)
		x, mix := h.x[:2*m*n], h.mix[:2*m*n]
		for i := range m {
			q := &b.q[c+i]
			q0, q1, m0, m1 := q[0], q[1], q[0]^q[2], q[1]^q[3]
			xi, mi := x[2*i*n:2*(i+1)*n], mix[2*i*n:2*(i+1)*n]
			for v := range cs {
				xi[2*v], xi[2*v+1] = q0^cs[v][0], q1^cs[v][1]
				mi[2*v], mi[2*v+1] = m0^cs[v][2], m1^cs[v][3]
			}
		}
		first := b.first + uint64(c) + uint64(d)<<60
		out := pads[(c-lo)*n : (c-lo+m)*n]
		if impl == hashGo {
			h.run(m*n, first, shift, out)
		} else {
			hashBlocksWith(impl, x, mix, first, shift, out)
		}
	}
}
