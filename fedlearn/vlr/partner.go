package vlr

import (
	"fmt"
	"math"
	"slices"

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
	pending int // bit 1: residual made, bit 2: result made
	nStep   uint64
	exps    []int                  // the public term exponents (termExponents)
	kexp    int                    // the residual exponent (residualExponent)
	resid   *fedlearn.PackedVector // Enc(r) of this step
	cols    *fedlearn.PackedColumns
	msg     []byte // the last P1 message, reused for the next
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
	tab, err := NewCondTable(cfg.Degree, cfg.Range)
	if err != nil {
		return nil, err
	}
	p.exps = termExponents(tab)
	p.kexp = residualExponent(p.exps, cfg.Range)
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
	r := p.cfg.Range
	forRows(p.length, func(lo, hi int) {
		for j, c := range p.x {
			if wj := p.w[j]; wj != 0 {
				for i, v := range c[lo:hi] {
					u[lo+i] += wj * v
				}
			}
		}
		for i := lo; i < hi; i++ {
			u[i] = math.Max(-r, math.Min(r, u[i]))
		}
	})
	return u
}

// Residual is step P1: on the bank's sealed terms z_a, a = 0…D, the
// partner computes u_P = clip(X_P·w_P, ±R) and combines
// r = Σ_a z_a ⊙ u_P^a·2^(e_a−k) = (d + i·ℓ)·2^(−k) under the collective key
// (fedlearn.CombinePacked), d_i = mask_i·(σ̃(u_B,i + u_P,i) − y_i) the
// residual and ℓ_i the loss term of row i. It returns Enc(r),
// re-randomised, for the bank; EvaluatePartnerGradient uses it too. The
// message is valid until the next call, which reuses its memory.
func (p *Partner) Residual(bankTerms []byte) ([]byte, error) {
	if p.pending != 0 {
		return nil, ErrOrder
	}
	bv, err := parseEncVecs(bankTerms, msgBankTerms)
	if err != nil {
		return nil, err
	}
	if err := checkStep(bv, p.step, p.cfg.Degree+1); err != nil {
		return nil, err
	}
	if bv.rows == 0 || bv.rows > uint64(p.length) {
		return nil, fmt.Errorf("%w: bank terms for %d rows", ErrMalformed, bv.rows)
	}
	if !slices.Equal(bv.scales, p.exps) {
		return nil, fmt.Errorf("%w: term exponents %v, the public rule for degree %d and range %g gives %v", ErrMalformed, bv.scales, p.cfg.Degree, p.cfg.Range, p.exps)
	}
	k := p.kexp
	u := p.UP()
	v, err := p.sess.CombinePacked(bv.chunks, weightBits, func(a, lo, hi int, dst []float64) {
		f := math.Exp2(float64(bv.scales[a] - k))
		for i, x := range u[lo:hi] {
			w := f
			for range a {
				w *= x
			}
			dst[i] = w
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	msg, err := publishResidual(p.sess, p.msg, uint32(p.step), k, v)
	if err != nil {
		p.sess.RecyclePacked(v)
		return nil, err
	}
	p.resid, p.nStep, p.pending, p.msg = v, bv.rows, 1, msg
	return msg, nil
}

// EvaluatePartnerGradient is step P2: for every own feature j the partner
// evaluates Σ_i x_P,ij·d_i on Enc(r) of step P1, with its feature columns
// encoded once per job. Returns a Result with one statistic per partner
// feature, for the bank's share (B3).
func (p *Partner) EvaluatePartnerGradient() ([]byte, error) {
	if p.pending != 1 {
		return nil, ErrOrder
	}
	if p.cols == nil {
		var err error
		if p.cols, err = packedColumns(p.sess, p.length, p.x); err != nil {
			return nil, err
		}
	}
	res, err := p.sess.PackedInnerProducts(p.resid, p.cols)
	if err != nil {
		return nil, err
	}
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
	dec, err := p.sess.DecryptReal(ownResult, bankShare)
	if err != nil {
		return err
	}
	if len(dec) != len(p.x) {
		return ErrMalformed
	}
	for j, v := range released(dec, p.cols, p.kexp) {
		g := v/float64(p.nStep) + p.cfg.L2*p.w[j]
		p.vel[j] = p.cfg.Momentum*p.vel[j] - p.eta*g
		p.w[j] += p.vel[j]
	}
	p.step++
	p.pending = 0
	p.sess.RecyclePacked(p.resid)
	p.resid = nil
	return nil
}
