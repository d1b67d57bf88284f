package vlr

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/tandem-dev/tandem/fedlearn"
)

// Bank is the bank's local state: its standardised features (zero at
// unmatched positions), labels, match indicator, validation split, weights
// (its features + intercept) and the per-step intermediate values. Never
// serialised to the partner.
type Bank struct {
	sess *fedlearn.Session
	cfg  Config
	tab  *CondTable

	length   int
	pPartner int
	x        [][]float64 // [feature][position], standardised over matched rows
	mean, sd []float64
	y        []float64
	train    []int // training positions
	val      []int // validation positions
	isVal    []bool

	w, vel []float64 // features…, intercept
	eta    float64   // the learning rate, capped for this party's features (step.go)

	epoch, step int
	batches     [][]int
	mask        []float64 // current step's training mask (0/1)
	nStep       int
	uB          []float64
	beta        [][]float64 // [a][position]: β_a(u_B) (a ≥ 1), β_0 − y for a = 0
	pending     int         // 0 idle, 1 terms sent, 2 result made
	scale       []int       // S_j of the bank's Result
	local0      []float64   // plaintext a = 0 terms per output

	bestLoss float64
	bad      int
	done     bool
	history  []EpochReport
}

// EpochReport is what the bank learns per step: its own gradient norm and
// the loss aggregate.
type EpochReport struct {
	Epoch, Step int
	// ValLoss is the mean log-loss (polynomial approximation, before this
	// step's update) over the validation rows, or over every training row
	// when none are held out (OnTraining): then it measures convergence,
	// as glm's deviance criterion does, not overfitting.
	ValLoss    float64
	OnTraining bool
	GradNorm   float64 // ‖g_B‖ (bank's own gradient, incl. intercept)
	EndOfEpoch bool
	Stop       bool // early stopping or MaxEpochs reached after this step
}

// NewBank prepares the bank side. cols are the bank's raw features,
// column-major over the L aligned positions (values at unmatched positions
// are ignored), label[i] ∈ {0,1}, match[i] the match indicator;
// partnerFeatures is the number of partner features of the job spec (the
// size of the partner's release the bank will co-sign). cols may be empty:
// a partner-only model, where the bank contributes the label, the match
// indicator and the intercept, and its release is the intercept gradient
// and the validation-loss aggregate.
func NewBank(s *fedlearn.Session, cfg Config, cols [][]float64, label []float64, match []bool, partnerFeatures int) (*Bank, error) {
	if s == nil || s.Role() != fedlearn.Bank {
		return nil, fmt.Errorf("%w: need a bank session", ErrConfig)
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	L := len(match)
	if L == 0 || len(label) != L || partnerFeatures < 1 || partnerFeatures > 4096 {
		return nil, ErrConfig
	}
	x := make([][]float64, len(cols))
	for j, c := range cols {
		x[j] = append([]float64(nil), c...)
	}
	// Ignore values at unmatched positions before validation.
	for _, c := range x {
		if len(c) == L {
			for i := range c {
				if !match[i] {
					c[i] = 0
				}
			}
		}
	}
	if err := columnsLayout(x, L, 0); err != nil {
		return nil, err
	}
	tab, err := NewCondTable(cfg.Degree, cfg.Range)
	if err != nil {
		return nil, err
	}
	b := &Bank{sess: s, cfg: cfg, tab: tab, length: L, pPartner: partnerFeatures, x: x,
		y: make([]float64, L), isVal: make([]bool, L), bestLoss: math.Inf(1)}
	b.mean, b.sd = standardise(b.x, match)
	b.eta = cappedRate(cfg.LearningRate, b.x, match, true)
	var matched []int
	for i, m := range match {
		if m {
			if label[i] != 0 && label[i] != 1 {
				return nil, fmt.Errorf("%w: label must be 0 or 1", ErrConfig)
			}
			b.y[i] = label[i]
			matched = append(matched, i)
		}
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x766c72)) // "vlr"
	r.Shuffle(len(matched), func(i, j int) { matched[i], matched[j] = matched[j], matched[i] })
	nVal := int(math.Round(max(cfg.ValFraction, 0) * float64(len(matched))))
	b.val = append([]int(nil), matched[:nVal]...)
	b.train = append([]int(nil), matched[nVal:]...)
	if len(b.train) == 0 {
		return nil, fmt.Errorf("%w: no training rows", ErrConfig)
	}
	for _, i := range b.val {
		b.isVal[i] = true
	}
	b.w = make([]float64, len(x)+1)
	b.vel = make([]float64, len(x)+1)
	return b, nil
}

// Weights returns the bank's coefficients in standardised units (its
// features in order, then the intercept).
func (b *Bank) Weights() []float64 { return append([]float64(nil), b.w...) }

