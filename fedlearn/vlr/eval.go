package vlr

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/tandem-dev/tandem/fedlearn"
)

// colSource fills dst with the float column of term a for output statistic j.
type colSource func(a, j int, dst []float64)

// evaluate is the evaluator side of a gradient step: for every output j it
// computes Enc(Σ_a Σ_i col_{a,j,i}·v_{a,i}) where v_a are the peer's encrypted
// vectors (fixed-point scale 2^scales[a]), summed over a under encryption so
// that only the combined statistic can be released. Fixed point: output j
// gets a private scale 2^S_j; term a's column is rounded at 2^(S_j−scales[a]),
// S_j being the largest exponent with Σ_a ‖ĉol_{a,j}‖₁·cmax_a < t/2 (exact
// integer check after rounding, so the sum cannot wrap) and the noise of the
// sum inside the smudging margin. Returns the Result and the S_j.
func evaluate(s *fedlearn.Session, vecs [][][]byte, scales []int, nOut, length int, col colSource) ([]byte, []int, error) {
	terms := len(vecs)
	cmax := make([]float64, terms)
	cmaxU := make([]uint64, terms)
	for a, cs := range vecs {
		l, c, err := s.VectorInfo(cs)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if l != length {
			return nil, nil, fmt.Errorf("%w: vector length %d, want %d", ErrMalformed, l, length)
		}
		cmax[a], cmaxU[a] = float64(c), c
	}
	// Pass 1: norms.
	buf := make([]float64, length)
	l1 := make([][]float64, terms)
	l2 := make([][]float64, terms)
	amax := make([][]float64, terms)
	for a := range terms {
		l1[a], l2[a], amax[a] = make([]float64, nOut), make([]float64, nOut), make([]float64, nOut)
		for j := range nOut {
			col(a, j, buf)
			var s1, s2, m float64
			for _, x := range buf {
				ax := math.Abs(x)
				s1 += ax
				s2 += x * x
				if ax > m { // not math.Max: no NaN here, and it is a call on amd64
					m = ax
				}
			}
			l1[a][j], l2[a][j], amax[a][j] = s1, s2, m
		}
	}
	tHalf := float64(s.PlaintextHalf())
	noiseMax := s.MaxNoiseL2()
	S := make([]int, nOut)
	for j := range nOut {
		var A, B, C float64
		best := math.Inf(1)
		for a := range terms {
			w := math.Exp2(-float64(scales[a]))
			A += w * l1[a][j] * cmax[a]
			B += cmax[a] * float64(length) / 2
			C += w * w * l2[a][j]
			if amax[a][j] > 0 {
				best = math.Min(best, 61-math.Log2(amax[a][j]*w))
			}
		}
		if A > 0 {
			best = math.Min(best, math.Log2((0.99*tHalf-B)/A))
		}
		if C > 0 {
			best = math.Min(best, 0.5*math.Log2(0.9*noiseMax/C)-0.1)
		}
		if math.IsInf(best, 1) {
			best = 0
		}
		S[j] = int(math.Floor(best))
	}
	// Pass 2: the fused kernel rounds each column at its output's scale,
	// checks the exact L1 bound and noise budget of the sum over terms,
	// and accumulates all terms of an output before one re-randomisation.
	bufs := sync.Pool{New: func() any { b := make([]float64, length); return &b }}
	sum, err := s.InnerProductsSum(vecs, nOut, func(a, j int, dst []int64) {
		pb := bufs.Get().(*[]float64)
		defer bufs.Put(pb)
		fb := *pb
		col(a, j, fb)
		f := math.Exp2(float64(S[j] - scales[a]))
		for i, x := range fb {
			// Round half away from zero: truncate v ± ½. Copysign is a bit
			// operation; a branch on the sign of random data mispredicted
			// half the time and cost 5× as much (0.25 of an epoch's CPU
			// at 1e6 rows). The kernel checks the bounds on the integers.
			v := x * f
			dst[i] = int64(v + math.Copysign(0.5, v))
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return sum, S, nil
}

// sealVectors encrypts len(scales) vectors of the given length into one
// vlr message (the format parseEncVecs reads): vector a is what fill writes into
// vec, rounded at 2^scales[a]. The chunk messages are encrypted in place in
// the message buffer: at 1e6 rows a step's vectors are ≈ 300 MB per side,
// and a copy of them from per-chunk buffers cost ≈ 1 CPU-s per epoch,
// mostly in page faults.
func sealVectors(s *fedlearn.Session, typ byte, step uint32, rows uint64, length int, scales []int, fill func(a int, vec []float64)) ([]byte, error) {
	chunks, size := s.VectorLayout(length)
	b := make([]byte, 0, 4+1+4+8+1+len(scales)*(6+chunks*(4+size)))
	b = append(b, vlrMagic[:]...)
	b = append(b, typ)
	b = binary.LittleEndian.AppendUint32(b, step)
	b = binary.LittleEndian.AppendUint64(b, rows)
	b = append(b, byte(len(scales)))
	vec, ibuf := make([]float64, length), make([]int64, length)
	dst := make([][]byte, chunks)
	for a, sc := range scales {
		fill(a, vec)
		f := math.Exp2(float64(sc))
		for i, x := range vec {
			ibuf[i] = int64(math.Round(x * f))
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(int16(sc)))
		b = binary.LittleEndian.AppendUint32(b, uint32(chunks))
		for k := range dst {
			b = binary.LittleEndian.AppendUint32(b, uint32(size))
			dst[k] = b[len(b) : len(b)+size]
			b = b[:len(b)+size]
		}
		if err := s.EncryptVectorInto(ibuf, dst); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// scaleFor returns the exponent s with bound·2^s ≤ 2^bits (public rule).
func scaleFor(bound float64, bitsBudget int) int {
	if !(bound > 0) {
		return bitsBudget
	}
	return bitsBudget - int(math.Ceil(math.Log2(bound)))
}
