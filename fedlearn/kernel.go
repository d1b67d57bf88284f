package fedlearn

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/ring"
)

var (
	// ErrOverflow is returned by EncryptVector and InnerProducts when an
	// entry or an inner product could reach t/2 in absolute value, i.e. the
	// exact result could wrap modulo t. The caller should split the column
	// into limbs (see PlanNumeric) or rescale it.
	ErrOverflow = errors.New("fedlearn: plaintext bound exceeded (result could wrap mod t)")
	// ErrNoiseBudget is returned by InnerProducts when a column is so large
	// that the release smudging noise would exceed the ciphertext noise by
	// fewer than Params.MinSmudgeBits bits. Split the column into limbs.
	ErrNoiseBudget = errors.New("fedlearn: column too large for the smudging margin")
)

// maxResults bounds the number of inner products in one Result message.
const maxResults = 1 << 14

// phaseTimes accumulates CPU time per protocol phase (summed over workers).
type phaseTimes struct {
	encrypt, encode, multiply, reduce, share, decrypt atomic.Int64
}

func since(t0 time.Time, c *atomic.Int64) { c.Add(int64(time.Since(t0))) }

// InnerProducts is the evaluator kernel (step C1, partner side): for every
// encrypted vector c (given as its chunk messages) and every plaintext column
// x of the same length L it computes an encryption of Σ_i x_i·c_i.
//
// Method: coefficient packing. Chunk k of c encrypts C_k(X) = Σ_j c_{kN+j}X^j;
// the column chunk is encoded as P_k(X) = Σ_j x_{kN+j}X^{-j} (negacyclic), so
// the constant coefficient of Σ_k C_k·P_k is the inner product; no rotation
// keys are needed and noise grows with ‖x‖₂ rather than with t. The
// accumulated ciphertext is re-randomised with a fresh encryption of zero and
// only its constant coefficient is kept, as an LWE ciphertext (a ∈ Z_Q^N,
// b ∈ Z_Q) under the collective key: the other N-1 coefficients (shifted
// correlations of the two parties' data) are never sent.
//
// The output is one Result message holding len(vectors)·len(cols) LWE
// ciphertexts in order [vector][column]. Columns are encoded on the fly
// (streaming, little memory); see EncodeColumns to encode once and reuse.
// Errors: ErrState without the collective key, ErrMalformed for bad chunks
// or lengths, ErrOverflow, ErrNoiseBudget.
func (s *Session) InnerProducts(vectors [][][]byte, cols [][]int64) ([]byte, error) {
	if len(cols) == 0 {
		return nil, fmt.Errorf("fedlearn: no columns")
	}
	norms, err := s.columnNorms(cols)
	if err != nil {
		return nil, err
	}
	src := func(j, k int, buf ring.Poly) (ring.Poly, bool) {
		t0 := time.Now()
		defer since(t0, &s.prof.encode)
		return buf, s.encodeChunk(cols[j], k, buf)
	}
	return s.innerProducts(vectors, len(cols[0]), norms, src)
}

// EncodedColumns are plaintext columns encoded for InnerProductsEncoded:
// NTT-domain polynomials that depend only on the encoding party's data and
// on Params (not on keys), so they can be computed before the peer's
// ciphertexts arrive and reused by every query on the same alignment.
// Memory: 16 bytes per position per column with the default parameters.
// Immutable after creation; safe for concurrent use.
type EncodedColumns struct {
	length int
	norms  []uint64
	polys  [][]*ring.Poly // [column][chunk], nil for an all-zero chunk
}

// EncodeColumns encodes cols (all of the same length) for
// InnerProductsEncoded (step C0', partner side, offline). Errors:
// ErrOverflow, ErrNoiseBudget, or a length error.
func (s *Session) EncodeColumns(cols [][]int64) (*EncodedColumns, error) {
	if len(cols) == 0 || len(cols[0]) == 0 || len(cols[0]) > s.p.MaxLength {
		return nil, fmt.Errorf("fedlearn: no columns or bad length")
	}
	norms, err := s.columnNorms(cols)
	if err != nil {
		return nil, err
	}
	length := len(cols[0])
	chunks := (length + s.n - 1) / s.n
	ec := &EncodedColumns{length: length, norms: norms, polys: make([][]*ring.Poly, len(cols))}
	for j := range ec.polys {
		ec.polys[j] = make([]*ring.Poly, chunks)
	}
	parallel(len(cols)*chunks, func(next func() (int, bool)) {
		for i, ok := next(); ok; i, ok = next() {
			j, k := i/chunks, i%chunks
			p := s.ringQ.NewPoly()
			if s.encodeChunk(cols[j], k, p) {
				ec.polys[j][k] = &p
			}
		}
	})
	return ec, nil
}

