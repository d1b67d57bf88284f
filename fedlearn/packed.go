package fedlearn

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"time"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/ring"
)

// The packed kernel: real-valued slot arithmetic for the training steps of
// fedlearn/vlr (DESIGN §4), N/2 positions per ciphertext.
//
//  1. The bank seals complex vectors z_a (|Re|, |Im| ≤ 1) under its OWN
//     key share s_B: c0 = −a·s_B + e + Δ_E·m(z_a), with a expanded from a
//     32-byte seed sent instead of a (half the bytes of a public-key
//     ciphertext, and no ternary mask or second error to sample).
//  2. The partner turns them into ciphertexts under the collective key
//     s = s_B + s_P by subtracting a·s_P (it knows s_P; the result is an
//     RLWE sample under s_B, which it cannot open), multiplies each by its
//     plaintext weights w_a (|w_a| ≤ 1, scale Δ_1) slot-wise, sums over a,
//     and re-randomises: Enc(r) with r = Σ_a z_a ⊙ w_a.
//  3. Each party multiplies Enc(r) by its static, encoded feature columns
//     and extracts the constant coefficient, (2/N)·Σ_l Re(x_l·r_l) (see
//     realEncoder): one LWE ciphertext per output, released like the
//     exact kernel's with a flooded share, and decrypted to a real number.
//
// Compared with the exact (BFV, coefficient-packed) kernel that training
// used before, where every product column x_j⊙u_P^a changed each step and
// needed its own encoding, nothing is encoded per step here except the
// partner's weight vectors, and the feature columns once per job. The
// price: results are approximate. A released value is off by the
// flooding (uniform, below 2^84 before its scale) plus the rounding of the
// encodings, which gradient descent tolerates: on a gradient, ≈ 4e-5 at
// 1700 rows a step and ≈ 4e-6 at 5e5 (the error shrinks as 1/√rows).
const (
	msgSealedPacked byte = 7 // bank → partner: seed + c0 under s_B
	msgPackedVector byte = 8 // partner → bank: (c0, c1) under s
	msgResultReal   byte = 9 // Result of the packed kernel

	// PackedSealBits is log2 Δ_E, the scale of sealed vectors.
	PackedSealBits = 58
	// realFloodBits is the flooding of release shares of real Results:
	// the packed kernel keeps the ciphertext noise MinSmudgeBits below it
	// and the signal below Q/2 with it.
	realFloodBits = 84
	// packedCacheBytes bounds the memory of encoded feature columns kept
	// across steps; beyond it they are encoded at every use.
	packedCacheBytes = 4 << 30
)

// PackedRows returns the number of positions per packed ciphertext (N/2).
func (s *Session) PackedRows() int { return s.n / 2 }

func (s *Session) packedChunks(length int) int { return (length + s.n/2 - 1) / (s.n / 2) }

// encoder returns the session's packed encoder (read-only tables, built once).
func (s *Session) encoder() *realEncoder {
	s.encOnce.Do(func() { s.enc = newRealEncoder(s.n) })
	return s.enc
}

// SealedLayout returns the chunk count and per-chunk message size of a
// sealed vector of the given length.
func (s *Session) SealedLayout(length int) (chunks, size int) {
	return s.packedChunks(length), headerLen + 16 + 32 + 8*s.n*len(s.moduli)
}

