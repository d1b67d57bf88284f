package vlr

import (
	"fmt"
	"math"
	"math/bits"

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
			for _, x := range buf {
				ax := math.Abs(x)
				l1[a][j] += ax
				l2[a][j] += x * x
				amax[a][j] = math.Max(amax[a][j], ax)
			}
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
	// Pass 2: integer columns per term, kernel, exact checks, sum.
	results := make([][]byte, terms)
	exactL1 := make([][]uint64, nOut)
	exactL2 := make([]float64, nOut)
	for j := range exactL1 {
		exactL1[j] = make([]uint64, terms)
	}
	for a := range terms {
		cols := make([][]int64, nOut)
		for j := range nOut {
			col(a, j, buf)
			f := math.Exp2(float64(S[j] - scales[a]))
			c := make([]int64, length)
			var n1 uint64
			for i, x := range buf {
				v := int64(math.Round(x * f))
				c[i] = v
				if v < 0 {
					n1 += uint64(-v)
				} else {
					n1 += uint64(v)
				}
				exactL2[j] += float64(v) * float64(v)
			}
			exactL1[j][a] = n1
			cols[j] = c
		}
		r, err := s.InnerProducts([][][]byte{vecs[a]}, cols)
		if err != nil {
			return nil, nil, err
		}
		results[a] = r
	}
	for j := range nOut {
		var hi, lo uint64
		for a := range terms {
			h, l := bits.Mul64(exactL1[j][a], cmaxU[a])
			var c uint64
			lo, c = bits.Add64(lo, l, 0)
			hi += h + c
		}
		if hi != 0 || lo >= s.PlaintextHalf() {
			return nil, nil, fmt.Errorf("output %d: %w", j, fedlearn.ErrOverflow)
		}
		if err := s.CheckNoiseBudget(exactL2[j]); err != nil {
			return nil, nil, fmt.Errorf("output %d: %w", j, err)
		}
	}
	sum, err := s.AddResults(results...)
	if err != nil {
		return nil, nil, err
	}
	return sum, S, nil
}

// encryptScaled rounds v·2^scale and encrypts it.
func encryptScaled(s *fedlearn.Session, v []float64, scale int, ibuf []int64) ([][]byte, error) {
	f := math.Exp2(float64(scale))
	for i, x := range v {
		ibuf[i] = int64(math.Round(x * f))
	}
	return s.EncryptVector(ibuf)
}

// scaleFor returns the exponent s with bound·2^s ≤ 2^bits (public rule).
func scaleFor(bound float64, bitsBudget int) int {
	if !(bound > 0) {
		return bitsBudget
	}
	return bitsBudget - int(math.Ceil(math.Log2(bound)))
}
