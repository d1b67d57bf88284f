package fedlearn

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/bits"
	"time"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/ring"
	"lukechampine.com/blake3"

	"github.com/tandem-dev/tandem/internal/ntt"
)

// Masked release: per-position values of the partner, revealed to the bank
// only where the bank's encrypted mask is 1 (scoring, DESIGN §4). In
// reveal=initiator mode the partner does not know which positions are
// shared customers, so it cannot simply send its partial scores for them;
// the bank encrypts its match indicator m, the partner multiplies it
// slot-wise by its values u and key-switches the product to the bank, which
// decrypts m⊙u and nothing else.
//
// Encoding. The statistics kernel packs coefficients modulo t = 2^LogT;
// slot-wise products need a plaintext modulus t_s that is an NTT-friendly
// prime (t_s ≡ 1 mod 2N), so slots are the evaluations of a plaintext
// polynomial at the 2N-th roots of unity mod t_s and ring products multiply
// slot by slot. The collective key does not depend on the plaintext
// modulus, so the job's session serves both encodings.
//
// Messages sit in the least significant part (BGV-style): the bank
// encrypts pm·t_s⁻¹ mod Q; decryption of the final ciphertext times t_s is
// pm·P + t_s·E with E = K + e·P + e_rerand + flood, K the carries of the
// integer product pm·P. Reducing mod t_s yields m⊙u exactly, and everything
// that depends on the partner's polynomial P beyond m⊙u (K, e·P) sits in E,
// under the flooding noise. With BFV-style (MSB) scaling the same carries
// appear multiplied by Q mod t_s, ≈ 2^30 larger, and do not fit under the
// flooding at log Q = 120.
//
// Security of the release (semi-honest): the partner re-randomises the
// product with a fresh encryption of zero under the collective key (so the
// ciphertext's a-part says nothing about P) and adds uniform noise of
// MaskedFloodBits bits to its key-switch share; MaskedRelease checks that
// this exceeds a high-probability bound of |E − flood| by MinSmudgeBits.
// A bank that encrypts something other than its 0/1 match indicator learns
// more: the partner cannot verify the mask (as for every kernel here), so
// the agreement's policy and audit are the defence.

const (
	msgMaskChunk     byte = 7
	msgMaskedRelease byte = 8

	// maskedModulusBits is the size of the slot modulus t_s: values of
	// about 29 bits (the caller's fixed point) with 84 bits of flooding and
	// 5 bits of slack inside log Q = 120.
	maskedModulusBits = 30
)

// ErrMaskedRange is returned when a value given to MaskedRelease does not
// fit the slot modulus (|u| ≥ MaskedLimit()).
var ErrMaskedRange = errors.New("fedlearn: masked value out of range")

// slotCtx is the lazily built slot encoding of a session.
type slotCtx struct {
	t      uint64
	ringT  *ring.Ring
	plansT []*ntt.Plan // ringT's transforms (nil: lattigo's)
	tInv   []uint64    // t_s⁻¹ mod q_i
	tInvS  []uint64    // their Shoup constants
	tModQ  []uint64    // t_s mod q_i
	qHatT  []uint64    // (Q/q_i) mod t_s
	qHatIn []uint64    // (Q/q_i)⁻¹ mod q_i
	qModT  uint64      // Q mod t_s
	flood  uint        // flooding bits of the key-switch share
	bound  float64     // log2 of the high-probability bound of |E − flood|
}