// SealPackedInto seals z (|Re z_i|, |Im z_i| ≤ 1) under this party's key
// share at scale 2^PackedSealBits, chunk k into dst[k] (sizes from
// SealedLayout). Only the bank seals: the partner turns the chunks into
// collective-key ciphertexts with CombinePacked.
func (s *Session) SealPackedInto(z []complex128, dst [][]byte) error {
	if s.role != Bank {
		return ErrRole
	}
	if len(z) == 0 || len(z) > s.p.MaxLength {
		return fmt.Errorf("fedlearn: vector length %d out of range", len(z))
	}
	chunks, size := s.SealedLayout(len(z))
	if err := checkChunkBuffers(dst, chunks, size); err != nil {
		return err
	}
	for _, v := range z {
		if !(math.Abs(real(v)) <= 1 && math.Abs(imag(v)) <= 1) { // NaN fails too
			return ErrOverflow
		}
	}
	t0 := time.Now()
	defer since(t0, &s.prof.encrypt)
	m, delta := s.n/2, math.Exp2(PackedSealBits)
	return s.packedParallel(chunks, func(w *packedWorker, next func() (int, bool)) error {
		for k, ok := next(); ok; k, ok = next() {
			var seed [32]byte
			w.z.prng.Read(seed[:]) // the worker's CSPRNG stream: a is public, only fresh
			peak := w.enc.encode(z[k*m:min((k+1)*m, len(z))], delta, w.cbuf, w.ibuf)
			w.addError()
			w.toPoly(peak + cbdK) // Δ·m(z) + e, coefficient domain
			s.toNTT(w.pt, w.pt)
			expandSeed(s.moduli, seed, w.a, w.seedBuf)
			s.ringQ.MulCoeffsMontgomery(w.a, s.sk.Value.Q, w.tmp)
			s.ringQ.Sub(w.pt, w.tmp, w.pt) // c0 = e + Δm − a·s_B
			b := dst[k][:0:size]
			b = putHeader(b, msgSealedPacked)
			b = appendU32(b, uint32(k))
			b = appendU32(b, uint32(chunks))
			b = appendU64(b, uint64(len(z)))
			b = append(b, seed[:]...)
			b = appendResidues(b, w.pt.Coeffs)
			if len(b) != size || &b[0] != &dst[k][0] {
				panic("fedlearn: sealed chunk size differs from SealedLayout")
			}
		}
		return nil
	})
}

// packedParallel runs work on parallel workers, each with its own
// packedWorker, and returns the first error any of them met.
func (s *Session) packedParallel(n int, work func(w *packedWorker, next func() (int, bool)) error) error {
	var mu sync.Mutex
	var failed error
	parallel(n, func(next func() (int, bool)) {
		w, err := s.newPackedWorker()
		if err == nil {
			err = work(w, next)
		}
		if err != nil {
			mu.Lock()
			if failed == nil {
				failed = err
			}
			mu.Unlock()
		}
	})
	return failed
}

// expandSeed writes the uniform polynomial a of a sealed chunk (read as NTT
// domain) from its seed: the AES-256-CTR keystream, 8 bytes per residue
// masked to the prime's bit length and rejected at or above the prime
// (rejection sampling: exactly uniform). buf is scratch space. Not
// lattigo's UniformSampler: the same method with a byte-at-a-time buffer,
// which cost twice the AES itself.
func expandSeed(moduli []uint64, seed [32]byte, a ring.Poly, buf []byte) {
	block, err := aes.NewCipher(seed[:])
	if err != nil {
		panic(err) // 32-byte key
	}
	stream := cipher.NewCTR(block, make([]byte, aes.BlockSize))
	for i, q := range moduli {
		mask := uint64(1)<<bits.Len64(q) - 1
		row := a.Coeffs[i]
		j := 0
		if littleEndian && len(buf) == 8*len(row) {
			// The first block of keystream straight into the row, kept
			// values moved down in place: the same values as the loop
			// below, without the copy out of buf.
			rb := wordBytes(row)
			clear(rb)
			stream.XORKeyStream(rb, rb)
			for _, v := range row {
				if v &= mask; v < q {
					row[j] = v
					j++
				}
			}
		}
		for j < len(row) {
			clear(buf)
			stream.XORKeyStream(buf, buf)
			for b := buf; len(b) >= 8 && j < len(row); b = b[8:] {
				if v := binary.LittleEndian.Uint64(b) & mask; v < q {
					row[j] = v
					j++
				}
			}
		}
	}
}

// packedWorker is one goroutine's scratch space.
type packedWorker struct {
	s          *Session
	z          *zeroEncryptor
	enc        *realEncoder
	cbuf       []complex128
	ibuf       []int64
	pt, a, tmp ring.Poly
	seedBuf    []byte
}

func (s *Session) newPackedWorker() (*packedWorker, error) {
	z, err := s.newZeroEncryptor()
	if err != nil {
		return nil, err
	}
	return &packedWorker{s: s, z: z, enc: s.encoder(), cbuf: make([]complex128, s.n/2), ibuf: make([]int64, s.n),
		pt: s.ringQ.NewPoly(), a: s.ringQ.NewPoly(), tmp: s.ringQ.NewPoly(), seedBuf: make([]byte, 8*s.n)}, nil
}

