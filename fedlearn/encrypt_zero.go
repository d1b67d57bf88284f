package fedlearn

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sync"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/ring"
	"github.com/tuneinsight/lattigo/v6/utils/sampling"
)

// ctrPRNG is a sampling.PRNG: the AES-CTR keystream.
type ctrPRNG struct{ s cipher.Stream }

var _ sampling.PRNG = ctrPRNG{}

func (p ctrPRNG) Read(b []byte) (int, error) {
	clear(b)
	p.s.XORKeyStream(b, b)
	return len(b), nil
}

// zeroEncryptor produces public-key encryptions of zero under the
// collective key (fresh encryption and re-randomisation): u uniform
// ternary (lattigo's Xs), e0, e1 centred binomial (see cbdK; lattigo's Xe
// is a Gaussian of nearly the same width, σ = 3.2), ct = (u·pk0 + e0,
// u·pk1 + e1), NTT domain.
//
// Why not rlwe.Encryptor: in lattigo v6.2.0 it samples through
// crypto/rand on every read (sampling.ThreadSafePRNG), small reads that cost
// 7–10 % of a scoring job in getrandom. Here each worker's samplers read
// AES-256-CTR keyed with 32 bytes from the session's CSPRNG (a standard
// CSPRNG expansion; with AES-NI it is several times faster than lattigo's
// BLAKE2b KeyedPRNG, which took 11 % of a scoring job): one read of the
// session's source per worker instead of thousands of syscalls.
type zeroEncryptor struct {
	s       *Session
	prng    ctrPRNG
	ebuf    []byte // keystream for one error polynomial
	evals   []int8
	buf, e  ring.Poly
	trits   []byte
	ternary [][3]uint64 // per prime, the residues of −1, 0, 1 (indexed by trit: no branch on random data)
}

// randMu serialises reads of a session's random source by concurrent
// workers (the caller may pass any io.Reader).
var randMu sync.Mutex

func (s *Session) newZeroEncryptor() (*zeroEncryptor, error) {
	var key [32]byte
	randMu.Lock()
	_, err := io.ReadFull(s.random, key[:])
	randMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("fedlearn: reading randomness: %w", err)
	}
	block, err := aes.NewCipher(key[:])
	clear(key[:])
	if err != nil {
		return nil, err
	}
	prng := ctrPRNG{cipher.NewCTR(block, make([]byte, aes.BlockSize))}
	if xs, ok := s.params.Xs().(ring.Ternary); !ok || xs.P != 2/3.0 || xs.H != 0 {
		return nil, fmt.Errorf("%w: the encryptor samples uniform ternary masks only", ErrParams)
	}
	z := &zeroEncryptor{s: s, prng: prng, buf: s.ringQ.NewPoly(), e: s.ringQ.NewPoly(), trits: make([]byte, s.n/4),
		ebuf: make([]byte, 6*s.n), evals: make([]int8, s.n)}
	for _, q := range s.moduli {
		z.ternary = append(z.ternary, [3]uint64{q - 1, 0, 1})
	}
	return z, nil
}

// mustZeroEncryptor is newZeroEncryptor for workers: the only failure is
// the session's random source failing, which the worker cannot handle.
func (s *Session) mustZeroEncryptor() *zeroEncryptor {
	z, err := s.newZeroEncryptor()
	if err != nil {
		panic(err)
	}
	return z
}

// Encrypt writes into ct (NTT domain) a fresh encryption of the plaintext
// polynomial m given in the coefficient domain (already scaled; nil for an
// encryption of zero): ct = (u·pk0 + NTT(e0 + m), u·pk1 + NTT(e1)). Adding
// m before the transform saves the separate NTT of the plaintext.
func (z *zeroEncryptor) Encrypt(ct *rlwe.Ciphertext, m *ring.Poly) error {
	r := z.s.ringQ
	if err := z.maskU(ct); err != nil {
		return err
	}
	for i, c := range ct.Value[:2] {
		z.readError(z.buf)
		if i == 0 && m != nil {
			r.Add(z.buf, *m, z.buf)
		}
		z.s.toNTT(z.buf, z.buf)
		r.Add(c, z.buf, c)
	}
	ct.IsNTT = true
	return nil
}

// EncryptZero writes a fresh encryption of zero (NTT domain) into ct.
func (z *zeroEncryptor) EncryptZero(ct *rlwe.Ciphertext) error { return z.Encrypt(ct, nil) }

