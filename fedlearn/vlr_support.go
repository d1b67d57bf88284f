package fedlearn

import (
	"fmt"
	"math"
)

// Helpers used by the vertical logistic regression package (fedlearn/vlr).
// They only combine and inspect the public parts of existing messages; they
// add no new decryption capability.

// ResultCount returns the number of LWE ciphertexts (inner products) in a
// Result message, after full validation. Receivers of a Result use it to
// check, before producing a release share, that the Result holds exactly
// the number of statistics the protocol step allows.
func (s *Session) ResultCount(result []byte) (int, error) {
	v, err := s.parseResult(result)
	if err != nil {
		return 0, err
	}
	return v.count, nil
}

// AddResults returns a Result whose k-th LWE ciphertext is the sum (mod Q) of
// the k-th ciphertexts of all inputs, which must hold the same count. The sum
// decrypts to the sum of the plaintexts; the evaluator uses it so that only
// the combined statistic is ever released, never its terms. The caller is
// responsible for the plaintext bound |Σ| < t/2 (checked per term by
// InnerProducts, not for the sum) and for the noise budget of the sum (see
// CheckNoiseBudget).
func (s *Session) AddResults(results ...[]byte) ([]byte, error) {
	if len(results) == 0 {
		return nil, fmt.Errorf("fedlearn: no results to add")
	}
	views := make([]*lweView, len(results))
	for i, r := range results {
		v, err := s.parseResult(r)
		if err != nil {
			return nil, err
		}
		if i > 0 && v.count != views[0].count {
			return nil, fmt.Errorf("fedlearn: results of %d and %d statistics", views[0].count, v.count)
		}
		views[i] = v
	}
	out := append([]byte(nil), results[0]...)
	w := &lweView{msg: out, count: views[0].count, size: views[0].size}
	nmod := len(s.moduli)
	for k := range w.count {
		dst := s.lweAt(w, k)
		for _, v := range views[1:] {
			src := s.lweAt(v, k)
			// b (nmod residues) then a (nmod × N residues), row i mod q_i.
			for i, qi := range s.moduli {
				putU64(dst[8*i:], addMod(getU64(dst[8*i:]), getU64(src[8*i:]), qi))
			}
			for i, qi := range s.moduli {
				off := 8*nmod + 8*s.n*i
				for j := 0; j < s.n; j++ {
					o := off + 8*j
					putU64(dst[o:], addMod(getU64(dst[o:]), getU64(src[o:]), qi))
				}
			}
		}
	}
	return out, nil
}

// CheckNoiseBudget applies the smudging-margin rule of InnerProducts to a
// sum of kernel outputs whose plaintext columns have squared L2 norms adding
// up to l2sq (independent encryptions: variances add). It returns
// ErrNoiseBudget when the sum would leave fewer than MinSmudgeBits bits
// between the flooding noise and the ciphertext-noise bound.
func (s *Session) CheckNoiseBudget(l2sq float64) error {
	maxNoiseLog := float64(s.p.FloodBits - s.p.MinSmudgeBits)
	// + one re-randomisation (fresh encryption of zero) per summed term, bounded
	// generously by adding 64 to the squared norm.
	if math.Log2(noiseTailFactor*freshNoiseStd(s.n)*math.Sqrt(l2sq+64)) > maxNoiseLog {
		return ErrNoiseBudget
	}
	return nil
}

// MaxNoiseL2 returns the largest squared column L2 norm accepted by
// CheckNoiseBudget (for choosing fixed-point scales).
func (s *Session) MaxNoiseL2() float64 {
	maxNoiseLog := float64(s.p.FloodBits - s.p.MinSmudgeBits)
	b := math.Exp2(maxNoiseLog) / (noiseTailFactor * freshNoiseStd(s.n))
	return b*b - 64
}

// VectorInfo validates the chunk messages of one encrypted vector and returns
// its length L and its public bound cmax = max|v_i|.
func (s *Session) VectorInfo(chunks [][]byte) (length int, cmax uint64, err error) {
	ev, err := s.parseVector(chunks)
	if err != nil {
		return 0, 0, err
	}
	return ev.length, ev.cmax, nil
}

// PlaintextHalf returns t/2: every released statistic must stay strictly below it
// in absolute value.
func (s *Session) PlaintextHalf() uint64 { return s.tHalf }