// encodeComplex and encodeReal leave round(Δ·m(values)) in w.pt,
// coefficient domain.
func (w *packedWorker) encodeComplex(v []complex128, delta float64) {
	w.toPoly(w.enc.encode(v, delta, w.cbuf, w.ibuf))
}

func (w *packedWorker) encodeReal(v []float64, delta float64) {
	w.toPoly(w.enc.encodeReal(v, delta, w.cbuf, w.ibuf))
}

// addError adds a fresh error (cbd) to every coefficient of w.ibuf.
func (w *packedWorker) addError() {
	cbd(w.z.prng, w.seedBuf, w.z.evals)
	for j, e := range w.z.evals {
		w.ibuf[j] += int64(e)
	}
}

// toPoly reduces the signed coefficients in w.ibuf (all of magnitude at
// most peak) into w.pt. With peak below the prime (always, for the default
// 60-bit primes and the scales of this file) x mod q is x + (q if x < 0),
// branch-free: a branch on the sign of an FFT output mispredicts half the
// time.
func (w *packedWorker) toPoly(peak uint64) {
	for i, qi := range w.s.moduli {
		row := w.pt.Coeffs[i][:len(w.ibuf)]
		if peak >= qi {
			for j, x := range w.ibuf {
				row[j] = smallMod(x, qi)
			}
			continue
		}
		for j, x := range w.ibuf {
			row[j] = uint64(x) + qi&uint64(x>>63)
		}
	}
}

// PackedVector is an encrypted packed vector under the collective key
// with what the evaluator needs to bound it: the slot values are
// r_l·2^LogScale with |r_l| ≤ bound, and for any plaintext polynomial m
// the constant coefficient of noise·m has standard deviation at most
// noise·‖m‖₂.
type PackedVector struct {
	length    int
	logScale  int
	logWeight int
	terms     int
	bound     float64
	noise     float64
	cts       []*rlwe.Ciphertext // NTT domain
}

// Len returns the vector length.
func (v *PackedVector) Len() int { return v.length }

// Terms returns the number of sealed vectors combined into v.
func (v *PackedVector) Terms() int { return v.terms }

// packedNoise is the noise factor of Σ_a Enc(z_a) ⊙ w_a with fresh errors
// of deviation errSigma and |w_a(ρ)| ≤ 2^logWeight + N/2 at every root
// (the weight plus its rounding, ≤ ‖round error‖₁), plus one public-key
// re-randomisation: by Parseval, ‖e·m_w·m_x‖₂ ≤ max|m_w(ρ)|·‖e·m_x‖₂.
func (s *Session) packedNoise(terms, logWeight int) float64 {
	w := math.Exp2(float64(logWeight)) + float64(s.n)/2
	f := freshNoiseStd(s.n)
	return math.Sqrt(float64(terms)*errSigma*errSigma*w*w + f*f)
}

// packedBound bounds |Σ_a z̃_a·w̃_a| at every slot: |z_a| ≤ √2 (the seal
// scale makes its rounding negligible) and |w̃_a| ≤ 1 + N/2^(logWeight+1),
// the weight plus its rounding error (‖round error‖₁ ≤ N/2).
func (s *Session) packedBound(terms, logWeight int) float64 {
	return math.Sqrt2 * float64(terms) * (1 + float64(s.n)/math.Exp2(float64(logWeight+1)))
}

// sealedChunk is a validated sealed chunk header; body holds c0.
type sealedChunk struct {
	seed [32]byte
	body []byte
}

// parseSealed validates the chunk headers of one sealed vector (peer
// input) and returns its length; the residues are range-checked when read.
func (s *Session) parseSealed(chunks [][]byte) (int, []sealedChunk, error) {
	if len(chunks) == 0 || len(chunks) > s.packedChunks(s.p.MaxLength) {
		return 0, nil, ErrMalformed
	}
	out := make([]sealedChunk, len(chunks))
	length := 0
	for k, msg := range chunks {
		body, err := checkHeader(msg, msgSealedPacked)
		if err != nil {
			return 0, nil, err
		}
		r := reader{b: body}
		idx, total, l := r.u32(), r.u32(), r.u64()
		seed := r.take(32)
		if r.err || int(idx) != k || int(total) != len(chunks) || l == 0 || l > uint64(s.p.MaxLength) ||
			s.packedChunks(int(l)) != len(chunks) || (k > 0 && int(l) != length) || len(r.b) != 8*s.n*len(s.moduli) {
			return 0, nil, ErrMalformed
		}
		length = int(l)
		out[k] = sealedChunk{seed: [32]byte(seed), body: r.b}
	}
	return length, out, nil
}