// RerandomiseToCoeffs adds a fresh encryption of zero to acc (NTT domain)
// and leaves the result in the coefficient domain: acc + u·pk is
// transformed back, then e0, e1 are added there, which is the same
// ciphertext distribution as adding a whole encryption of zero first and
// saves the two forward transforms of the errors.
func (z *zeroEncryptor) RerandomiseToCoeffs(acc *rlwe.Ciphertext) error {
	r := z.s.ringQ
	if z.s.pk == nil {
		return ErrState
	}
	z.s.toNTT(z.u(), z.buf)
	for i, c := range acc.Value[:2] {
		r.MulCoeffsMontgomeryThenAdd(z.buf, z.s.pk.Value[i].Q, c)
	}
	for _, c := range acc.Value[:2] {
		z.s.toINTT(c, c)
	}
	for _, c := range acc.Value[:2] {
		z.readError(z.e)
		r.Add(c, z.e, c)
	}
	acc.IsNTT = false
	return nil
}

// maskU writes (u·pk0, u·pk1) (NTT domain) into ct for a fresh ternary u.
func (z *zeroEncryptor) maskU(ct *rlwe.Ciphertext) error {
	r, pk := z.s.ringQ, z.s.pk
	if pk == nil {
		return ErrState
	}
	z.s.toNTT(z.u(), z.buf)
	r.MulCoeffsMontgomery(z.buf, pk.Value[0].Q, ct.Value[0])
	r.MulCoeffsMontgomery(z.buf, pk.Value[1].Q, ct.Value[1])
	return nil
}

// u samples a fresh uniform ternary polynomial (coefficient domain) into
// z.e: P(0) = P(1) = P(−1) = 1/3, lattigo's default Xs (Ternary{P: 2/3}),
// checked when the encryptor is made. Five trits per byte below 243 = 3^5
// (rejection: exactly uniform). lattigo's ternary sampler drew the same
// distribution bit by bit and took 176 µs a polynomial, a quarter of a
// public-key encryption; this takes ≈ 15.
func (z *zeroEncryptor) u() ring.Poly {
	vals, n := z.ternary, z.s.n
	for j := 0; j < n; {
		z.prng.Read(z.trits)
		for _, b := range z.trits {
			if b >= 243 {
				continue
			}
			for t := 0; t < 5 && j < n; t++ {
				v := b % 3
				b /= 3
				for i, tv := range vals {
					z.e.Coeffs[i][j] = tv[v]
				}
				j++
			}
			if j == n {
				break
			}
		}
	}
	return z.e
}

// The errors of every encryption in this package are centred binomial,
// e = Σ_{i<k} (a_i − b_i) over 2k fair bits with k = cbdK: variance k/2 =
// 10.5, σ ≈ 3.24 ≥ 3.2, the Gaussian width of the HE security standard's
// tables at these ring sizes (lattice attack estimates depend on the
// error's standard deviation; the centred binomial is the NewHope/Kyber
// practice). It is strictly sub-Gaussian (each a_i − b_i has moment
// generating function (1 + cosh λ)/2 ≤ e^(λ²/4)), so the Gaussian tail
// bounds of the noise analysis (noiseTailFactor) hold with σ² = k/2. From
// the worker's AES-CTR stream at 6 bytes a coefficient it costs a fifth of
// lattigo's Gaussian sampler, which was a quarter of sealing and 7 % of a
// scoring job.
const cbdK = 21

// errSigma is the standard deviation of every fresh error in the noise
// bounds (freshNoiseStd, the packed kernel): √(cbdK/2), which also bounds
// the Gaussian errors of the key generation (σ = 3.2).
var errSigma = math.Sqrt(cbdK / 2.0)

// cbd fills out with centred binomial samples drawn from prng, using buf
// (6 bytes a sample) as scratch.
func cbd(prng ctrPRNG, buf []byte, out []int8) {
	const mask = 1<<cbdK - 1
	buf = buf[:6*len(out)]
	prng.Read(buf)
	for j := range out {
		r := uint64(binary.LittleEndian.Uint32(buf[6*j:])) | uint64(binary.LittleEndian.Uint16(buf[6*j+4:]))<<32
		out[j] = int8(bits.OnesCount64(r&mask) - bits.OnesCount64(r>>cbdK&mask))
	}
}

// readError writes a fresh error polynomial (coefficient domain) into p.
func (z *zeroEncryptor) readError(p ring.Poly) {
	cbd(z.prng, z.ebuf, z.evals)
	for i, q := range z.s.moduli {
		row := p.Coeffs[i][:len(z.evals)]
		for j, e := range z.evals {
			v := int64(e)
			row[j] = uint64(v) + q&uint64(v>>63) // branch-free: e + q when negative
		}
	}
}