// slots builds the slot encoding on first use (sessions that never score
// do not pay for it).
func (s *Session) slots() (*slotCtx, error) {
	if s.slot != nil {
		return s.slot, nil
	}
	gen := ring.NewNTTFriendlyPrimesGenerator(maskedModulusBits, uint64(2*s.n))
	t, err := gen.NextDownstreamPrime()
	if err != nil {
		return nil, fmt.Errorf("%w: no slot modulus: %v", ErrParams, err)
	}
	rt, err := ring.NewRing(s.n, []uint64{t})
	if err != nil {
		return nil, fmt.Errorf("%w: slot ring: %v", ErrParams, err)
	}
	c := &slotCtx{t: t, ringT: rt, plansT: nttPlans(rt)}
	bt := new(big.Int).SetUint64(t)
	c.qModT = new(big.Int).Mod(s.q, bt).Uint64()
	for _, qi := range s.moduli {
		bq := new(big.Int).SetUint64(qi)
		c.tInv = append(c.tInv, new(big.Int).ModInverse(bt, bq).Uint64())
		c.tInvS = append(c.tInvS, shoup(c.tInv[len(c.tInv)-1], qi))
		c.tModQ = append(c.tModQ, t%qi)
		qh := new(big.Int).Quo(s.q, bq)
		c.qHatT = append(c.qHatT, new(big.Int).Mod(qh, bt).Uint64())
		c.qHatIn = append(c.qHatIn, new(big.Int).ModInverse(new(big.Int).Mod(qh, bq), bq).Uint64())
	}
	// Bound of |E − flood| per coefficient: carries |K| ≤ N·(t/2)²/t = N·t/4
	// (worst case), plus noiseTailFactor standard deviations of e·P
	// (|P_j| ≤ t/2, e fresh) and of the re-randomisation noise.
	n, tf := float64(s.n), float64(t)
	sd := math.Sqrt(n) * freshNoiseStd(s.n) * tf / 2
	c.bound = math.Log2(n*tf/4 + noiseTailFactor*(sd+freshNoiseStd(s.n)))
	// Decryption needs |t_s·E| < Q/16 (DecryptMasked's floating-point CRT
	// quotient is exact below that).
	c.flood = uint(s.q.BitLen() - 1 - maskedModulusBits - 5)
	if float64(c.flood)-c.bound < float64(s.p.MinSmudgeBits) {
		return nil, fmt.Errorf("%w: masked release leaves %.1f bits of smudging margin, want %d",
			ErrParams, float64(c.flood)-c.bound, s.p.MinSmudgeBits)
	}
	s.slot = c
	return c, nil
}

// MaskedLimit returns the bound on |u| accepted by MaskedRelease: values
// are integers in (−MaskedLimit, MaskedLimit), about 2^29.
func (s *Session) MaskedLimit() (int64, error) {
	c, err := s.slots()
	if err != nil {
		return 0, err
	}
	return int64(c.t / 2), nil
}

// MaskedChunks returns the number of chunk messages for L positions.
func (s *Session) MaskedChunks(length int) int { return (length + s.n - 1) / s.n }

// EncryptMask (bank) encrypts chunks [lo, hi) of the 0/1 mask over L =
// len(mask) positions, slot-encoded, under the collective key. Chunks are
// independent: a caller streams them in batches.
func (s *Session) EncryptMask(mask []bool, lo, hi int) ([][]byte, error) {
	if s.pk == nil {
		return nil, ErrState
	}
	if s.role != Bank {
		return nil, ErrRole
	}
	if len(mask) == 0 || len(mask) > s.p.MaxLength {
		return nil, fmt.Errorf("fedlearn: mask length %d out of range", len(mask))
	}
	total := s.MaskedChunks(len(mask))
	if lo < 0 || hi > total || lo >= hi {
		return nil, fmt.Errorf("fedlearn: chunks [%d,%d) of %d", lo, hi, total)
	}
	c, err := s.slots()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	defer since(t0, &s.prof.encrypt)
	out := make([][]byte, hi-lo)
	parallel(hi-lo, func(next func() (int, bool)) {
		enc := s.mustZeroEncryptor()
		ct := rlwe.NewCiphertext(s.params, 1, s.level)
		pt := s.ringQ.NewPoly()
		slot := c.ringT.NewPoly()
		for i, ok := next(); ok; i, ok = next() {
			k := lo + i
			row := slot.Coeffs[0]
			clear(row)
			for j, b := range mask[k*s.n : min((k+1)*s.n, len(mask))] {
				if b {
					row[j] = 1
				}
			}
			inverseNTT(c.ringT, c.plansT, slot, slot)
			// pm·t_s⁻¹ in every limb, centred so the carries stay small.
			for l, qi := range s.moduli {
				dst := pt.Coeffs[l]
				for j, v := range row {
					dst[j] = mulShoupSigned(centre(v, c.t), c.tInv[l], c.tInvS[l], qi) // |v| ≤ t_s/2 < q
				}
			}
			if err := enc.Encrypt(ct, &pt); err != nil {
				panic(err) // keys and levels are fixed by construction
			}
			b := make([]byte, 0, headerLen+16+2*8*s.n*len(s.moduli))
			b = putHeader(b, msgMaskChunk)
			b = appendU32(b, uint32(k))
			b = appendU32(b, uint32(total))
			b = appendU64(b, uint64(len(mask)))
			b = appendResidues(b, ct.Value[0].Coeffs)
			b = appendResidues(b, ct.Value[1].Coeffs)
			out[i] = b
		}
	})
	return out, nil
}