// CombinePacked is step 2 of the packed kernel, partner side: for the
// bank's sealed vectors z_a it returns Enc(Σ_a z_a ⊙ w_a) under the
// collective key, where weight(a, lo, hi, dst) writes w_a at positions
// [lo, hi) (|w_a| ≤ 1), encoded at scale 2^logWeight. The result is not
// re-randomised: PublishPackedInto does that before it leaves.
func (s *Session) CombinePacked(vectors [][][]byte, logWeight int, weight func(a, lo, hi int, dst []float64)) (*PackedVector, error) {
	if s.role != Partner {
		return nil, ErrRole
	}
	if s.pk == nil {
		return nil, ErrState
	}
	if len(vectors) == 0 || len(vectors) > maxPackedTerms || logWeight < 8 || logWeight > 40 {
		return nil, fmt.Errorf("fedlearn: %d vectors at weight scale 2^%d out of range", len(vectors), logWeight)
	}
	sealed := make([][]sealedChunk, len(vectors))
	length := 0
	for a, cs := range vectors {
		l, sc, err := s.parseSealed(cs)
		if err != nil {
			return nil, err
		}
		if a > 0 && l != length {
			return nil, fmt.Errorf("%w: sealed vectors of lengths %d and %d", ErrMalformed, length, l)
		}
		length, sealed[a] = l, sc
	}
	t0 := time.Now()
	defer since(t0, &s.prof.multiply)
	chunks, m := len(sealed[0]), s.n/2
	v := &PackedVector{length: length, logScale: PackedSealBits + logWeight, logWeight: logWeight, terms: len(vectors),
		bound: s.packedBound(len(vectors), logWeight), noise: s.packedNoise(len(vectors), logWeight),
		cts: make([]*rlwe.Ciphertext, chunks)}
	delta := math.Exp2(float64(logWeight))
	for k := range v.cts {
		v.cts[k] = s.newCiphertext()
	}
	err := s.packedParallel(chunks, func(w *packedWorker, next func() (int, bool)) error {
		wv := make([]float64, m)
		c0 := s.ringQ.NewPoly()
		for k, ok := next(); ok; k, ok = next() {
			lo, hi := k*m, min((k+1)*m, length)
			ct := v.cts[k]
			for _, p := range ct.Value {
				for _, row := range p.Coeffs {
					clear(row)
				}
			}
			lazy := 0
			for a := range sealed {
				weight(a, lo, hi, wv[:hi-lo])
				for _, x := range wv[:hi-lo] {
					if !(math.Abs(x) <= 1) {
						return ErrOverflow
					}
				}
				if c, ok := constant(wv[:hi-lo]); ok && hi-lo == m {
					// A constant weight (u^0) is the constant polynomial,
					// whose NTT is that constant everywhere: no transform.
					x := int64(math.Round(c * delta))
					for i, qi := range s.moduli {
						row, r := w.pt.Coeffs[i], smallMod(x, qi)
						for j := range row {
							row[j] = r
						}
					}
				} else {
					w.encodeReal(wv[:hi-lo], delta)
					s.toNTT(w.pt, w.pt)
				}
				r := reader{b: sealed[a][k].body}
				if r.residues(s.moduli, s.n, c0.Coeffs); r.err {
					return ErrMalformed
				}
				expandSeed(s.moduli, sealed[a][k].seed, w.a, w.seedBuf)
				s.macPair(c0, w.a, w.pt, ct.Value[0], ct.Value[1])
				if lazy++; lazy == lazyTerms {
					s.ringQ.Reduce(ct.Value[0], ct.Value[0])
					s.ringQ.Reduce(ct.Value[1], ct.Value[1])
					lazy = 0
				}
			}
			s.ringQ.Reduce(ct.Value[0], ct.Value[0])
			s.ringQ.Reduce(ct.Value[1], ct.Value[1])
			// Key conversion: (Σc0·w − (Σa·w)·s_P, Σa·w) decrypts under
			// s_B + s_P to what (Σc0·w, Σa·w) decrypts to under s_B.
			// Every term carries the Montgomery factor R⁻¹ (s_P is stored
			// times R), removed by MForm.
			s.ringQ.MulCoeffsMontgomery(ct.Value[1], s.sk.Value.Q, w.tmp)
			s.ringQ.Sub(ct.Value[0], w.tmp, ct.Value[0])
			s.ringQ.MForm(ct.Value[0], ct.Value[0])
			s.ringQ.MForm(ct.Value[1], ct.Value[1])
			ct.IsNTT = true
		}
		return nil
	})
	if err != nil {
		s.RecyclePacked(v)
		return nil, err
	}
	return v, nil
}