// Standardisation returns the bank's per-feature mean and sd (over matched
// rows): coefficient on the raw scale = w_j/sd_j, intercept − Σ w_j·mean_j/sd_j.
func (b *Bank) Standardisation() (mean, sd []float64) { return b.mean, b.sd }

// History returns the per-step reports.
func (b *Bank) History() []EpochReport { return b.history }

// Done reports whether training has stopped; the protocol layer tells the
// partner.
func (b *Bank) Done() bool { return b.done }

// TrainRows and ValRows return the training and validation positions.
func (b *Bank) TrainRows() []int { return b.train }
func (b *Bank) ValRows() []int   { return b.val }

// lossRows are the rows of the loss aggregate: the validation rows, or the
// training rows when none are held out.
func (b *Bank) lossRows() []int {
	if len(b.val) > 0 {
		return b.val
	}
	return b.train
}

func (b *Bank) nextBatch() {
	if len(b.batches) == 0 {
		rows := append([]int(nil), b.train...)
		if b.cfg.BatchSize > 0 && b.cfg.BatchSize < len(rows) {
			r := rand.New(rand.NewPCG(b.cfg.Seed, uint64(b.epoch)+1))
			r.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
			for lo := 0; lo < len(rows); lo += b.cfg.BatchSize {
				b.batches = append(b.batches, rows[lo:min(lo+b.cfg.BatchSize, len(rows))])
			}
		} else {
			b.batches = [][]int{rows}
		}
	}
	if b.mask == nil {
		b.mask = make([]float64, b.length)
	}
	clear(b.mask)
	for _, i := range b.batches[0] {
		b.mask[i] = 1
	}
	b.nStep = len(b.batches[0])
	b.batches = b.batches[1:]
}

// UB returns the bank's partial predictor u_B = intercept + X_B·w_B
// (standardised features) at every position (0 contribution at unmatched).
func (b *Bank) UB() []float64 {
	u := make([]float64, b.length)
	ic := b.w[len(b.x)]
	for i := range u {
		u[i] = ic
	}
	for j, c := range b.x {
		wj := b.w[j]
		if wj == 0 {
			continue
		}
		for i, v := range c {
			u[i] += wj * v
		}
	}
	return u
}

// EncryptResidualTerms is step B1 of a training step: the bank computes
// u_B and the residual-term vectors B_0 = mask⊙(β_0(u_B) − y) and
// B_a = mask⊙β_a(u_B) (a = 1…D), mask = match ⊙ training ⊙ batch, scales
// each by the public exponent for its table bound and encrypts them. The
// message also carries the number of rows of this step (normaliser of the
// partner's gradient; see README "Leakage").
func (b *Bank) EncryptResidualTerms() ([]byte, error) {
	if b.done {
		return nil, ErrDone
	}
	if b.pending != 0 {
		return nil, ErrOrder
	}
	b.nextBatch()
	D := b.cfg.Degree
	b.uB = b.UB()
	if b.beta == nil {
		b.beta = make([][]float64, D+1)
		for a := range b.beta {
			b.beta[a] = make([]float64, b.length)
		}
	}
	coef := make([]float64, D+1)
	for i, u := range b.uB {
		b.tab.Beta(u, coef)
		for a := range coef {
			b.beta[a][i] = coef[a]
		}
		b.beta[0][i] -= b.y[i]
	}
	scales := make([]int, D+1)
	for a := range scales {
		bound := b.tab.BMax[a] * 1.01
		if a == 0 {
			bound = 1 + b.tab.Error + 0.01
		}
		scales[a] = scaleFor(bound, b.cfg.VectorBits)
	}
	msg, err := sealVectors(b.sess, msgBankTerms, uint32(b.step), uint64(b.nStep), b.length, scales, func(a int, vec []float64) {
		for i := range vec {
			vec[i] = b.mask[i] * b.beta[a][i]
		}
	})
	if err != nil {
		return nil, err
	}
	b.pending = 1
	return msg, nil
}

