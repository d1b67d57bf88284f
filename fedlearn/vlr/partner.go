package vlr

import (
	"fmt"
	"math"

	"github.com/tandem-dev/tandem/fedlearn"
)

// Partner is the partner's local state: its standardised features over all
// L positions (it does not know which are matched), its weights and the
// per-step values. It never holds labels or the match indicator.
type Partner struct {
	sess *fedlearn.Session
	cfg  Config

	length   int
	pBank    int
	x        [][]float64
	mean, sd []float64
	w, vel   []float64
	eta      float64 // the learning rate, capped for this party's features (step.go)

	step    int
	uP      []float64
	pending int // bit 1: powers sent, bit 2: result made
	scale   []int
	nStep   uint64
}

// NewPartner prepares the partner side. cols are its raw features,
// column-major over the L aligned positions; bankFeatures is the number of
// bank features of the job spec (the bank's release then has bankFeatures+2
// statistics: features, intercept, validation loss); 0 for a partner-only
// model.
func NewPartner(s *fedlearn.Session, cfg Config, cols [][]float64, bankFeatures int) (*Partner, error) {
	if s == nil || s.Role() != fedlearn.Partner {
		return nil, fmt.Errorf("%w: need a partner session", ErrConfig)
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if len(cols) == 0 || bankFeatures < 0 || bankFeatures > 4096 {
		return nil, ErrConfig
	}
	L := len(cols[0])
	if err := columnsLayout(cols, L, 1); err != nil {
		return nil, err
	}
	p := &Partner{sess: s, cfg: cfg, length: L, pBank: bankFeatures}
	p.x = make([][]float64, len(cols))
	for j, c := range cols {
		p.x[j] = append([]float64(nil), c...)
	}
	p.mean, p.sd = standardise(p.x, nil)
	p.eta = cappedRate(cfg.LearningRate, p.x, nil, false)
	p.w = make([]float64, len(cols))
	p.vel = make([]float64, len(cols))
	return p, nil
}

// StepSize returns the learning rate this party uses: the agreed one, or
// less when its features call for the cap of step.go.
func (p *Partner) StepSize() float64 { return p.eta }

// Weights returns the partner's coefficients in standardised units.
func (p *Partner) Weights() []float64 { return append([]float64(nil), p.w...) }

// Standardisation returns the partner's per-feature mean and sd (over all
// L positions).
func (p *Partner) Standardisation() (mean, sd []float64) { return p.mean, p.sd }

// UP returns the partner's clipped partial predictor clip(X_P·w_P, ±R).
func (p *Partner) UP() []float64 {
	u := make([]float64, p.length)
	for j, c := range p.x {
		wj := p.w[j]
		if wj == 0 {
			continue
		}
		for i, v := range c {
			u[i] += wj * v
		}
	}
	r := p.cfg.Range
	for i, v := range u {
		u[i] = math.Max(-r, math.Min(r, v))
	}
	return u
}

func (p *Partner) ensureU() {
	if p.uP == nil {
		p.uP = p.UP()
	}
}

// EncryptPowers is step P1: the partner computes u_P = clip(X_P·w_P, ±R)
// and encrypts u_P^a for a = 1…D at the public scale 2^(VectorBits −
// ⌈a·log₂R⌉). The bank evaluates its gradient against them.
func (p *Partner) EncryptPowers() ([]byte, error) {
	if p.pending&1 != 0 {
		return nil, ErrOrder
	}
	p.ensureU()
	scales := make([]int, p.cfg.Degree)
	for a := range scales {
		scales[a] = scaleFor(math.Pow(p.cfg.Range, float64(a+1)), p.cfg.VectorBits)
	}
	// Vector a is u_P^(a+1): fill is called in order and vec keeps the
	// previous power.
	msg, err := sealVectors(p.sess, msgPartnerPowers, uint32(p.step), 0, p.length, scales, func(a int, vec []float64) {
		for i, u := range p.uP {
			if a == 0 {
				vec[i] = u
			} else {
				vec[i] *= u
			}
		}
	})
	if err != nil {
		return nil, err
	}
	p.pending |= 1
	return msg, nil
}

// EvaluatePartnerGradient is step P2: on the bank's encrypted residual
// terms Enc(B_a), a = 0…D, the partner evaluates for every own feature j
// Σ_a Σ_i x_P,ij·u_P,i^a·B_a,i (= Σ_i x_P,ij·d_i), summed over a under
// encryption. Returns a Result with one statistic per partner feature, for
// the bank's share (B3).
func (p *Partner) EvaluatePartnerGradient(bankTerms []byte) ([]byte, error) {
	if p.pending&2 != 0 {
		return nil, ErrOrder
	}
	bv, err := parseEncVecs(bankTerms, msgBankTerms)
	if err != nil {
		return nil, err
	}
	if bv.step != uint32(p.step) || len(bv.chunks) != p.cfg.Degree+1 || bv.rows == 0 || bv.rows > uint64(p.length) {
		return nil, fmt.Errorf("%w: bank terms for step %d with %d vectors", ErrMalformed, bv.step, len(bv.chunks))
	}
	p.ensureU()
	// u_P^a for a = 0…D, computed once: the kernel asks for columns
	// x_j⊙u_P^a concurrently and in any order.
	pows := make([][]float64, p.cfg.Degree+1)
	pows[0] = make([]float64, p.length)
	for i := range pows[0] {
		pows[0][i] = 1
	}
	for a := 1; a < len(pows); a++ {
		pows[a] = make([]float64, p.length)
		for i, u := range p.uP {
			pows[a][i] = pows[a-1][i] * u
		}
	}
	col := func(a, j int, dst []float64) {
		xj, pw := p.x[j], pows[a]
		for i := range dst {
			dst[i] = xj[i] * pw[i]
		}
	}
	res, S, err := evaluate(p.sess, bv.chunks, bv.scales, len(p.x), p.length, col)
	if err != nil {
		return nil, err
	}
	p.scale, p.nStep = S, bv.rows
	p.pending |= 2
	return res, nil
}

// ShareForBank is step P3: after its policy approved, the partner produces
// the release share of the bank's Result towards the bank, after checking
// that it holds exactly bankFeatures+2 statistics (the bank's gradient,
// intercept and the validation-loss aggregate).
func (p *Partner) ShareForBank(bankResult []byte) ([]byte, error) {
	n, err := p.sess.ResultCount(bankResult)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if n != p.pBank+2 {
		return nil, fmt.Errorf("%w: bank result has %d statistics, allowed %d", ErrMalformed, n, p.pBank+2)
	}
	return p.sess.ReleaseShare(bankResult, fedlearn.Bank)
}

// ApplyGradient is step P4: the partner decrypts its own gradient with the
// bank's share, g_P = Σ/n_step + λ·w_P, and takes a momentum step.
func (p *Partner) ApplyGradient(ownResult, bankShare []byte) error {
	if p.pending != 3 {
		return ErrOrder
	}
	vals, err := p.sess.Decrypt(ownResult, bankShare)
	if err != nil {
		return err
	}
	if len(vals) != len(p.x) {
		return ErrMalformed
	}
	for j, v := range vals {
		g := float64(v)*math.Exp2(-float64(p.scale[j]))/float64(p.nStep) + p.cfg.L2*p.w[j]
		p.vel[j] = p.cfg.Momentum*p.vel[j] - p.eta*g
		p.w[j] += p.vel[j]
	}
	p.step++
	p.pending = 0
	p.uP = nil
	return nil
}