// RecyclePacked hands v's ciphertexts back to the session for the next
// CombinePacked or ParsePackedVector (a training step makes ≈ 64 MB of
// them at 1e6 rows, and fresh memory costs its page faults every step).
// v must not be used afterwards.
func (s *Session) RecyclePacked(v *PackedVector) {
	if v != nil {
		s.recycle(&encVector{cts: v.cts})
		v.cts = nil
	}
}

// constant reports whether every value of v equals the first.
func constant(v []float64) (float64, bool) {
	for _, x := range v {
		if x != v[0] {
			return 0, false
		}
	}
	return v[0], len(v) > 0
}

// maxPackedTerms bounds the number of sealed vectors combined into one.
const maxPackedTerms = 16

// PackedVectorLayout returns the chunk count and per-chunk message size of
// a published packed vector.
func (s *Session) PackedVectorLayout(length int) (chunks, size int) {
	return s.packedChunks(length), headerLen + 16 + 3 + 2*8*s.n*len(s.moduli)
}

// PublishPackedInto re-randomises v (a fresh public-key encryption of zero
// added to every chunk, so that nothing of the weights remains in the
// ciphertext's randomness) and writes chunk k into dst[k] (sizes from
// PackedVectorLayout). v itself is unchanged.
func (s *Session) PublishPackedInto(v *PackedVector, dst [][]byte) error {
	chunks, size := s.PackedVectorLayout(v.length)
	if len(v.cts) != chunks {
		return fmt.Errorf("fedlearn: packed vector holds %d of its %d chunks (recycled?)", len(v.cts), chunks)
	}
	if err := checkChunkBuffers(dst, chunks, size); err != nil {
		return err
	}
	t0 := time.Now()
	defer since(t0, &s.prof.encrypt)
	parallel(chunks, func(next func() (int, bool)) {
		z := s.mustZeroEncryptor()
		ct := rlwe.NewCiphertext(s.params, 1, s.level)
		for k, ok := next(); ok; k, ok = next() {
			if err := z.EncryptZero(ct); err != nil {
				panic(err) // the key exists: CombinePacked checked
			}
			s.ringQ.Add(ct.Value[0], v.cts[k].Value[0], ct.Value[0])
			s.ringQ.Add(ct.Value[1], v.cts[k].Value[1], ct.Value[1])
			b := dst[k][:0:size]
			b = putHeader(b, msgPackedVector)
			b = appendU32(b, uint32(k))
			b = appendU32(b, uint32(chunks))
			b = appendU64(b, uint64(v.length))
			b = append(b, byte(v.logScale), byte(v.logWeight), byte(v.terms))
			b = appendResidues(b, ct.Value[0].Coeffs)
			b = appendResidues(b, ct.Value[1].Coeffs)
			if len(b) != size || &b[0] != &dst[k][0] {
				panic("fedlearn: packed chunk size differs from PackedVectorLayout")
			}
		}
	})
	return nil
}