// InnerProductsEncoded is InnerProducts with columns encoded beforehand.
func (s *Session) InnerProductsEncoded(vectors [][][]byte, ec *EncodedColumns) ([]byte, error) {
	if ec == nil || len(ec.polys) == 0 {
		return nil, fmt.Errorf("fedlearn: no columns")
	}
	src := func(j, k int, _ ring.Poly) (ring.Poly, bool) {
		if p := ec.polys[j][k]; p != nil {
			return *p, true
		}
		return ring.Poly{}, false
	}
	return s.innerProducts(vectors, ec.length, ec.norms, src)
}

// columnNorms checks the noise bound of every column (which depends only on
// the column) and returns its L1 norm for the overflow check against the
// peer's declared max|c_i|.
func (s *Session) columnNorms(cols [][]int64) ([]uint64, error) {
	maxNoiseLog := float64(s.p.FloodBits - s.p.MinSmudgeBits)
	sigma := freshNoiseStd(s.n)
	norms := make([]uint64, len(cols))
	errs := make([]error, len(cols))
	parallel(len(cols), func(next func() (int, bool)) {
		for j, ok := next(); ok; j, ok = next() {
			col := cols[j]
			if len(col) != len(cols[0]) {
				errs[j] = fmt.Errorf("fedlearn: columns of different lengths")
				continue
			}
			var l1, over uint64
			var l2 float64
			for _, x := range col {
				a := absU(x)
				var carry uint64
				l1, carry = bits.Add64(l1, a, 0)
				over |= carry | a>>62
				l2 += float64(x) * float64(x)
			}
			switch {
			case over != 0:
				errs[j] = ErrOverflow
			case math.Log2(noiseTailFactor*sigma*math.Sqrt(l2+1)) > maxNoiseLog:
				errs[j] = ErrNoiseBudget
			}
			norms[j] = l1
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return norms, nil
}

// encodeChunk writes NTT(P_k) for chunk k of col into buf; it returns false
// (buf untouched) when the chunk is all zero.
func (s *Session) encodeChunk(col []int64, k int, buf ring.Poly) bool {
	x := col[k*s.n : min((k+1)*s.n, len(col))]
	var amax uint64
	for _, xi := range x {
		amax |= absU(xi) // an upper bound of max|x_i| within a factor 2
	}
	if amax == 0 {
		return false
	}
	for i, qi := range s.moduli {
		row := buf.Coeffs[i]
		if len(x) < s.n {
			clear(row)
		}
		row[0] = smallMod(x[0], qi)
		// P_k(X) = x_0 − Σ_{j≥1} x_j·X^(N−j): coefficient N−j holds −x_j.
		tail := row[s.n-len(x)+1:]
		last := len(tail) - 1
		if amax < qi {
			// |x_j| < q: −x_j mod q without a division or a branch.
			for j, v := range x[1:] {
				neg := -v
				tail[last-j] = uint64(neg) + qi&uint64(neg>>63)
			}
		} else {
			for j, v := range x[1:] {
				tail[last-j] = smallMod(-v, qi)
			}
		}
	}
	// P stays out of Montgomery form: products carry a factor R^-1 that one
	// MForm of the accumulator removes at the end. The transform leaves
	// values in [0, q): the only use is MulCoeffsMontgomeryLazyThenAddLazy
	// against a ciphertext (< q), whose reduction needs a product below
	// q·2^64.
	s.toNTT(buf, buf)
	return true
}

func (s *Session) innerProducts(vectors [][][]byte, length int, norms []uint64,
	src func(j, k int, buf ring.Poly) (ring.Poly, bool)) ([]byte, error) {
	if s.pk == nil {
		return nil, ErrState
	}
	ncols := len(norms)
	if len(vectors) == 0 || len(vectors)*ncols > maxResults {
		return nil, fmt.Errorf("fedlearn: %d vectors × %d columns out of range", len(vectors), ncols)
	}
	evs := make([]*encVector, len(vectors))
	for v, chunks := range vectors {
		ev, err := s.parseVector(chunks)
		if err != nil {
			return nil, err
		}
		if ev.length != length {
			return nil, fmt.Errorf("fedlearn: vector length %d, columns have %d", ev.length, length)
		}
		evs[v] = ev
	}
	for _, l1 := range norms {
		for _, ev := range evs {
			hi, lo := bits.Mul64(l1, ev.cmax)
			if hi != 0 || lo >= s.tHalf {
				return nil, ErrOverflow
			}
		}
	}

	nmod := len(s.moduli)
	lweLen := 8 * nmod * (s.n + 1)
	out := make([]byte, headerLen+4+len(evs)*ncols*lweLen)
	copy(out, magic[:])
	out[4] = msgResult
	putU32(out[headerLen:], uint32(len(evs)*ncols))
	body := out[headerLen+4:]
	chunks := len(evs[0].cts)

	// Cache blocking: a worker takes colBlock columns at a time and walks
	// the chunks once for the whole block, so each ciphertext chunk is read
	// from memory once per block instead of once per column (the
	// accumulators of a block, colBlock·vectors·2 polynomials, stay in L2).
	blocks := (ncols + colBlock - 1) / colBlock
	parallel(blocks, func(next func() (int, bool)) {
		enc := s.mustZeroEncryptor()
		buf := s.ringQ.NewPoly()
		acc := make([][]*rlwe.Ciphertext, colBlock)
		for b := range acc {
			acc[b] = make([]*rlwe.Ciphertext, len(evs))
			for v := range acc[b] {
				acc[b][v] = rlwe.NewCiphertext(s.params, 1, s.level)
			}
		}
		for blk, ok := next(); ok; blk, ok = next() {
			j0, j1 := blk*colBlock, min((blk+1)*colBlock, ncols)
			for _, av := range acc {
				for _, a := range av {
					for _, p := range a.Value {
						for _, row := range p.Coeffs {
							clear(row)
						}
					}
				}
			}
			lazy := make([]int, colBlock)
			for k := range chunks {
				for j := j0; j < j1; j++ {
					pt, ok := src(j, k, buf)
					if !ok {
						continue
					}
					t1 := time.Now()
					for v, ev := range evs {
						a := acc[j-j0][v]
						s.ringQ.MulCoeffsMontgomeryLazyThenAddLazy(ev.cts[k].Value[0], pt, a.Value[0])
						s.ringQ.MulCoeffsMontgomeryLazyThenAddLazy(ev.cts[k].Value[1], pt, a.Value[1])
					}
					// Lazy terms are < 2q; reduce before they could overflow.
					if lazy[j-j0]++; lazy[j-j0] == lazyTerms {
						for _, a := range acc[j-j0] {
							s.ringQ.Reduce(a.Value[0], a.Value[0])
							s.ringQ.Reduce(a.Value[1], a.Value[1])
						}
						lazy[j-j0] = 0
					}
					since(t1, &s.prof.multiply)
				}
			}
			t0 := time.Now()
			for j := j0; j < j1; j++ {
				for v := range evs {
					a := acc[j-j0][v]
					s.ringQ.Reduce(a.Value[0], a.Value[0])
					s.ringQ.Reduce(a.Value[1], a.Value[1])
					s.ringQ.MForm(a.Value[0], a.Value[0])
					s.ringQ.MForm(a.Value[1], a.Value[1])
					if err := enc.RerandomiseToCoeffs(a); err != nil {
						panic(err)
					}
					dst := body[(v*ncols+j)*lweLen:]
					s.extractLWE(a, dst)
				}
			}
			since(t0, &s.prof.reduce)
		}
	})
	return out, nil
}

// colBlock is the number of columns a worker accumulates together.
const colBlock = 8

// lazyTerms is the number of lazy products accumulated between reductions:
// with q < 2^60 (Params allows primes up to 60 bits), a reduced value plus
// lazyTerms terms < 2q is below 15q < 2^64.
const lazyTerms = 7

// smallMod returns x mod q in [0, q), without a division when |x| < q.
func smallMod(x int64, q uint64) uint64 {
	if x >= 0 {
		if uint64(x) < q {
			return uint64(x)
		}
		return uint64(x) % q
	}
	a := absU(x)
	if a < q {
		return q - a
	}
	return signedMod(x, q)
}

// extractLWE writes the LWE ciphertext of the constant coefficient of ct
// (coefficient domain): b = c0[0], a = (c1[0], -c1[N-1], …, -c1[1]), so that
// b + Σ_j a_j·s_j = (c0 + c1·s)[0].
func (s *Session) extractLWE(ct *rlwe.Ciphertext, dst []byte) {
	off := 0
	for i := range s.moduli {
		putU64(dst[off:], ct.Value[0].Coeffs[i][0])
		off += 8
	}
	for i, qi := range s.moduli {
		c1 := ct.Value[1].Coeffs[i]
		putU64(dst[off:], c1[0])
		off += 8
		for j := 1; j < s.n; j++ {
			v := c1[s.n-j]
			if v != 0 {
				v = qi - v
			}
			putU64(dst[off:], v)
			off += 8
		}
	}
}
