package fedlearn

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
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
	defer s.recycle(ev)
	return ev.length, ev.cmax, nil
}

// PlaintextHalf returns t/2: every released statistic must stay strictly below it
// in absolute value.
func (s *Session) PlaintextHalf() uint64 { return s.tHalf }

// ColumnFunc fills dst (length L) with the integer plaintext column that
// multiplies encrypted vector a for output j. InnerProductsSum calls it
// concurrently for different (a, j).
type ColumnFunc func(a, j int, dst []int64)

// InnerProductsSum is the fused evaluator kernel: for every output j it
// returns an encryption of Σ_a ⟨vectors[a], col(a, j)⟩ as one LWE ciphertext
// (a Result of nOut statistics). Unlike InnerProducts followed by
// AddResults, the terms are accumulated in the NTT domain and each output
// is re-randomised and extracted once, and no term is ever a separate
// ciphertext. Checks, per output: Σ_a ‖col_{a,j}‖₁·cmax_a < t/2 exactly
// (the sum cannot wrap) and the noise budget of Σ_a ‖col_{a,j}‖₂²
// (ErrOverflow, ErrNoiseBudget).
func (s *Session) InnerProductsSum(vectors [][][]byte, nOut int, col ColumnFunc) ([]byte, error) {
	if s.pk == nil {
		return nil, ErrState
	}
	if len(vectors) == 0 || nOut < 1 || nOut > maxResults {
		return nil, fmt.Errorf("fedlearn: %d vectors × %d outputs out of range", len(vectors), nOut)
	}
	evs := make([]*encVector, len(vectors))
	defer func() { // every exit: the parsed ciphertexts serve the next call
		for _, ev := range evs {
			if ev != nil {
				s.recycle(ev)
			}
		}
	}()
	for a, chunks := range vectors {
		ev, err := s.parseVector(chunks)
		if err != nil {
			return nil, err
		}
		if a > 0 && ev.length != evs[0].length {
			return nil, fmt.Errorf("fedlearn: vectors of lengths %d and %d", evs[0].length, ev.length)
		}
		evs[a] = ev
	}
	length, chunks := evs[0].length, len(evs[0].cts)
	nmod := len(s.moduli)
	lweLen := 8 * nmod * (s.n + 1)
	out := make([]byte, headerLen+4+nOut*lweLen)
	copy(out, magic[:])
	out[4] = msgResult
	putU32(out[headerLen:], uint32(nOut))
	body := out[headerLen+4:]
	errs := make([]error, nOut)
	// Cache blocking as in innerProducts: a worker takes colBlock outputs
	// and streams each term's ciphertext chunks once for all of them.
	blocks := (nOut + colBlock - 1) / colBlock
	parallel(blocks, func(next func() (int, bool)) {
		enc := s.mustZeroEncryptor()
		buf := s.ringQ.NewPoly()
		acc := make([]*rlwe.Ciphertext, colBlock)
		cols := make([][]int64, colBlock)
		for b := range acc {
			acc[b] = rlwe.NewCiphertext(s.params, 1, s.level)
			cols[b] = make([]int64, length)
		}
		for blk, ok := next(); ok; blk, ok = next() {
			j0, j1 := blk*colBlock, min((blk+1)*colBlock, nOut)
			for _, a := range acc {
				for _, p := range a.Value {
					for _, row := range p.Coeffs {
						clear(row)
					}
				}
			}
			sumHi, sumLo := make([]uint64, colBlock), make([]uint64, colBlock)
			l2 := make([]float64, colBlock)
			lazy := make([]int, colBlock)
			for a, ev := range evs {
				t0 := time.Now()
				for j := j0; j < j1; j++ {
					b, c := j-j0, cols[j-j0]
					if errs[j] != nil {
						continue
					}
					col(a, j, c)
					var l1, over uint64
					for _, x := range c {
						var carry uint64
						l1, carry = bits.Add64(l1, absU(x), 0)
						over |= carry
						l2[b] += float64(x) * float64(x)
					}
					hi, lo := bits.Mul64(l1, ev.cmax)
					var carry uint64
					sumLo[b], carry = bits.Add64(sumLo[b], lo, 0)
					sumHi[b] += hi + carry
					if over != 0 || sumHi[b] != 0 || sumLo[b] >= s.tHalf {
						errs[j] = fmt.Errorf("output %d: %w", j, ErrOverflow)
					}
				}
				for k := range chunks {
					for j := j0; j < j1; j++ {
						b := j - j0
						if errs[j] != nil || !s.encodeChunk(cols[b], k, buf) {
							continue
						}
						s.ringQ.MulCoeffsMontgomeryLazyThenAddLazy(ev.cts[k].Value[0], buf, acc[b].Value[0])
						s.ringQ.MulCoeffsMontgomeryLazyThenAddLazy(ev.cts[k].Value[1], buf, acc[b].Value[1])
						if lazy[b]++; lazy[b] == lazyTerms {
							s.ringQ.Reduce(acc[b].Value[0], acc[b].Value[0])
							s.ringQ.Reduce(acc[b].Value[1], acc[b].Value[1])
							lazy[b] = 0
						}
					}
				}
				since(t0, &s.prof.encode)
			}
			t0 := time.Now()
			for j := j0; j < j1; j++ {
				b := j - j0
				if errs[j] != nil {
					continue
				}
				if err := s.CheckNoiseBudget(l2[b]); err != nil {
					errs[j] = fmt.Errorf("output %d: %w", j, err)
					continue
				}
				a := acc[b]
				s.ringQ.Reduce(a.Value[0], a.Value[0])
				s.ringQ.Reduce(a.Value[1], a.Value[1])
				s.ringQ.MForm(a.Value[0], a.Value[0])
				s.ringQ.MForm(a.Value[1], a.Value[1])
				if err := enc.RerandomiseToCoeffs(a); err != nil {
					panic(err)
				}
				s.extractLWE(a, body[j*lweLen:])
			}
			since(t0, &s.prof.reduce)
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
