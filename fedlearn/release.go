package fedlearn

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/bits"
	"sync"
	"time"
)

// ErrShareReused is returned by ReleaseShare (via ShareGuard) when this party
// already produced a decryption share for a ciphertext with the same public
// part a. Producing a second share would let the receiver average away the
// smudging noise. The caller must not retry: abort the job and rotate keys.
var ErrShareReused = errors.New("fedlearn: decryption share already produced for this ciphertext")

// ShareGuard remembers the digests of every ciphertext this party produced a
// decryption share for. It is safe for concurrent use.
type ShareGuard struct {
	mu   sync.Mutex
	seen map[[32]byte]struct{}
}

// NewShareGuard returns an empty guard.
func NewShareGuard() *ShareGuard { return &ShareGuard{seen: make(map[[32]byte]struct{})} }

// Claim records all digests, or none: it returns ErrShareReused if any digest
// was claimed before or appears twice in the list.
func (g *ShareGuard) Claim(digests [][32]byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	batch := make(map[[32]byte]struct{}, len(digests))
	for _, d := range digests {
		if _, ok := g.seen[d]; ok {
			return ErrShareReused
		}
		if _, ok := batch[d]; ok {
			return ErrShareReused
		}
		batch[d] = struct{}{}
	}
	for d := range batch {
		g.seen[d] = struct{}{}
	}
	return nil
}