// maskChunk is a parsed chunk message (peer input).
type maskChunk struct {
	k, total, length int
	ct               *rlwe.Ciphertext
}

// parseMaskChunk validates a mask chunk message or a masked release
// (which carries the 32-byte digest of the chunk it answers after the
// chunk header).
func (s *Session) parseMaskChunk(msg []byte, typ byte) (*maskChunk, []byte, error) {
	body, err := checkHeader(msg, typ)
	if err != nil {
		return nil, nil, err
	}
	r := reader{b: body}
	k, total, length := int(r.u32()), int(r.u32()), r.u64()
	var digest []byte
	if typ == msgMaskedRelease {
		digest = r.take(32)
	}
	if r.err || length == 0 || length > uint64(s.p.MaxLength) ||
		total != s.MaskedChunks(int(length)) || k >= total {
		return nil, nil, ErrMalformed
	}
	ct := rlwe.NewCiphertext(s.params, 1, s.level)
	r.residues(s.moduli, s.n, ct.Value[0].Coeffs)
	r.residues(s.moduli, s.n, ct.Value[1].Coeffs)
	if !r.done() {
		return nil, nil, ErrMalformed
	}
	return &maskChunk{k: k, total: total, length: int(length), ct: ct}, digest, nil
}

// MaskedRelease (partner) answers mask chunks: for each chunk k it returns
// an encryption of m⊙u on the chunk's positions, re-randomised and
// key-switched to the bank with flooding noise; u holds the partner's
// integer values over all L positions (|u_i| < MaskedLimit). Call it only
// after the policy engine approved releasing u to the bank at the masked
// positions. Every chunk is claimed in the share guard: a chunk seen before
// gets ErrShareReused (a second answer would let the bank average away the
// flooding) and nothing is returned.
func (s *Session) MaskedRelease(chunks [][]byte, u []int64) ([][]byte, error) {
	if s.pk == nil {
		return nil, ErrState
	}
	if s.role != Partner {
		return nil, ErrRole
	}
	c, err := s.slots()
	if err != nil {
		return nil, err
	}
	half := int64(c.t / 2)
	for _, v := range u {
		if v <= -half || v >= half {
			return nil, ErrMaskedRange
		}
	}
	parsed := make([]*maskChunk, len(chunks))
	digests := make([][32]byte, len(chunks))
	errs := make([]error, len(chunks))
	parallel(len(chunks), func(next func() (int, bool)) {
		for i, ok := next(); ok; i, ok = next() {
			mc, _, err := s.parseMaskChunk(chunks[i], msgMaskChunk)
			switch {
			case err != nil:
				errs[i] = err
			case mc.length != len(u):
				errs[i] = fmt.Errorf("%w: chunk for %d positions, values for %d", ErrMalformed, mc.length, len(u))
			default:
				parsed[i], digests[i] = mc, MaskDigest(chunks[i])
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if err := s.guard.Claim(digests); err != nil {
		return nil, err
	}
	// Flooding noise for every chunk, drawn up front so workers do not
	// share a reader: AES-256-CTR keyed with 32 bytes of the session's
	// randomness (a CSPRNG), 16 bytes per coefficient. The kernel's
	// getrandom path delivered ~130 MB/s here, a quarter of the job's time;
	// AES-CTR with AES-NI is a standard CSPRNG expansion at GB/s.
	var key [32]byte
	if _, err := io.ReadFull(s.random, key[:]); err != nil {
		return nil, fmt.Errorf("fedlearn: reading randomness: %w", err)
	}
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	clear(key[:])
	stream := cipher.NewCTR(block, make([]byte, aes.BlockSize))
	floods := make([][]byte, len(chunks))
	for i := range floods {
		floods[i] = make([]byte, 16*s.n)
		stream.XORKeyStream(floods[i], floods[i])
	}
	t0 := time.Now()
	defer since(t0, &s.prof.share)
	out := make([][]byte, len(chunks))
	parallel(len(chunks), func(next func() (int, bool)) {
		enc := s.mustZeroEncryptor()
		zero := rlwe.NewCiphertext(s.params, 1, s.level)
		p := s.ringQ.NewPoly()
		h := s.ringQ.NewPoly()
		slot := c.ringT.NewPoly()
		for i, ok := next(); ok; i, ok = next() {
			mc := parsed[i]
			// P = slot encoding of u on this chunk, centred, in every limb.
			row := slot.Coeffs[0]
			clear(row)
			for j, v := range u[mc.k*s.n : min((mc.k+1)*s.n, len(u))] {
				row[j] = signedMod(v, c.t)
			}
			inverseNTT(c.ringT, c.plansT, slot, slot)
			for l, qi := range s.moduli {
				dst := p.Coeffs[l]
				for j, v := range row {
					dst[j] = signedMod(centre(v, c.t), qi)
				}
			}
			s.toNTT(p, p)
			ct := mc.ct
			s.ringQ.MulCoeffsBarrett(ct.Value[0], p, ct.Value[0])
			s.ringQ.MulCoeffsBarrett(ct.Value[1], p, ct.Value[1])
			if err := enc.EncryptZero(zero); err != nil {
				panic(err)
			}
			s.ringQ.Add(ct.Value[0], zero.Value[0], ct.Value[0])
			s.ringQ.Add(ct.Value[1], zero.Value[1], ct.Value[1])
			// Key-switch share towards the bank: c0 += s_P·c1 + flood.
			s.ringQ.MulCoeffsMontgomery(ct.Value[1], s.sk.Value.Q, h)
			s.toINTT(h, h)
			fb := floods[i]
			for j := range s.n {
				f := floodResidue(fb[16*j:16*j+16], c.flood)
				for l, qi := range s.moduli {
					h.Coeffs[l][j] = addMod(h.Coeffs[l][j], f.mod(qi), qi)
				}
			}
			s.toNTT(h, h)
			s.ringQ.Add(ct.Value[0], h, ct.Value[0])
			b := make([]byte, 0, headerLen+48+2*8*s.n*len(s.moduli))
			b = putHeader(b, msgMaskedRelease)
			b = appendU32(b, uint32(mc.k))
			b = appendU32(b, uint32(mc.total))
			b = appendU64(b, uint64(mc.length))
			b = append(b, digests[i][:]...)
			b = appendResidues(b, ct.Value[0].Coeffs)
			b = appendResidues(b, ct.Value[1].Coeffs)
			out[i] = b
		}
	})
	return out, nil
}

// DecryptMasked (bank) decrypts masked releases answering the chunks it
// sent (sent[k] = MaskDigest of the chunk message k) and writes
// m_i·u_i into out[i] for the chunks' positions; len(out) must be L.
// Errors: ErrMalformed, ErrState if a release answers another chunk.
func (s *Session) DecryptMasked(releases [][]byte, sent map[int][32]byte, out []int64) error {
	if s.role != Bank {
		return ErrRole
	}
	c, err := s.slots()
	if err != nil {
		return err
	}
	parsed := make([]*maskChunk, len(releases))
	for i, msg := range releases {
		mc, digest, err := s.parseMaskChunk(msg, msgMaskedRelease)
		if err != nil {
			return err
		}
		if mc.length != len(out) {
			return ErrMalformed
		}
		if want, ok := sent[mc.k]; !ok || [32]byte(digest) != want {
			return ErrState
		}
		parsed[i] = mc
	}
	t0 := time.Now()
	defer since(t0, &s.prof.decrypt)
	half := c.t / 2
	parallel(len(parsed), func(next func() (int, bool)) {
		d := s.ringQ.NewPoly()
		slot := c.ringT.NewPoly()
		nmod := len(s.moduli)
		y := make([]uint64, nmod)
		invQ := make([]float64, nmod)
		for l, qi := range s.moduli {
			invQ[l] = 1 / float64(qi)
		}
		for i, ok := next(); ok; i, ok = next() {
			mc := parsed[i]
			s.ringQ.MulCoeffsMontgomery(mc.ct.Value[1], s.sk.Value.Q, d)
			s.ringQ.Add(d, mc.ct.Value[0], d)
			s.toINTT(d, d)
			row := slot.Coeffs[0]
			for j := range s.n {
				// V = t_s·d mod Q, centred, reduced mod t_s (CRT with a
				// floating-point quotient: |V| < Q/16 leaves it exact).
				var frac float64
				for l, qi := range s.moduli {
					x := mulMod(d.Coeffs[l][j], c.tModQ[l], qi)
					y[l] = mulMod(x, c.qHatIn[l], qi)
					frac += float64(y[l]) * invQ[l]
				}
				alpha := uint64(math.Round(frac))
				var acc uint64
				for l := range nmod {
					acc = (acc + (y[l]%c.t)*c.qHatT[l]) % c.t
				}
				acc = (acc + c.t - (alpha%c.t)*c.qModT%c.t) % c.t
				row[j] = acc
			}
			forwardNTT(c.ringT, c.plansT, slot, slot)
			lo := mc.k * s.n
			for j, v := range row[:min(s.n, len(out)-lo)] {
				if v > half {
					out[lo+j] = int64(v) - int64(c.t)
				} else {
					out[lo+j] = int64(v)
				}
			}
		}
	})
	return nil
}

// MaskDigest returns the digest DecryptMasked expects for a chunk message
// (and the share guard's key for it): BLAKE3-256, which hashes the 32 MB of
// mask chunks of a 1e6-position job three times as fast as SHA-256.
func MaskDigest(chunk []byte) [32]byte { return blake3.Sum256(chunk) }

// MaskDigests is MaskDigest of every chunk, on every core.
func MaskDigests(chunks [][]byte) [][32]byte {
	out := make([][32]byte, len(chunks))
	parallel(len(chunks), func(next func() (int, bool)) {
		for i, ok := next(); ok; i, ok = next() {
			out[i] = MaskDigest(chunks[i])
		}
	})
	return out
}

// MaskChunkIndex returns the chunk index k of a mask chunk or masked
// release message, for routing; it does not validate the rest.
func MaskChunkIndex(msg []byte) (int, error) {
	if len(msg) < headerLen+4 || [4]byte(msg[:4]) != magic ||
		(msg[4] != msgMaskChunk && msg[4] != msgMaskedRelease) {
		return 0, ErrMalformed
	}
	return int(binary.LittleEndian.Uint32(msg[headerLen:])), nil
}

// centre maps v ∈ [0, t) to (−t/2, t/2].
func centre(v, t uint64) int64 {
	if v > t/2 {
		return int64(v) - int64(t)
	}
	return int64(v)
}

func mulMod(a, b, q uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return bits.Rem64(hi, lo, q)
}

// wide is a signed integer |x| < 2^127 as sign and magnitude.
type wide struct {
	neg    bool
	hi, lo uint64
}

func (w wide) mod(q uint64) uint64 {
	r := bits.Rem64(w.hi, w.lo, q)
	if w.neg && r != 0 {
		return q - r
	}
	return r
}

// floodResidue turns 16 random bytes into e uniform in [−2^f, 2^f), f < 127.
func floodResidue(b []byte, f uint) wide {
	lo, hi := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
	// keep f+1 bits: x uniform in [0, 2^(f+1)), e = x − 2^f
	if f+1 < 64 {
		lo &= 1<<(f+1) - 1
		hi = 0
	} else {
		hi &= 1<<(f+1-64) - 1
	}
	var offHi, offLo uint64
	if f < 64 {
		offLo = 1 << f
	} else {
		offHi = 1 << (f - 64)
	}
	if hi > offHi || (hi == offHi && lo >= offLo) {
		l, bo := bits.Sub64(lo, offLo, 0)
		h, _ := bits.Sub64(hi, offHi, bo)
		return wide{hi: h, lo: l}
	}
	l, bo := bits.Sub64(offLo, lo, 0)
	h, _ := bits.Sub64(offHi, hi, bo)
	return wide{neg: true, hi: h, lo: l}
}
