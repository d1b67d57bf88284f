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
	soft        [][]float64 // [a][position]: λ_a(u_B) − y·[a=1] at the loss rows (a ≥ 1)
	lossLocal   float64     // Σ over the loss rows of λ_0(u_B) − y·u_B (the a = 0 loss term)
	pending     int         // 0 idle, 1 terms sent, 2 result made
	exps        []int       // public term exponents e_a (termExponents)
	kexp        int         // public residual exponent (residualExponent)
	cols        *fedlearn.PackedColumns
	msg         []byte // the last B1 message, reused for the next

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
		y: make([]float64, L), isVal: make([]bool, L), bestLoss: math.Inf(1), exps: termExponents(tab)}
	b.kexp = residualExponent(b.exps, cfg.Range)
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
	forRows(b.length, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			u[i] = ic
		}
		for j, c := range b.x {
			if wj := b.w[j]; wj != 0 {
				for i, v := range c[lo:hi] {
					u[lo+i] += wj * v
				}
			}
		}
	})
	return u
}

// EncryptResidualTerms is step B1 of a training step: the bank computes
// u_B and seals, for a = 0…D, z_a = (B_a + i·Λ_a)·2^(−e_a) with the residual
// terms B_0 = mask⊙(β_0(u_B) − y), B_a = mask⊙β_a(u_B) (mask = match ⊙
// training ⊙ batch) and the loss terms Λ_a = loss⊙(λ_a(u_B) − y·[a=1])
// (loss: the validation rows, or the training rows when none are held
// out; Λ_0 = 0, that term stays with the bank). The e_a are public
// (termExponents). The message also carries the number of rows of this
// step (normaliser of the partner's gradient; see README "Leakage").
// It is valid until the next call, which reuses its memory.
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
		b.beta, b.soft = make([][]float64, D+1), make([][]float64, D+1)
		for a := range b.beta {
			b.beta[a], b.soft[a] = make([]float64, b.length), make([]float64, b.length)
		}
	}
	forRows(b.length, func(lo, hi int) {
		coef := make([]float64, D+1)
		for i := lo; i < hi; i++ {
			if b.mask[i] == 0 {
				for a := range b.beta {
					b.beta[a][i] = 0
				}
				continue
			}
			b.tab.Beta(b.uB[i], coef)
			for a := range coef {
				b.beta[a][i] = coef[a]
			}
			b.beta[0][i] -= b.y[i]
		}
	})
	for a := range b.soft {
		clear(b.soft[a])
	}
	loss := b.lossRows()
	partial := make([]float64, len(loss))
	forRows(len(loss), func(lo, hi int) {
		coef := make([]float64, D+1)
		for k, i := range loss[lo:hi] {
			b.tab.Soft(b.uB[i], coef)
			for a := 1; a <= D; a++ {
				b.soft[a][i] = coef[a]
			}
			b.soft[1][i] -= b.y[i]
			partial[lo+k] = coef[0] - b.y[i]*b.uB[i]
		}
	})
	b.lossLocal = 0
	for _, v := range partial { // in row order: the sum does not depend on the split
		b.lossLocal += v
	}
	msg, err := sealTerms(b.sess, b.msg, uint32(b.step), uint64(b.nStep), b.length, b.exps, func(a int, z []complex128) {
		f := math.Exp2(-float64(b.exps[a]))
		be, so := b.beta[a], b.soft[a]
		forRows(len(z), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				z[i] = complex(be[i]*f, so[i]*f)
			}
		})
	})
	if err != nil {
		return nil, err
	}
	b.msg, b.pending = msg, 1
	return msg, nil
}

// EvaluateBankGradient is step B2: on the partner's Enc(r), r = (d + i·ℓ)·2^(−k)
// (d the masked residual, ℓ the loss terms), the bank evaluates
// Σ_i x_ij·d_i for every bank feature j, Σ_i d_i (intercept) and Σ_i ℓ_i
// (the loss aggregate, through the column −i: Re(−i·r) = Im r), with its
// feature columns encoded once per job. Returns a Result (features + 2
// statistics) for the partner's share (P3).
func (b *Bank) EvaluateBankGradient(residual []byte) ([]byte, error) {
	if b.pending != 1 {
		return nil, ErrOrder
	}
	rv, err := parseEncVecs(residual, msgResidual)
	if err != nil {
		return nil, err
	}
	if err := checkStep(rv, b.step, 1); err != nil {
		return nil, err
	}
	if rv.rows != 0 || rv.scales[0] != b.kexp {
		return nil, fmt.Errorf("%w: residual at scale exponent %d, want %d", ErrMalformed, rv.scales[0], b.kexp)
	}
	v, err := b.sess.ParsePackedVector(rv.chunks[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if v.Len() != b.length || v.Terms() != b.cfg.Degree+1 {
		return nil, fmt.Errorf("%w: residual of length %d from %d terms", ErrMalformed, v.Len(), v.Terms())
	}
	if b.cols == nil {
		if b.cols, err = packedColumns(b.sess, b.length, b.x, 1, -1i); err != nil {
			return nil, err
		}
	}
	res, err := b.sess.PackedInnerProducts(v, b.cols)
	b.sess.RecyclePacked(v)
	if err != nil {
		return nil, err
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
	dec, err := b.sess.DecryptReal(ownResult, partnerShare)
	if err != nil {
		return EpochReport{}, err
	}
	p := len(b.x)
	if len(dec) != p+2 {
		return EpochReport{}, ErrMalformed
	}
	vals := released(dec, b.cols, b.kexp)
	g := make([]float64, p+1)
	var norm float64
	for j := range p + 1 {
		g[j] = vals[j] / float64(b.nStep)
		if j < p {
			g[j] += b.cfg.L2 * b.w[j]
		}
		norm += g[j] * g[j]
	}
	rows := b.lossRows()
	rep := EpochReport{Epoch: b.epoch, Step: b.step, GradNorm: math.Sqrt(norm), OnTraining: len(b.val) == 0,
		ValLoss: (vals[p+1] + b.lossLocal) / float64(len(rows))}
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
