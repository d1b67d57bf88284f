package fedlearn

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"io"
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
// collective key (fresh encryption and re-randomisation), with the same
// distributions as lattigo's rlwe.Encryptor: u ternary (Xs), e0, e1
// Gaussian (Xe), ct = (u·pk0 + e0, u·pk1 + e1), NTT domain.
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
	xe      ring.Sampler
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
	if xs, ok := s.params.Xs().(ring.Ternary); !ok || xs.P != 2/3.0 {
		return nil, fmt.Errorf("%w: the encryptor samples uniform ternary masks only", ErrParams)
	}
	xe, err := ring.NewSampler(prng, s.ringQ, s.params.Xe(), false)
	if err != nil {
		return nil, err
	}
	z := &zeroEncryptor{s: s, prng: prng, xe: xe, buf: s.ringQ.NewPoly(), e: s.ringQ.NewPoly(), trits: make([]byte, s.n/4)}
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
		z.xe.Read(z.buf)
		if i == 0 && m != nil {
			r.Add(z.buf, *m, z.buf)
		}
		r.NTT(z.buf, z.buf)
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
	r.NTT(z.u(), z.buf)
	for i, c := range acc.Value[:2] {
		r.MulCoeffsMontgomeryThenAdd(z.buf, z.s.pk.Value[i].Q, c)
	}
	for _, c := range acc.Value[:2] {
		r.INTT(c, c)
	}
	for _, c := range acc.Value[:2] {
		z.xe.Read(z.e)
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
	r.NTT(z.u(), z.buf)
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
