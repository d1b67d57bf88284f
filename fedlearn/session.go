package fedlearn

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/bits"
	"runtime"
	"sync"
	"time"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/multiparty"
	"github.com/tuneinsight/lattigo/v6/ring"
	"github.com/tuneinsight/lattigo/v6/utils/sampling"

	"github.com/tandem-dev/tandem/internal/ntt"
)

// Role is a party of the two-party protocol.
type Role uint8

const (
	// Bank holds labels, group indicators and the match indicator; its
	// vectors are only ever sent encrypted.
	Bank Role = 1
	// Partner holds plaintext feature columns aligned on the same L positions.
	Partner Role = 2
)

func (r Role) String() string {
	switch r {
	case Bank:
		return "bank"
	case Partner:
		return "partner"
	}
	return "invalid-role"
}

var (
	// ErrState is returned when a step is called out of order (e.g.
	// EncryptVector before the collective key exists). Programming error.
	ErrState = errors.New("fedlearn: step called out of order")
	// ErrRole is returned when a step is invoked by the wrong party.
	ErrRole = errors.New("fedlearn: wrong role for this step")
)

// Session is one party's state for one job: its secret-key share, the
// collective public key once both shares are known, and its share guard.
// A Session is not safe for concurrent use; its methods parallelise
// internally over runtime.GOMAXPROCS(0) workers.
type Session struct {
	role   Role
	p      Params
	params rlwe.Parameters
	ringQ  *ring.Ring
	level  int
	moduli []uint64
	plans  []*ntt.Plan // the transforms' plans (nil: lattigo's), see toNTT
	n      int

	skSigned []int8 // this party's ternary secret-key share, coefficient form
	sk       *rlwe.SecretKey

	ckg      multiparty.PublicKeyGenProtocol
	crp      multiparty.PublicKeyGenCRP
	ownShare multiparty.PublicKeyGenShare
	pk       *rlwe.PublicKey

	q      *big.Int
	t      *big.Int
	delta  []uint64 // Δ = ⌊Q/t⌋ mod q_i
	deltaS []uint64 // Shoup constants of delta (shoup)
	tHalf  uint64
	random io.Reader
	guard  *ShareGuard

	prof phaseTimes
	slot *slotCtx // slot encoding for masked releases (score.go), lazily
	// enc is the packed kernel's encoder (packed.go), built on first use.
	encOnce sync.Once
	enc     *realEncoder
	// spare holds ciphertexts of vectors already evaluated, for the next
	// parseVector: a training step parses hundreds of MB of them, and
	// fresh memory cost as much in page faults as the parsing itself.
	spare []*rlwe.Ciphertext
}