// Len returns the number of claimed digests.
func (g *ShareGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

// Guard returns the session's share guard (e.g. for audit or persistence).
func (s *Session) Guard() *ShareGuard { return s.guard }

// lweView is a parsed Result: count LWE ciphertexts referencing msg.
type lweView struct {
	msg   []byte
	count int
	size  int  // bytes per LWE ciphertext
	kind  byte // msgResult (exact kernels) or msgResultReal (packed kernel)
}

func (s *Session) lweAt(v *lweView, k int) []byte {
	off := headerLen + 4 + k*v.size
	return v.msg[off : off+v.size]
}

// parseResult validates a Result message (peer input).
func (s *Session) parseResult(msg []byte) (*lweView, error) {
	if len(msg) < headerLen || msg[4] != msgResultReal {
		return s.parseResultKind(msg, msgResult)
	}
	return s.parseResultKind(msg, msgResultReal)
}

func (s *Session) parseResultKind(msg []byte, kind byte) (*lweView, error) {
	body, err := checkHeader(msg, kind)
	if err != nil {
		return nil, err
	}
	r := reader{b: body}
	count := int(r.u32())
	size := 8 * len(s.moduli) * (s.n + 1)
	if r.err || count < 1 || count > maxResults || len(r.b) != count*size {
		return nil, ErrMalformed
	}
	v := &lweView{msg: msg, count: count, size: size, kind: kind}
	// Range-check every residue: b (nmod values) then a (nmod × N).
	for k := range count {
		lwe := s.lweAt(v, k)
		for i, qi := range s.moduli {
			if getU64(lwe[8*i:]) >= qi {
				return nil, ErrMalformed
			}
		}
		a := lwe[8*len(s.moduli):]
		for i, qi := range s.moduli {
			row := a[8*s.n*i : 8*s.n*(i+1)]
			for j := 0; j < len(row); j += 8 {
				if getU64(row[j:]) >= qi {
					return nil, ErrMalformed
				}
			}
		}
	}
	return v, nil
}

// ResultCount returns the number of LWE ciphertexts (inner products) in a
// Result message of either kind, after full validation. Receivers of a
// Result use it to check, before producing a release share, that the
// Result holds exactly the number of statistics the protocol step allows.
func (s *Session) ResultCount(result []byte) (int, error) {
	v, err := s.parseResult(result)
	if err != nil {
		return 0, err
	}
	return v.count, nil
}

// innerSecret returns (Σ_j a_j·s_j) mod q_i for the i-th residue row of a.
func (s *Session) innerSecret(a []byte, i int) uint64 {
	qi := s.moduli[i]
	row := a[8*s.n*i : 8*s.n*(i+1)]
	var phi, plo, nhi, nlo, c uint64
	for j, sj := range s.skSigned {
		switch sj {
		case 1:
			plo, c = bits.Add64(plo, getU64(row[8*j:]), 0)
			phi += c
		case -1:
			nlo, c = bits.Add64(nlo, getU64(row[8*j:]), 0)
			nhi += c
		}
	}
	p := bits.Rem64(phi, plo, qi)
	n := bits.Rem64(nhi, nlo, qi)
	return subMod(p, n, qi)
}

func subMod(a, b, q uint64) uint64 {
	if a >= b {
		return a - b
	}
	return a + q - b
}

func addMod(a, b, q uint64) uint64 {
	r := a + b // a, b < q < 2^62
	if r >= q {
		r -= q
	}
	return r
}

// ReleaseShare is the release step R1, run by the party that is NOT the
// receiver, and only after its policy engine approved the release of this
// Result to target. It returns, for every LWE ciphertext (a, b) of the
// Result, the key-switching share d = <a, s_self> + e with e uniform in
// [-2^FloodBits, 2^FloodBits) (noise flooding), i.e. the constant-coefficient
// projection of a multiparty.KeySwitchShare from the collective key to the
// receiver's key. The share is bound to the Result's digest.
//
// Errors: ErrRole if target is this party, ErrMalformed, ErrShareReused if
// a share was already produced for any of these ciphertexts.
func (s *Session) ReleaseShare(result []byte, target Role) ([]byte, error) {
	if (target != Bank && target != Partner) || target == s.role {
		return nil, ErrRole
	}
	v, err := s.parseResult(result)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	defer since(t0, &s.prof.share)
	nmod := len(s.moduli)
	digests := make([][32]byte, v.count)
	for k := range v.count {
		digests[k] = sha256.Sum256(s.lweAt(v, k)[8*nmod:]) // the public part a
	}
	if err := s.guard.Claim(digests); err != nil {
		return nil, err
	}
	out := make([]byte, 0, headerLen+1+32+4+8*nmod*v.count)
	out = putHeader(out, msgReleaseShare)
	out = append(out, byte(target))
	rd := sha256.Sum256(result)
	out = append(out, rd[:]...)
	out = appendU32(out, uint32(v.count))
	shares := make([]uint64, v.count*nmod)
	parallel(v.count, func(next func() (int, bool)) {
		for k, ok := next(); ok; k, ok = next() {
			a := s.lweAt(v, k)[8*nmod:]
			for i := range s.moduli {
				shares[k*nmod+i] = s.innerSecret(a, i)
			}
		}
	})
	floodBits := uint(s.p.FloodBits)
	if v.kind == msgResultReal {
		floodBits = realFloodBits
	}
	for k := range v.count {
		flood, err := s.sampleFlood(floodBits)
		if err != nil {
			return nil, err
		}
		for i, qi := range s.moduli {
			out = appendU64(out, addMod(shares[k*nmod+i], flood[i], qi))
		}
	}
	return out, nil
}

// sampleFlood returns the residues of e uniform in [-2^F, 2^F).
func (s *Session) sampleFlood(f uint) ([]uint64, error) {
	var buf [16]byte
	if _, err := io.ReadFull(s.random, buf[:]); err != nil {
		return nil, fmt.Errorf("fedlearn: reading randomness: %w", err)
	}
	lo, hi := getU64(buf[:]), getU64(buf[8:])
	// keep F+1 bits
	if f+1 < 64 {
		lo &= 1<<(f+1) - 1
		hi = 0
	} else if f+1 < 128 {
		hi &= 1<<(f+1-64) - 1
	}
	var offHi, offLo uint64 // 2^F
	if f < 64 {
		offLo = 1 << f
	} else {
		offHi = 1 << (f - 64)
	}
	res := make([]uint64, len(s.moduli))
	for i, qi := range s.moduli {
		res[i] = subMod(bits.Rem64(hi, lo, qi), bits.Rem64(offHi, offLo, qi), qi)
	}
	return res, nil
}

// Decrypt is the release step R2, run by the receiver: it combines the
// peer's share with its own secret-key share and decodes each inner product
// as a signed integer in (-t/2, t/2). Errors: ErrMalformed, ErrRole if the
// share was made for another receiver, ErrState if the share does not belong
// to this Result.
func (s *Session) Decrypt(result, peerShare []byte) ([]int64, error) {
	var out []int64
	err := s.phases(result, peerShare, msgResult, func(n int) { out = make([]int64, n) },
		func(k int, v *big.Int) { out[k] = s.roundToT(v) })
	return out, err
}

// DecryptReal is Decrypt for a Result of the packed kernel: it returns each
// centred phase (signal·scale + noise + flooding) as a float64, for the
// caller to scale (PackedColumns.Unit).
func (s *Session) DecryptReal(result, peerShare []byte) ([]float64, error) {
	var out []float64
	err := s.phases(result, peerShare, msgResultReal, func(n int) { out = make([]float64, n) },
		func(k int, v *big.Int) { out[k], _ = new(big.Float).SetInt(v).Float64() })
	return out, err
}

// phases checks the share against the Result and calls put with the
// centred phase (b + ⟨a, s_B + s_P⟩ + flooding, in (−Q/2, Q/2]) of every
// LWE ciphertext; alloc receives their count first.
func (s *Session) phases(result, peerShare []byte, kind byte, alloc func(int), put func(int, *big.Int)) error {
	v, err := s.parseResultKind(result, kind)
	if err != nil {
		return err
	}
	body, err := checkHeader(peerShare, msgReleaseShare)
	if err != nil {
		return err
	}
	r := reader{b: body}
	target := Role(r.u8())
	digest := r.take(32)
	count := int(r.u32())
	if r.err || count != v.count || len(r.b) != 8*len(s.moduli)*count {
		return ErrMalformed
	}
	if target != s.role {
		return ErrRole
	}
	if rd := sha256.Sum256(result); [32]byte(digest) != rd {
		return ErrState
	}
	t0 := time.Now()
	defer since(t0, &s.prof.decrypt)
	nmod := len(s.moduli)
	d := make([]uint64, nmod*count)
	for k := range d {
		d[k] = r.u64()
		if d[k] >= s.moduli[k%nmod] {
			return ErrMalformed
		}
	}
	alloc(count)
	crt := s.crtBasis()
	halfQ := new(big.Int).Rsh(s.q, 1)
	parallel(count, func(next func() (int, bool)) {
		acc, tmp := new(big.Int), new(big.Int)
		for k, ok := next(); ok; k, ok = next() {
			lwe := s.lweAt(v, k)
			a := lwe[8*nmod:]
			acc.SetInt64(0)
			for i, qi := range s.moduli {
				x := addMod(getU64(lwe[8*i:]), d[k*nmod+i], qi)
				x = addMod(x, s.innerSecret(a, i), qi)
				tmp.SetUint64(x)
				acc.Add(acc, tmp.Mul(tmp, crt[i]))
			}
			acc.Mod(acc, s.q)
			if acc.Cmp(halfQ) > 0 {
				acc.Sub(acc, s.q)
			}
			put(k, acc)
		}
	})
	return nil
}

// crtBasis returns (Q/q_i)·((Q/q_i)^-1 mod q_i).
func (s *Session) crtBasis() []*big.Int {
	out := make([]*big.Int, len(s.moduli))
	for i, qi := range s.moduli {
		bq := new(big.Int).SetUint64(qi)
		qh := new(big.Int).Quo(s.q, bq)
		inv := new(big.Int).ModInverse(new(big.Int).Mod(qh, bq), bq)
		out[i] = qh.Mul(qh, inv)
	}
	return out
}

// roundToT maps a centered V ≈ Δ·m + e to m = round(t·V/Q), centered mod t.
func (s *Session) roundToT(v *big.Int) int64 {
	neg := v.Sign() < 0
	num := new(big.Int).Abs(v)
	num.Mul(num, s.t)
	num.Add(num, new(big.Int).Rsh(s.q, 1))
	num.Quo(num, s.q)
	if neg {
		num.Neg(num)
	}
	num.Mod(num, s.t)
	m := num.Uint64()
	if m >= s.tHalf {
		return int64(m) - int64(1)<<s.p.LogT
	}
	return int64(m)
}

// AddNoise adds the integer noise[k] to the k-th encrypted inner product of
// a Result (b ← b + Δ·noise[k]); used by the evaluator for differential
// privacy before the release. Errors: ErrMalformed, or a length mismatch.
func (s *Session) AddNoise(result []byte, noise []int64) ([]byte, error) {
	v, err := s.parseResultKind(result, msgResult)
	if err != nil {
		return nil, err
	}
	if len(noise) != v.count {
		return nil, fmt.Errorf("fedlearn: %d noise values for %d results", len(noise), v.count)
	}
	out := append([]byte(nil), result...)
	w := &lweView{msg: out, count: v.count, size: v.size}
	for k, eta := range noise {
		lwe := s.lweAt(w, k)
		for i, qi := range s.moduli {
			putU64(lwe[8*i:], addMod(getU64(lwe[8*i:]), mulModSigned(eta, s.delta[i], qi), qi))
		}
	}
	return out, nil
}