// ParsePackedVector validates a published packed vector (peer input): its
// chunk headers, the public scale rule (logScale = PackedSealBits +
// logWeight) and every residue.
func (s *Session) ParsePackedVector(chunks [][]byte) (*PackedVector, error) {
	if len(chunks) == 0 || len(chunks) > s.packedChunks(s.p.MaxLength) {
		return nil, ErrMalformed
	}
	v := &PackedVector{cts: make([]*rlwe.Ciphertext, len(chunks))}
	for k, msg := range chunks {
		body, err := checkHeader(msg, msgPackedVector)
		if err != nil {
			return nil, err
		}
		r := reader{b: body}
		idx, total, l := r.u32(), r.u32(), r.u64()
		logScale, logWeight, terms := int(r.u8()), int(r.u8()), int(r.u8())
		if r.err || int(idx) != k || int(total) != len(chunks) || l == 0 || l > uint64(s.p.MaxLength) ||
			s.packedChunks(int(l)) != len(chunks) || logWeight < 8 || logWeight > 40 ||
			logScale != PackedSealBits+logWeight || terms < 1 || terms > maxPackedTerms {
			return nil, ErrMalformed
		}
		if k == 0 {
			v.length, v.logScale, v.logWeight, v.terms = int(l), logScale, logWeight, terms
		} else if int(l) != v.length || logWeight != v.logWeight || terms != v.terms {
			return nil, ErrMalformed
		}
		ct := s.newCiphertext()
		v.cts[k] = ct
		r.residues(s.moduli, s.n, ct.Value[0].Coeffs)
		r.residues(s.moduli, s.n, ct.Value[1].Coeffs)
		if !r.done() {
			s.RecyclePacked(v)
			return nil, ErrMalformed
		}
		ct.IsNTT = true
	}
	v.bound = s.packedBound(v.terms, v.logWeight)
	v.noise = s.packedNoise(v.terms, v.logWeight)
	return v, nil
}

// PackedColumns are an evaluator's plaintext columns for PackedInnerProducts,
// each normalised by its largest |x| and encoded at its own scale 2^e_j,
// the largest that keeps the noise of the result MinSmudgeBits below the
// flooding and the result below Q/2 (scales chosen for a vector's public
// bound and noise, at the first use).
type PackedColumns struct {
	nOut, length int
	col          func(j, lo, hi int, dst []complex128)
	norm         []float64
	logScale     []int
	forScale     int // the vector scale and noise the scales were chosen for
	forNoise     float64
	cache        [][]ring.Poly // [j][k], NTT domain; nil when over packedCacheBytes
	half         float64       // N/2
}

// NewPackedColumns prepares nOut columns of the given length; col(j, lo,
// hi, dst) writes column j at positions [lo, hi). Columns must not change
// while in use: they are encoded once and kept (up to packedCacheBytes).
func (s *Session) NewPackedColumns(nOut, length int, col func(j, lo, hi int, dst []complex128)) (*PackedColumns, error) {
	if nOut < 1 || nOut > maxResults || length < 1 || length > s.p.MaxLength {
		return nil, fmt.Errorf("fedlearn: %d columns of length %d out of range", nOut, length)
	}
	return &PackedColumns{nOut: nOut, length: length, col: col, half: float64(s.n / 2)}, nil
}

// Unit returns the factor that turns output j of a decrypted Result into
// Σ_l Re(x_j,l·r_l), r the vector's values without their scale.
func (c *PackedColumns) Unit(j int) float64 {
	return c.norm[j] * c.half / math.Exp2(float64(c.forScale+c.logScale[j]))
}