// NewSession draws this party's secret-key share from rand (crypto/rand if
// nil; rand also feeds the release flooding noise, so it must be a CSPRNG
// outside tests) and prepares the public-key generation round whose common random
// polynomial is derived from the 32-byte job seed both parties agreed on.
// It returns ErrParams for inconsistent parameters.
func NewSession(role Role, p Params, seed [32]byte, random io.Reader) (*Session, error) {
	if role != Bank && role != Partner {
		return nil, ErrRole
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	if random == nil {
		random = rand.Reader
	}
	params, err := rlwe.NewParametersFromLiteral(rlwe.ParametersLiteral{
		LogN:    p.LogN,
		LogQ:    p.LogQ,
		NTTFlag: true,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrParams, err)
	}
	s := &Session{
		role:   role,
		p:      p,
		params: params,
		ringQ:  params.RingQ(),
		level:  params.MaxLevel(),
		moduli: params.Q(),
		n:      params.N(),
		q:      params.QBigInt(),
		t:      new(big.Int).Lsh(big.NewInt(1), uint(p.LogT)),
		tHalf:  1 << (p.LogT - 1),
		random: random,
		guard:  NewShareGuard(),
	}
	s.plans = nttPlans(s.ringQ)
	delta := new(big.Int).Quo(s.q, s.t)
	for _, qi := range s.moduli {
		s.delta = append(s.delta, new(big.Int).Mod(delta, new(big.Int).SetUint64(qi)).Uint64())
		s.deltaS = append(s.deltaS, shoup(s.delta[len(s.delta)-1], qi))
	}

	// Secret-key share: ternary, sampled from a PRNG keyed by rand.
	var key [32]byte
	if _, err := io.ReadFull(random, key[:]); err != nil {
		return nil, fmt.Errorf("fedlearn: reading randomness: %w", err)
	}
	prng, err := sampling.NewKeyedPRNG(key[:])
	if err != nil {
		return nil, err
	}
	xs, err := ring.NewSampler(prng, s.ringQ, params.Xs(), false)
	if err != nil {
		return nil, err
	}
	s.sk = rlwe.NewSecretKey(params)
	xs.Read(s.sk.Value.Q)
	s.skSigned = make([]int8, s.n)
	q0 := s.moduli[0]
	for j, v := range s.sk.Value.Q.Coeffs[0] {
		switch v {
		case 0:
		case 1:
			s.skSigned[j] = 1
		case q0 - 1:
			s.skSigned[j] = -1
		default:
			panic("fedlearn: non-ternary secret")
		}
	}
	s.ringQ.NTT(s.sk.Value.Q, s.sk.Value.Q)
	s.ringQ.MForm(s.sk.Value.Q, s.sk.Value.Q)

	// §4 keys, step 1: CKG share for the common random polynomial derived
	// from the job seed (domain separated).
	crsKey := sha256.Sum256(append([]byte("tandem/fedlearn/v1/ckg-crs"), seed[:]...))
	crs, err := sampling.NewKeyedPRNG(crsKey[:])
	if err != nil {
		return nil, err
	}
	s.ckg = multiparty.NewPublicKeyGenProtocol(params)
	s.crp = s.ckg.SampleCRP(crs)
	s.ownShare = s.ckg.AllocateShare()
	s.ckg.GenShare(s.sk, s.crp, &s.ownShare)
	return s, nil
}

// Role returns the session's role.
func (s *Session) Role() Role { return s.role }

// N returns the number of positions per ciphertext (ring degree).
func (s *Session) N() int { return s.n }

// KeyGenShare returns this party's public-key generation share (step K1),
// to be sent to the peer. It may be called more than once (the share is
// fixed per session).
func (s *Session) KeyGenShare() ([]byte, error) {
	b := make([]byte, 0, headerLen+8*s.n*len(s.moduli))
	b = putHeader(b, msgKeyGenShare)
	return appendResidues(b, s.ownShare.Value.Q.Coeffs), nil
}

// SetPeerKeyGenShare parses the peer's share (step K2) and derives the
// collective public key. It returns ErrMalformed for bad input and ErrState
// if the key was already set.
func (s *Session) SetPeerKeyGenShare(msg []byte) error {
	if s.pk != nil {
		return ErrState
	}
	body, err := checkHeader(msg, msgKeyGenShare)
	if err != nil {
		return err
	}
	r := reader{b: body}
	peer := s.ckg.AllocateShare()
	r.residues(s.moduli, s.n, peer.Value.Q.Coeffs)
	if !r.done() {
		return ErrMalformed
	}
	agg := s.ckg.AllocateShare()
	s.ckg.AggregateShares(s.ownShare, peer, &agg)
	pk := rlwe.NewPublicKey(s.params)
	s.ckg.GenPublicKey(agg, s.crp, pk)
	s.pk = pk
	return nil
}

// EncryptVector encrypts an aligned vector of length L (step E1, bank side)
// under the collective key, ⌈L/N⌉ ciphertexts of N positions each, position
// i in coefficient i mod N of chunk i/N. Entries must satisfy |v_i| < t/2.
// The chunk messages carry L and max|v_i| (public), so the evaluator can
// check plaintext overflow.
func (s *Session) EncryptVector(v []int64) ([][]byte, error) {
	if len(v) == 0 || len(v) > s.p.MaxLength { // before allocating for it
		return nil, fmt.Errorf("fedlearn: vector length %d out of range", len(v))
	}
	chunks, size := s.VectorLayout(len(v))
	out := make([][]byte, chunks)
	for k := range out {
		out[k] = make([]byte, size)
	}
	if err := s.EncryptVectorInto(v, out); err != nil {
		return nil, err
	}
	return out, nil
}

// VectorLayout returns the number of chunk messages of an encrypted vector
// of length L and the size of each, for EncryptVectorInto.
func (s *Session) VectorLayout(length int) (chunks, size int) {
	return (length + s.n - 1) / s.n, ctMsgLen(s)
}

// EncryptVectorInto is EncryptVector writing chunk message k into dst[k],
// which must be exactly the size VectorLayout gives: a caller building one
// message of many vectors encrypts them in place, without a copy.
func (s *Session) EncryptVectorInto(v []int64, dst [][]byte) error {
	if s.pk == nil {
		return ErrState
	}
	if len(v) == 0 || len(v) > s.p.MaxLength {
		return fmt.Errorf("fedlearn: vector length %d out of range", len(v))
	}
	chunks, size := s.VectorLayout(len(v))
	if err := checkChunkBuffers(dst, chunks, size); err != nil {
		return err
	}
	var cmax uint64
	for _, x := range v {
		a := absU(x)
		if a >= s.tHalf {
			return ErrOverflow
		}
		cmax = max(cmax, a)
	}
	t0 := time.Now()
	defer since(t0, &s.prof.encrypt)
	parallel(chunks, func(next func() (int, bool)) {
		enc := s.mustZeroEncryptor()
		ct := rlwe.NewCiphertext(s.params, 1, s.level)
		pt := s.ringQ.NewPoly()
		for k, ok := next(); ok; k, ok = next() {
			lo, hi := k*s.n, min((k+1)*s.n, len(v))
			for i, qi := range s.moduli {
				row := pt.Coeffs[i]
				clear(row)
				for j, x := range v[lo:hi] {
					row[j] = mulShoupSigned(x, s.delta[i], s.deltaS[i], qi) // |x| < t/2 < q
				}
			}
			if err := enc.Encrypt(ct, &pt); err != nil {
				panic(err) // keys and levels are fixed by construction
			}
			b := dst[k][:0:size] // capped: an append past it could not touch a neighbour
			b = putHeader(b, msgCiphertext)
			b = appendU32(b, uint32(k))
			b = appendU32(b, uint32(chunks))
			b = appendU64(b, uint64(len(v)))
			b = appendU64(b, cmax)
			b = appendResidues(b, ct.Value[0].Coeffs)
			b = appendResidues(b, ct.Value[1].Coeffs)
			if len(b) != size || &b[0] != &dst[k][0] {
				panic("fedlearn: chunk message size differs from ctMsgLen") // a layout bug, not input
			}
		}
	})
	return nil
}

// checkChunkBuffers checks the caller's buffers for an *Into encryption:
// exactly chunks of them, each exactly size bytes.
func checkChunkBuffers(dst [][]byte, chunks, size int) error {
	if len(dst) != chunks {
		return fmt.Errorf("fedlearn: %d chunk buffers for %d chunks", len(dst), chunks)
	}
	for _, d := range dst {
		if len(d) != size {
			return fmt.Errorf("fedlearn: chunk buffer of %d bytes, want %d", len(d), size)
		}
	}
	return nil
}

func ctMsgLen(s *Session) int { return headerLen + 24 + 2*8*s.n*len(s.moduli) }

// encVector is a parsed, validated encrypted vector.
type encVector struct {
	length int
	cmax   uint64
	cts    []*rlwe.Ciphertext
}

// parseVector validates the chunk messages of one encrypted vector.
func (s *Session) parseVector(chunks [][]byte) (*encVector, error) {
	if len(chunks) == 0 || len(chunks) > (s.p.MaxLength+s.n-1)/s.n {
		return nil, ErrMalformed
	}
	ev := &encVector{cts: make([]*rlwe.Ciphertext, len(chunks))}
	for k, msg := range chunks {
		body, err := checkHeader(msg, msgCiphertext)
		if err != nil {
			return nil, err
		}
		r := reader{b: body}
		idx, total, length, cmax := r.u32(), r.u32(), r.u64(), r.u64()
		if r.err || int(idx) != k || int(total) != len(chunks) ||
			length == 0 || length > uint64(s.p.MaxLength) ||
			(int(length)+s.n-1)/s.n != len(chunks) || cmax >= s.tHalf {
			return nil, ErrMalformed
		}
		if k == 0 {
			ev.length, ev.cmax = int(length), cmax
		} else if int(length) != ev.length || cmax != ev.cmax {
			return nil, ErrMalformed
		}
		ct := s.newCiphertext()
		ev.cts[k] = ct
		r.residues(s.moduli, s.n, ct.Value[0].Coeffs)
		r.residues(s.moduli, s.n, ct.Value[1].Coeffs)
		if !r.done() {
			s.recycle(ev)
			return nil, ErrMalformed
		}
	}
	return ev, nil
}

// newCiphertext returns a spare ciphertext or a new one (contents
// undefined: the caller overwrites every coefficient).
func (s *Session) newCiphertext() *rlwe.Ciphertext {
	if k := len(s.spare); k > 0 {
		ct := s.spare[k-1]
		s.spare = s.spare[:k-1]
		return ct
	}
	return rlwe.NewCiphertext(s.params, 1, s.level)
}

// recycle keeps the ciphertexts of vectors no longer used for the next
// parseVector. The caller must not use the vectors afterwards.
func (s *Session) recycle(evs ...*encVector) {
	for _, ev := range evs {
		for _, ct := range ev.cts {
			if ct != nil {
				s.spare = append(s.spare, ct)
			}
		}
		ev.cts = nil
	}
}

// parallel runs work on min(GOMAXPROCS, n) goroutines sharing a counter.
func parallel(n int, work func(next func() (int, bool))) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var mu sync.Mutex
	i := 0
	next := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if i >= n {
			return 0, false
		}
		i++
		return i - 1, true
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(next)
		}()
	}
	wg.Wait()
}

