package ot

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
)

// CorrectionBytes is what the Receiver sends per OT: its row u_i.
const CorrectionBytes = CodeBits / 8

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
// bits of every stream; buf is scratch of 8·w bytes.
func (p *prgs) columns(cols []uint64, w int, buf []byte) {
	for j := range p {
		clear(buf)
		p[j].XORKeyStream(buf, buf)
		for k := range w {
			cols[j*w+k] = binary.LittleEndian.Uint64(buf[8*k:])
		}
	}
}

// scratch is the per-batch memory of one side.
type scratch struct {
	buf        []byte
	cols, col2 []uint64
	rows, row2 []row
}

func (s *scratch) size(m int) (w int) {
	w = (m + 63) / 64
	if cap(s.rows) < 64*w {
		s.buf = make([]byte, 8*w)
		s.cols, s.col2 = make([]uint64, CodeBits*w), make([]uint64, CodeBits*w)
		s.rows, s.row2 = make([]row, 64*w), make([]row, 64*w)
	}
	s.buf, s.cols, s.col2 = s.buf[:8*w], s.cols[:CodeBits*w], s.col2[:CodeBits*w]
	s.rows, s.row2 = s.rows[:64*w], s.row2[:64*w]
	return w
}

// Receiver is the choosing side of the extension.
type Receiver struct {
	g0, g1 *prgs
	next   uint64 // index of the next OT
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
// send into u (CorrectionBytes per OT) and the pad of each choice into
// pads.
func (r *Receiver) Extend(choices []byte, u []byte, pads []uint64) {
	m := len(choices)
	if len(u) != m*CorrectionBytes || len(pads) != m {
		panic(fmt.Sprintf("ot: Receiver.Extend: %d choices, %d correction bytes, %d pads", m, len(u), len(pads)))
	}
	w := r.sc.size(m)
	r.g0.columns(r.sc.cols, w, r.sc.buf)
	r.g1.columns(r.sc.col2, w, r.sc.buf)
	for k, c := range r.sc.cols {
		r.sc.col2[k] ^= c
	}
	columnsToRows(r.sc.cols, r.sc.rows) // t_i
	columnsToRows(r.sc.col2, r.sc.row2) // t_i ⊕ t'_i
	for i, c := range choices {
		ui := r.sc.row2[i].xor(codeword[c])
		for k, x := range ui {
			binary.LittleEndian.PutUint64(u[i*CorrectionBytes+8*k:], x)
		}
	}
	r.h.hashRows(r.next, r.sc.rows[:m], pads)
	r.next += uint64(m)
}

// Sender is the side that learns every pad.
type Sender struct {
	s    row
	cs   [Values][4]uint64 // C(v) ∧ s as the hash loads it: low half, then low ⊕ high half
	g    *prgs
	next uint64
	sc   scratch
}

func newSender(s row, seeds *[CodeBits][seedBytes]byte) (*Sender, error) {
	g, err := newPRGs(func(j int) []byte { return seeds[j][:] })
	if err != nil {
		return nil, err
	}
	snd := &Sender{s: s, g: g}
	for v := range snd.cs {
		c := codeword[v].and(s)
		snd.cs[v] = [4]uint64{c[0], c[1], c[0] ^ c[2], c[1] ^ c[3]}
	}
	return snd, nil
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

// Extend takes the Receiver's corrections for the next OTs
// (CorrectionBytes each).
func (s *Sender) Extend(u []byte) (*Batch, error) {
	if len(u)%CorrectionBytes != 0 {
		return nil, fmt.Errorf("%w: corrections of %d bytes, not a multiple of %d", ErrMessage, len(u), CorrectionBytes)
	}
	m := len(u) / CorrectionBytes
	w := s.sc.size(m)
	s.g.columns(s.sc.cols, w, s.sc.buf)
	columnsToRows(s.sc.cols, s.sc.rows) // g_i = t_i ⊕ s∧(t_i ⊕ t'_i)
	q := s.sc.rows[:m]
	for i := range q {
		var ui row
		for k := range ui {
			ui[k] = binary.LittleEndian.Uint64(u[i*CorrectionBytes+8*k:])
		}
		q[i] = q[i].xor(ui.and(s.s)) // = t_i ⊕ C(r_i)∧s
	}
	b := &Batch{snd: s, first: s.next, q: q}
	s.next += uint64(m)
	return b, nil
}

// PadsScratch is one goroutine's memory for Batch.Pads.
type PadsScratch struct{ h hasher }

// padsChunk OTs are hashed together: 2048 blocks per π layer, enough to
// keep the AES pipeline full and small enough for the L1/L2 caches.
const padsChunk = 8

// Pads writes the 256 pads of OTs lo…hi−1 of the batch into pads
// (pads[(i−lo)·256 + v] for value v).
func (b *Batch) Pads(lo, hi int, pads []uint64, sc *PadsScratch) {
	if lo < 0 || hi > len(b.q) || lo > hi || len(pads) != (hi-lo)*Values {
		panic(fmt.Sprintf("ot: Batch.Pads(%d, %d) of %d OTs into %d pads", lo, hi, len(b.q), len(pads)))
	}
	b.padsWith(hashBest, lo, hi, pads, sc)
}

// padsWith is Pads with the hash implementation impl; only the portable
// one (hashGo) uses sc.
func (b *Batch) padsWith(impl hashImpl, lo, hi int, pads []uint64, sc *PadsScratch) {
	if impl != hashGo {
		// The assembly forms the rows q ⊕ C(v)∧s itself, one OT per call.
		for i := lo; i < hi; i++ {
			q := &b.q[i]
			qh := [4]uint64{q[0], q[1], q[0] ^ q[2], q[1] ^ q[3]} // x0, mix as in cs
			senderPadsWith(impl, &qh, &b.snd.cs, b.first+uint64(i), (*[Values]uint64)(pads[(i-lo)*Values:]))
		}
		return
	}
	h := &sc.h
	h.size(padsChunk * Values)
	for c := lo; c < hi; c += padsChunk {
		n := min(padsChunk, hi-c)
		x, mix := h.x[:2*n*Values], h.mix[:2*n*Values]
		for i := range n {
			q := b.q[c+i]
			q0, q1, m0, m1 := q[0], q[1], q[0]^q[2], q[1]^q[3]
			xi, mi := x[2*i*Values:2*(i+1)*Values], mix[2*i*Values:2*(i+1)*Values]
			for v, cs := range &b.snd.cs {
				xi[2*v], xi[2*v+1] = q0^cs[0], q1^cs[1]
				mi[2*v], mi[2*v+1] = m0^cs[2], m1^cs[3]
			}
		}
		h.run(n*Values, b.first+uint64(c), 8, pads[(c-lo)*Values:(c-lo+n)*Values])
	}
}