// prepare chooses the scales for vector v and encodes the columns (once).
func (s *Session) prepare(c *PackedColumns, v *PackedVector) error {
	if c.logScale != nil {
		if v.logScale != c.forScale || v.noise != c.forNoise {
			return fmt.Errorf("fedlearn: packed columns prepared for another vector scale")
		}
		return nil
	}
	m, chunks := s.n/2, s.packedChunks(c.length)
	norm, logScale := make([]float64, c.nOut), make([]int, c.nOut) // set on c only when all are chosen
	buf := make([]complex128, m)
	l1, l2 := make([]float64, c.nOut), make([]float64, c.nOut)
	for j := range c.nOut {
		var peak float64
		for k := range chunks {
			lo, hi := k*m, min((k+1)*m, c.length)
			c.col(j, lo, hi, buf[:hi-lo])
			for _, x := range buf[:hi-lo] {
				a := math.Hypot(real(x), imag(x))
				if math.IsNaN(a) || math.IsInf(a, 0) {
					return fmt.Errorf("fedlearn: non-finite column value")
				}
				peak = max(peak, a)
				l1[j] += a
				l2[j] += a * a
			}
		}
		if peak == 0 {
			peak = 1
		}
		norm[j] = peak
		l1[j] /= peak
		l2[j] /= peak * peak
	}
	n := float64(s.n)
	logQ := 0.0
	for _, q := range s.moduli {
		logQ += math.Log2(float64(q))
	}
	maxNoise := math.Exp2(float64(realFloodBits - s.p.MinSmudgeBits))
	fresh := freshNoiseStd(s.n)
	for j := range c.nOut {
		e := PackedSealBits // |Δ_2·x̂| ≤ 2^58 keeps the encoding in int64
		for ; e >= 10; e-- {
			d := math.Exp2(float64(e))
			// ‖m_x,k‖₂ ≤ Δ_2·√((2/N)·Σ|x̂|²) + √N/2 per chunk (Parseval plus
			// the rounding); squared and summed over chunks, ≤ twice the sum
			// of the squares.
			mx2 := 2 * (d*d*2*l2[j]/n + float64(chunks)*n/4)
			sd := math.Sqrt(v.noise*v.noise*mx2 + fresh*fresh)
			if noiseTailFactor*sd > maxNoise {
				continue
			}
			// |(2/N)·Σ Re(x̃·r̃)| with |x̃| ≤ |x̂| + N/(2Δ_2) after rounding.
			sig := math.Exp2(float64(v.logScale)) * d * 2 / n * (l1[j] + float64(c.length)*n/(2*d)) * v.bound
			if math.Log2(sig+math.Exp2(realFloodBits+1)) < logQ-1.1 {
				break
			}
		}
		if e < 10 {
			return ErrNoiseBudget
		}
		logScale[j] = e
	}
	c.norm, c.logScale, c.forScale, c.forNoise = norm, logScale, v.logScale, v.noise
	if c.nOut*chunks*8*s.n*len(s.moduli) <= packedCacheBytes {
		c.cache = make([][]ring.Poly, c.nOut)
		for j := range c.cache {
			c.cache[j] = make([]ring.Poly, chunks)
		}
		return s.packedParallel(c.nOut*chunks, func(w *packedWorker, next func() (int, bool)) error {
			xb := make([]complex128, m)
			for i, ok := next(); ok; i, ok = next() {
				j, k := i/chunks, i%chunks
				p := s.ringQ.NewPoly()
				s.encodeColumn(w, c, j, k, xb, p)
				c.cache[j][k] = p
			}
			return nil
		})
	}
	return nil
}

// encodeColumn writes chunk k of column j, normalised and scaled, into p
// (NTT domain, values < q).
func (s *Session) encodeColumn(w *packedWorker, c *PackedColumns, j, k int, xb []complex128, p ring.Poly) {
	m := s.n / 2
	lo, hi := k*m, min((k+1)*m, c.length)
	x := xb[:hi-lo]
	c.col(j, lo, hi, x)
	inv := complex(1/c.norm[j], 0)
	for i := range x {
		x[i] *= inv
	}
	w.encodeComplex(x, math.Exp2(float64(c.logScale[j])))
	s.toNTT(w.pt, p)
}