func absU(x int64) uint64 {
	if x < 0 {
		return uint64(-x)
	}
	return uint64(x)
}

// shoup returns ⌊d·2^64/q⌋ for d < q, the constant of mulShoupSigned.
func shoup(d, q uint64) uint64 {
	quo, _ := bits.Div64(d, 0, q)
	return quo
}

// mulShoupSigned returns x·d mod q for |x| < q < 2^63 and d < q with dS =
// shoup(d, q): Shoup's multiplication by a fixed constant, a multiply
// and a conditional subtraction instead of the two hardware divisions of
// mulModSigned (the encoding of every encrypted chunk runs it N times per
// limb).
func mulShoupSigned(x int64, d, dS, q uint64) uint64 {
	a := absU(x)
	hi, _ := bits.Mul64(a, dS)
	r := a*d - hi*q // in [0, 2q)
	if r >= q {
		r -= q
	}
	if x < 0 && r != 0 {
		r = q - r
	}
	return r
}

// mulModSigned returns x·d mod q for |x| < 2^63, d < q.
func mulModSigned(x int64, d, q uint64) uint64 {
	if x == 0 {
		return 0
	}
	hi, lo := bits.Mul64(absU(x)%q, d)
	r := bits.Rem64(hi, lo, q)
	if x < 0 && r != 0 {
		r = q - r
	}
	return r
}

// signedMod returns x mod q in [0, q).
func signedMod(x int64, q uint64) uint64 {
	if x >= 0 {
		return uint64(x) % q
	}
	r := absU(x) % q
	if r == 0 {
		return 0
	}
	return q - r
}
