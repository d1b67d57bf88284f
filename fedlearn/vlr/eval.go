package vlr

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/tandem-dev/tandem/fedlearn"
)

// weightBits is log2 of the scale at which the partner encodes its weights
// u_P^a·2^(e_a−k) (|·| ≤ 1) in the packed kernel: 2^−24 resolution, while
// the noise of the product with a sealed term stays far inside the
// flooding margin (fedlearn chooses the column scales for it).
const weightBits = 24

// termExponents returns the public exponents e_a of the bank's sealed
// terms: z_a = (B_a + i·Λ_a)·2^(−e_a) with |Re z_a|, |Im z_a| ≤ 1 for
// every value the table can produce. They depend on (D, R) only, never on
// data, so they tell the partner nothing.
func termExponents(tab *CondTable) []int {
	e := make([]int, tab.D+1)
	for a := range e {
		re := tab.BMax[a] * 1.01 // B_a = mask·β_a(u_B)
		im := tab.SMax[a] * 1.01 // Λ_a = loss·(λ_a(u_B) − y·[a=1])
		switch a {
		case 0:
			re, im = 1+tab.Error+0.01, 0 // B_0 = mask·(β_0 − y); the loss's a = 0 term stays with the bank
		case 1:
			im++
		}
		e[a] = int(math.Ceil(math.Log2(math.Max(re, im))))
	}
	return e
}

// residualExponent returns k with |u^a·2^(e_a−k)| ≤ 1 for |u| ≤ R and every
// a: the partner's weights are u_P^a·2^(e_a−k), so the combined vector is
// r = Σ_a z_a·u_P^a·2^(e_a−k) = (d + i·ℓ)·2^(−k), d the residual and ℓ the
// loss term of each row.
func residualExponent(exps []int, r float64) int {
	k := math.MinInt
	for a, e := range exps {
		k = max(k, e+int(math.Ceil(float64(a)*math.Log2(r))))
	}
	return k
}

// sealTerms seals the bank's D+1 term vectors into one vlr message (the
// format parseEncVecs reads): vector a is what fill writes into z, already
// divided by 2^exps[a]. The chunk messages are sealed in place in the
// message buffer: at 1e6 rows a step's vectors are ≈ 320 MB, and a copy of
// them from per-chunk buffers cost ≈ 1 CPU-s per epoch, mostly in page
// faults. The message is built in reuse when it is large enough (the
// previous step's message: writing into fresh memory costs its page faults
// again every step).
func sealTerms(s *fedlearn.Session, reuse []byte, step uint32, rows uint64, length int, exps []int, fill func(a int, z []complex128)) ([]byte, error) {
	chunks, size := s.SealedLayout(length)
	z := make([]complex128, length)
	return envelope(reuse, msgBankTerms, step, rows, exps, chunks, size, func(a int, dst [][]byte) error {
		fill(a, z)
		return s.SealPackedInto(z, dst)
	})
}

// publishResidual writes the partner's combined vector into one vlr
// message, re-randomised, with the residual exponent k as its scale.
func publishResidual(s *fedlearn.Session, reuse []byte, step uint32, k int, v *fedlearn.PackedVector) ([]byte, error) {
	chunks, size := s.PackedVectorLayout(v.Len())
	return envelope(reuse, msgResidual, step, 0, []int{k}, chunks, size, func(_ int, dst [][]byte) error {
		return s.PublishPackedInto(v, dst)
	})
}

// envelope lays out len(scales) vectors of chunks × size bytes (in reuse
// if it is large enough) and lets write fill each vector's chunk messages
// in place.
func envelope(reuse []byte, typ byte, step uint32, rows uint64, scales []int, chunks, size int, write func(a int, dst [][]byte) error) ([]byte, error) {
	b := reuse[:0]
	if n := 4 + 1 + 4 + 8 + 1 + len(scales)*(6+chunks*(4+size)); cap(b) < n {
		b = make([]byte, 0, n)
	}
	b = append(b, vlrMagic[:]...)
	b = append(b, typ)
	b = binary.LittleEndian.AppendUint32(b, step)
	b = binary.LittleEndian.AppendUint64(b, rows)
	b = append(b, byte(len(scales)))
	dst := make([][]byte, chunks)
	for a, sc := range scales {
		b = binary.LittleEndian.AppendUint16(b, uint16(int16(sc)))
		b = binary.LittleEndian.AppendUint32(b, uint32(chunks))
		for k := range dst {
			b = binary.LittleEndian.AppendUint32(b, uint32(size))
			dst[k] = b[len(b) : len(b)+size]
			b = b[:len(b)+size]
		}
		if err := write(a, dst); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// packedColumns adapts float feature columns (and the constant columns
// the bank adds) to fedlearn.NewPackedColumns.
func packedColumns(s *fedlearn.Session, length int, x [][]float64, consts ...complex128) (*fedlearn.PackedColumns, error) {
	return s.NewPackedColumns(len(x)+len(consts), length, func(j, lo, hi int, dst []complex128) {
		if j >= len(x) {
			c := consts[j-len(x)]
			for i := range dst {
				dst[i] = c
			}
			return
		}
		for i, v := range x[j][lo:hi] {
			dst[i] = complex(v, 0)
		}
	})
}

// released turns a decrypted real Result into the inner products
// Σ_i Re(x_j,i·(d_i + i·ℓ_i)) (value × unit × 2^k): Σ_i x_j,i·d_i for a real
// column, Σ_i ℓ_i for the column −i.
func released(vals []float64, cols *fedlearn.PackedColumns, k int) []float64 {
	out := make([]float64, len(vals))
	for j, v := range vals {
		out[j] = v * cols.Unit(j) * math.Exp2(float64(k))
	}
	return out
}

// checkStep validates the envelope fields of a peer message for this step.
func checkStep(v encVecs, step, count int) error {
	if v.step != uint32(step) || len(v.chunks) != count {
		return fmt.Errorf("%w: message for step %d with %d vectors, want step %d with %d", ErrMalformed, v.step, len(v.chunks), step, count)
	}
	return nil
}