// PackedInnerProducts is step 3 of the packed kernel: for every column j
// it returns an encryption of (2/N)·Σ_l Re(x̂_j,l·r_l) at scale
// 2^(v's scale + e_j) as one LWE ciphertext of a real Result (decrypt with
// DecryptReal, then multiply by Unit(j)). Accumulated over all chunks in
// the NTT domain, re-randomised and extracted once per output.
func (s *Session) PackedInnerProducts(v *PackedVector, c *PackedColumns) ([]byte, error) {
	if s.pk == nil {
		return nil, ErrState
	}
	if v.length != c.length {
		return nil, fmt.Errorf("fedlearn: vector length %d, columns have %d", v.length, c.length)
	}
	if err := s.prepare(c, v); err != nil {
		return nil, err
	}
	t0 := time.Now()
	defer since(t0, &s.prof.multiply)
	chunks := len(v.cts)
	// Each worker accumulates every output over the chunk segments it
	// takes, a block of packedBlock outputs at a time: the block's
	// accumulators and the chunk's ciphertext stay in L2 while the columns
	// stream. (All outputs at once streamed the accumulators too: 5× the
	// memory traffic of this order, and the kernel is memory-bound.)
	segs := min(chunks, 4*runtime.GOMAXPROCS(0))
	var mu sync.Mutex
	var partial [][]*rlwe.Ciphertext
	parallel(segs, func(next func() (int, bool)) {
		var w *packedWorker
		xb := make([]complex128, s.n/2)
		pt := s.ringQ.NewPoly()
		acc := make([]*rlwe.Ciphertext, c.nOut)
		for j := range acc {
			acc[j] = rlwe.NewCiphertext(s.params, 1, s.level)
		}
		for g, ok := next(); ok; g, ok = next() {
			k0, k1 := g*chunks/segs, (g+1)*chunks/segs
			for j0 := 0; j0 < c.nOut; j0 += packedBlock {
				j1 := min(j0+packedBlock, c.nOut)
				lazy := 0
				for k := k0; k < k1; k++ {
					ct := v.cts[k]
					for j := j0; j < j1; j++ {
						p := pt
						if c.cache != nil {
							p = c.cache[j][k]
						} else {
							if w == nil {
								w = s.mustPackedWorker()
							}
							s.encodeColumn(w, c, j, k, xb, pt)
						}
						s.macPair(ct.Value[0], ct.Value[1], p, acc[j].Value[0], acc[j].Value[1])
					}
					if lazy++; lazy == lazyTerms {
						for _, a := range acc[j0:j1] {
							s.ringQ.Reduce(a.Value[0], a.Value[0])
							s.ringQ.Reduce(a.Value[1], a.Value[1])
						}
						lazy = 0
					}
				}
				for _, a := range acc[j0:j1] {
					s.ringQ.Reduce(a.Value[0], a.Value[0])
					s.ringQ.Reduce(a.Value[1], a.Value[1])
				}
			}
		}
		mu.Lock()
		partial = append(partial, acc)
		mu.Unlock()
	})
	nmod := len(s.moduli)
	lweLen := 8 * nmod * (s.n + 1)
	out := make([]byte, headerLen+4+c.nOut*lweLen)
	copy(out, magic[:])
	out[4] = msgResultReal
	putU32(out[headerLen:], uint32(c.nOut))
	body := out[headerLen+4:]
	parallel(c.nOut, func(next func() (int, bool)) {
		enc := s.mustZeroEncryptor()
		for j, ok := next(); ok; j, ok = next() {
			a := partial[0][j]
			for _, p := range partial[1:] {
				s.ringQ.Add(a.Value[0], p[j].Value[0], a.Value[0])
				s.ringQ.Add(a.Value[1], p[j].Value[1], a.Value[1])
			}
			s.ringQ.MForm(a.Value[0], a.Value[0])
			s.ringQ.MForm(a.Value[1], a.Value[1])
			if err := enc.RerandomiseToCoeffs(a); err != nil {
				panic(err)
			}
			s.extractLWE(a, body[j*lweLen:])
		}
	})
	return out, nil
}

// packedBlock is the number of outputs a worker accumulates together.
const packedBlock = 4

// macPair adds the Montgomery products x0⊙p and x1⊙p (lazy: each term
// < 2q) to a0 and a1, reading p once for both (lattigo's
// MulCoeffsMontgomeryLazyThenAddLazy, called twice, read it twice).
func (s *Session) macPair(x0, x1, p, a0, a1 ring.Poly) {
	for i, sub := range s.ringQ.SubRings[:s.level+1] {
		q, mc := sub.Modulus, sub.MRedConstant
		pr := p.Coeffs[i]
		x0, x1 := x0.Coeffs[i][:len(pr)], x1.Coeffs[i][:len(pr)]
		a0, a1 := a0.Coeffs[i][:len(pr)], a1.Coeffs[i][:len(pr)]
		for j, y := range pr {
			a0[j] += ring.MRedLazy(x0[j], y, q, mc)
			a1[j] += ring.MRedLazy(x1[j], y, q, mc)
		}
	}
}

func (s *Session) mustPackedWorker() *packedWorker {
	w, err := s.newPackedWorker()
	if err != nil {
		panic(err)
	}
	return w
}