// EvaluateBankGradient is step B2: on the partner's encrypted powers
// Enc(u_P^a), a = 1…D, the bank evaluates for every bank feature j (and
// the intercept) Σ_a Σ_i mask_i·x_ij·β_a(u_B,i)·u_P,i^a, plus the
// loss aggregate Σ_a Σ_i l_i·(λ_a(u_B,i) − y_i·[a=1])·u_P,i^a (l: the
// validation rows, or the training rows when none are held out),
// summed over a under encryption. The a = 0 terms are plaintext to the bank.
// Returns a Result (features + 2 statistics) for the partner's share (B3′/P3).
func (b *Bank) EvaluateBankGradient(powers []byte) ([]byte, error) {
	if b.pending != 1 {
		return nil, ErrOrder
	}
	pv, err := parseEncVecs(powers, msgPartnerPowers)
	if err != nil {
		return nil, err
	}
	D := b.cfg.Degree
	if pv.step != uint32(b.step) || len(pv.chunks) != D || pv.rows != 0 {
		return nil, fmt.Errorf("%w: partner powers for step %d with %d vectors", ErrMalformed, pv.step, len(pv.chunks))
	}
	// Loss coefficients λ_a(u_B) − y·[a=1] at the loss rows.
	soft := make([][]float64, D+1)
	for a := range soft {
		soft[a] = make([]float64, b.length)
	}
	coef := make([]float64, D+1)
	for _, i := range b.lossRows() {
		b.tab.Soft(b.uB[i], coef)
		for a := range coef {
			soft[a][i] = coef[a]
		}
		soft[1][i] -= b.y[i]
		soft[0][i] -= b.y[i] * b.uB[i]
	}
	p := len(b.x)
	nOut := p + 2 // features, intercept, validation loss
	col := func(t, j int, dst []float64) {
		a := t + 1
		switch {
		case j < p:
			xj, be := b.x[j], b.beta[a]
			for i := range dst {
				dst[i] = b.mask[i] * xj[i] * be[i]
			}
		case j == p:
			be := b.beta[a]
			for i := range dst {
				dst[i] = b.mask[i] * be[i]
			}
		default:
			copy(dst, soft[a])
		}
	}
	res, S, err := evaluate(b.sess, pv.chunks, pv.scales, nOut, b.length, col)
	if err != nil {
		return nil, err
	}
	b.scale = S
	b.local0 = make([]float64, nOut)
	for j := range p {
		var s float64
		for i, x := range b.x[j] {
			s += b.mask[i] * x * b.beta[0][i]
		}
		b.local0[j] = s
	}
	for i := range b.length {
		b.local0[p] += b.mask[i] * b.beta[0][i]
	}
	for _, i := range b.lossRows() {
		b.local0[p+1] += soft[0][i]
	}
	b.pending = 2
	return res, nil
}

// ShareForPartner is step B3: after its policy approved, the bank produces
// the release share of the partner's Result towards the partner. It checks
// that the Result holds exactly the partner's gradient length (one
// statistic per partner feature) before sharing.
func (b *Bank) ShareForPartner(partnerResult []byte) ([]byte, error) {
	n, err := b.sess.ResultCount(partnerResult)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if n != b.pPartner {
		return nil, fmt.Errorf("%w: partner result has %d statistics, gradient has %d", ErrMalformed, n, b.pPartner)
	}
	return b.sess.ReleaseShare(partnerResult, fedlearn.Partner)
}

// ApplyGradient is step B4: the bank decrypts its own Result with the
// partner's share, forms g_B = (Σ…)/n_step + λ·w (intercept unpenalised),
// takes a momentum step and, at the end of an epoch, applies early stopping
// on the validation loss.
func (b *Bank) ApplyGradient(ownResult, partnerShare []byte) (EpochReport, error) {
	if b.pending != 2 {
		return EpochReport{}, ErrOrder
	}
	vals, err := b.sess.Decrypt(ownResult, partnerShare)
	if err != nil {
		return EpochReport{}, err
	}
	p := len(b.x)
	if len(vals) != p+2 {
		return EpochReport{}, ErrMalformed
	}
	g := make([]float64, p+1)
	var norm float64
	for j := range p + 1 {
		g[j] = (float64(vals[j])*math.Exp2(-float64(b.scale[j])) + b.local0[j]) / float64(b.nStep)
		if j < p {
			g[j] += b.cfg.L2 * b.w[j]
		}
		norm += g[j] * g[j]
	}
	rows := b.lossRows()
	rep := EpochReport{Epoch: b.epoch, Step: b.step, GradNorm: math.Sqrt(norm), OnTraining: len(b.val) == 0,
		ValLoss: (float64(vals[p+1])*math.Exp2(-float64(b.scale[p+1])) + b.local0[p+1]) / float64(len(rows))}
	for j := range g {
		b.vel[j] = b.cfg.Momentum*b.vel[j] - b.eta*g[j]
		b.w[j] += b.vel[j]
	}
	b.step++
	b.pending = 0
	if len(b.batches) == 0 {
		rep.EndOfEpoch = true
		b.epoch++
		if b.cfg.Patience > 0 {
			if rep.ValLoss < b.bestLoss*(1-b.cfg.Tol) {
				b.bestLoss, b.bad = rep.ValLoss, 0
			} else if b.bad++; b.bad >= b.cfg.Patience {
				b.done = true
			}
		}
		if b.epoch >= b.cfg.MaxEpochs {
			b.done = true
		}
	}
	rep.Stop = b.done
	b.history = append(b.history, rep)
	return rep, nil
}
