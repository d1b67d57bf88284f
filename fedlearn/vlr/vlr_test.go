package vlr

import (
	"crypto/rand"
	"errors"
	"github.com/tandem-dev/tandem/fedlearn/vlr/vlrtest"
	"math"
	mrand "math/rand/v2"
	"slices"
	"testing"

	"github.com/tandem-dev/tandem/fedlearn"
)

// synth generates L aligned positions: the partner has features for all of
// them, the bank for the matched ones (fraction matchFrac) with a label
// drawn from a logistic model over both sides' features.
type synth struct {
	bank, partner [][]float64 // column-major
	label         []float64
	match         []bool
}

func genSynth(L, pb, pp int, matchFrac float64, seed uint64) synth {
	r := mrand.New(mrand.NewPCG(seed, 42))
	wb := []float64{0.8, -0.5, 0.3, 0.02, 0.6, -0.2}
	wp := []float64{0.7, -0.4, 0.25, -0.6, 0.1, 0.35}
	s := synth{bank: make([][]float64, pb), partner: make([][]float64, pp), label: make([]float64, L), match: make([]bool, L)}
	for j := range s.bank {
		s.bank[j] = make([]float64, L)
	}
	for j := range s.partner {
		s.partner[j] = make([]float64, L)
	}
	for i := range L {
		common := r.NormFloat64()
		z := -0.5
		for j := range pb {
			v := 0.5*common + r.NormFloat64()
			if j == 1 {
				v = 3 + 2*v // shifted and scaled raw feature
			}
			s.bank[j][i] = v
			if j == 1 {
				v = (v - 3) / 2
			}
			z += wb[j%6] * v
		}
		for j := range pp {
			v := 0.5*common + r.NormFloat64()
			if j == 2 {
				v = math.Exp(0.5 * v) // skewed
			}
			s.partner[j][i] = v
			z += wp[j%6] * v
		}
		s.match[i] = r.Float64() < matchFrac
		if s.match[i] && r.Float64() < Sigmoid(z) {
			s.label[i] = 1
		}
	}
	return s
}

func sessions(t testing.TB) (*fedlearn.Session, *fedlearn.Session) {
	var seed [32]byte
	rand.Read(seed[:])
	bs, err := fedlearn.NewSession(fedlearn.Bank, fedlearn.Params{}, seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := fedlearn.NewSession(fedlearn.Partner, fedlearn.Params{}, seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := bs.KeyGenShare()
	p1, _ := ps.KeyGenShare()
	if err := bs.SetPeerKeyGenShare(p1); err != nil {
		t.Fatal(err)
	}
	if err := ps.SetPeerKeyGenShare(b1); err != nil {
		t.Fatal(err)
	}
	return bs, ps
}

// step runs one protocol step through both parties exactly as two nodes
// would (messages are plain byte slices); it returns the wire bytes.
func step(t testing.TB, b *Bank, p *Partner) (EpochReport, int) {
	return stepInspect(t, b, p, nil)
}

// stepInspect is step with a look at both Results before any share is made
// (inspect may be nil).
func stepInspect(t testing.TB, b *Bank, p *Partner, inspect func(bres, pres []byte)) (EpochReport, int) {
	terms, err := b.EncryptResidualTerms() // B1  bank → partner
	if err != nil {
		t.Fatal(err)
	}
	resid, err := p.Residual(terms) // P1  partner → bank
	if err != nil {
		t.Fatal(err)
	}
	bres, err := b.EvaluateBankGradient(resid) // B2  bank → partner
	if err != nil {
		t.Fatal(err)
	}
	pres, err := p.EvaluatePartnerGradient() // P2  partner → bank
	if err != nil {
		t.Fatal(err)
	}
	if inspect != nil {
		inspect(bres, pres)
	}
	bshare, err := b.ShareForPartner(pres) // B3  bank → partner
	if err != nil {
		t.Fatal(err)
	}
	pshare, err := p.ShareForBank(bres) // P3  partner → bank
	if err != nil {
		t.Fatal(err)
	}
	rep, err := b.ApplyGradient(bres, pshare) // B4
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ApplyGradient(pres, bshare); err != nil { // P4
		t.Fatal(err)
	}
	return rep, len(terms) + len(resid) + len(bres) + len(pres) + len(bshare) + len(pshare)
}

// parties starts a bank (pb features, label, match) and a partner (pp
// features) on data, each with a fresh session of one collective key.
func parties(t testing.TB, cfg Config, data synth, pb, pp int) (*Bank, *Partner) {
	t.Helper()
	bs, ps := sessions(t)
	b, err := NewBank(bs, cfg, data.bank, data.label, data.match, pp)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPartner(ps, cfg, data.partner, pb)
	if err != nil {
		t.Fatal(err)
	}
	return b, p
}

// joined returns row-major standardised rows [bank…, partner…, 1] for the
// given positions, using each party's own standardisation.
func joined(b *Bank, p *Partner, rows []int) [][]float64 {
	out := make([][]float64, len(rows))
	for r, i := range rows {
		v := make([]float64, 0, len(b.x)+len(p.x)+1)
		for _, c := range b.x {
			v = append(v, c[i])
		}
		for _, c := range p.x {
			v = append(v, c[i])
		}
		out[r] = append(v, 1)
	}
	return out
}

// heWeights returns the trained model in joined's order: bank features…,
// partner features…, intercept.
func heWeights(b *Bank, p *Partner) []float64 {
	wb := b.Weights()
	pb := len(wb) - 1
	return append(append(append([]float64(nil), wb[:pb]...), p.Weights()...), wb[pb])
}

// baseline fits plaintext logistic regression (Newton, exact sigmoid) on
// the bank's training rows with both parties' standardisation and λ.
func baseline(b *Bank, p *Partner, label []float64, lambda float64) []float64 {
	xtr := joined(b, p, b.TrainRows())
	ytr := make([]float64, len(xtr))
	for r, i := range b.TrainRows() {
		ytr[r] = label[i]
	}
	return vlrtest.PlainLR(xtr, ytr, lambda)
}

// valAUCs returns the validation AUC of the HE and the baseline weights.
func valAUCs(b *Bank, p *Partner, label, wHE, wBase []float64) (aHE, aBase float64) {
	xv := joined(b, p, b.ValRows())
	yv := make([]float64, len(xv))
	sHE, sBase := make([]float64, len(xv)), make([]float64, len(xv))
	for r, i := range b.ValRows() {
		yv[r] = label[i]
		for j, v := range xv[r] {
			sHE[r] += wHE[j] * v
			sBase[r] += wBase[j] * v
		}
	}
	return vlrtest.AUC(sHE, yv), vlrtest.AUC(sBase, yv)
}

func TestTrainingMatchesPlaintext(t *testing.T) {
	const L, lambda = 5000, 1e-3
	data := genSynth(L, 6, 6, 0.7, 1)
	cfg := Config{L2: lambda, MaxEpochs: 30, Seed: 7}
	b, p := parties(t, cfg, data, 6, 6)
	var wireBytes int
	for !b.Done() {
		rep, n := step(t, b, p)
		wireBytes += n
		if rep.Epoch%10 == 0 || rep.Stop {
			t.Logf("epoch %d: val loss %.5f, ‖g_B‖ %.2e", rep.Epoch, rep.ValLoss, rep.GradNorm)
		}
	}
	// Plaintext baseline on the same training rows and standardisation.
	wBase, wHE := baseline(b, p, data.label, lambda), heWeights(b, p)
	// Coefficient rule: relative error ≤ 1% for every coefficient with
	// |w_baseline| > 0.05 (standardised units, intercept included); smaller
	// ones within 0.0005 absolute.
	worst, aHE, aBase := checkAgainstBaseline(t, b, p, data.label, wHE, wBase)
	t.Logf("epochs %d, wire %.1f MB; worst coefficient rel error %.4f; AUC HE %.5f baseline %.5f",
		len(b.History()), float64(wireBytes)/1e6, worst, aHE, aBase)
	t.Logf("baseline %v", wBase)
	t.Logf("HE       %v", wHE)
}

// Without a hold-out the bank's per-epoch loss is the training loss: the
// mean log-loss over the training rows at the weights the step started
// from, equal to the plaintext loss within the residual approximation; and
// early stopping ends training when it no longer improves (convergence),
// before MaxEpochs, near the plaintext optimum. (Heavy-ball momentum makes
// the loss rise now and then on the way: a patience of 2 stopped this run
// at epoch 7, 0.0011 above its best; 4 rides it out.)
func TestTrainingLossWithoutHoldOut(t *testing.T) {
	const L = 3000
	data := genSynth(L, 4, 4, 0.7, 3)
	cfg := Config{L2: 1e-3, MaxEpochs: 80, Patience: 4, Tol: 1e-4, ValFraction: -1, Seed: 7}
	b, p := parties(t, cfg, data, 4, 4)
	if len(b.ValRows()) != 0 {
		t.Fatalf("%d rows held out with ValFraction < 0", len(b.ValRows()))
	}
	rows := joined(b, p, b.TrainRows())
	var prev float64
	epochs := 0
	for !b.Done() {
		w := heWeights(b, p)
		var plain float64
		for r, i := range b.TrainRows() {
			var uB, uP float64
			for j, v := range rows[r] {
				switch {
				case j < 4 || j == len(w)-1:
					uB += w[j] * v
				default:
					uP += w[j] * v
				}
			}
			z := uB + math.Max(-4, math.Min(4, uP))
			plain += math.Log1p(math.Exp(-math.Abs(z))) + math.Max(z, 0) - data.label[i]*z
		}
		plain /= float64(len(rows))
		rep, _ := step(t, b, p)
		epochs++
		if !rep.OnTraining || math.Abs(rep.ValLoss-plain) > 2e-3 {
			t.Fatalf("epoch %d: loss %.5f (on training rows: %v), plaintext %.5f", rep.Epoch, rep.ValLoss, rep.OnTraining, plain)
		}
		prev = rep.ValLoss
	}
	y := make([]float64, len(rows))
	for r, i := range b.TrainRows() {
		y[r] = data.label[i]
	}
	wBase := vlrtest.PlainLR(rows, y, cfg.L2)
	var best float64
	for r, x := range rows {
		var z float64
		for j, v := range x {
			z += wBase[j] * v
		}
		best += math.Log1p(math.Exp(-math.Abs(z))) + math.Max(z, 0) - y[r]*z
	}
	best /= float64(len(rows))
	if epochs >= cfg.MaxEpochs || prev-best > 5e-3 {
		t.Errorf("stopped after %d of %d epochs at training loss %.5f; the plaintext optimum's is %.5f", epochs, cfg.MaxEpochs, prev, best)
	}
	t.Logf("stopped after %d epochs at training loss %.5f (plaintext optimum %.5f)", epochs, prev, best)
}

// A partner-only model (no bank features: the bank contributes the label,
// the match indicator and the intercept) trains through the same protocol
// and matches plaintext logistic regression on the partner's features plus
// an intercept, under the rule of TestTrainingMatchesPlaintext. The label
// also depends on bank features the model does not see, as it would in a
// real partner-only job; the baseline is the same misspecified model.
func TestPartnerOnlyMatchesPlaintext(t *testing.T) {
	const L, pp, lambda = 5000, 4, 1e-3
	data := genSynth(L, 3, pp, 0.7, 5)
	bs, ps := sessions(t)
	cfg := Config{L2: lambda, MaxEpochs: 30, Seed: 9}
	// The partner still needs at least one feature: it is the only side
	// with a gradient to learn.
	if _, err := NewPartner(ps, cfg, nil, 0); !errors.Is(err, ErrConfig) {
		t.Fatalf("partner without features: %v, want ErrConfig", err)
	}
	b, err := NewBank(bs, cfg, nil, data.label, data.match, pp)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPartner(ps, cfg, data.partner, 0)
	if err != nil {
		t.Fatal(err)
	}
	inspect := func(bres, pres []byte) {
		// The partner co-signs only the intercept gradient and the
		// validation-loss aggregate.
		if n, err := ps.ResultCount(bres); err != nil || n != 2 {
			t.Fatalf("bank result: %d statistics (%v), want 2", n, err)
		}
		if n, err := bs.ResultCount(pres); err != nil || n != pp {
			t.Fatalf("partner result: %d statistics (%v), want %d", n, err, pp)
		}
	}
	var reps []EpochReport
	for !b.Done() {
		rep, _ := stepInspect(t, b, p, inspect)
		reps = append(reps, rep)
		inspect = nil
	}
	if len(reps) != 30 {
		t.Errorf("%d steps, want 30 (MaxEpochs, full batch)", len(reps))
	}
	// The validation loss must be a real, decreasing aggregate, not the
	// zero of a missing statistic.
	first, last := reps[0].ValLoss, reps[len(reps)-1].ValLoss
	if !(last > 0.3 && last < first) {
		t.Errorf("validation loss %.5f → %.5f, want a positive loss that decreased", first, last)
	}
	wb := b.Weights()
	if mean, sd := b.Standardisation(); len(wb) != 1 || len(mean) != 0 || len(sd) != 0 {
		t.Fatalf("bank side: weights %v, %d means, %d sds; want the intercept only", wb, len(mean), len(sd))
	}
	wBase, wHE := baseline(b, p, data.label, lambda), heWeights(b, p) // partner features…, intercept
	worst, aHE, aBase := checkAgainstBaseline(t, b, p, data.label, wHE, wBase)
	t.Logf("val loss %.5f → %.5f; worst coefficient rel error %.4f; AUC HE %.5f baseline %.5f", first, last, worst, aHE, aBase)
	t.Logf("baseline %v", wBase)
	t.Logf("HE       %v", wHE)
}

// checkAgainstBaseline applies the accuracy rule to HE weights against the
// plaintext baseline (both [bank…, partner…, intercept] in standardised
// units): every coefficient with |w| > 0.05 within 1 % relative, smaller
// ones within 0.0005 absolute, validation AUC within 0.005. It returns the
// worst relative coefficient error and both AUCs.
func checkAgainstBaseline(t *testing.T, b *Bank, p *Partner, label, wHE, wBase []float64) (worst, aHE, aBase float64) {
	t.Helper()
	worst = vlrtest.CheckCoefficients(t, wHE, wBase)
	aHE, aBase = valAUCs(b, p, label, wHE, wBase)
	if math.Abs(aHE-aBase) > 0.005 {
		t.Errorf("AUC HE %.5f vs baseline %.5f", aHE, aBase)
	}
	return worst, aHE, aBase
}

// TestManyCorrelatedFeaturesStable: 50 + 100 features sharing one factor
// (the top eigenvalue of a block's correlation matrix ≈ 0.8 + 0.2·p). With
// the agreed learning rate 1.5 on both sides the joint step exceeds the
// stability bound of heavy-ball momentum and training diverges (checked
// below by switching the cap off: the validation loss rises above its
// start). Each party's local cap (step.go) keeps it stable: the loss stays
// below its start and ends far below it. The capped steps are slow in the
// weak directions of such ill-conditioned data, so the model is held only
// to an AUC within 0.03 of plaintext logistic regression after 20 epochs,
// not to the 1 % rule.
func TestManyCorrelatedFeaturesStable(t *testing.T) {
	const L, pb, pp, lambda = 2000, 50, 100, 1e-2
	data := genSynth(L, pb, pp, 0.7, 4)
	train := func(capped bool, epochs int) (*Bank, *Partner, []float64) {
		cfg := Config{L2: lambda, MaxEpochs: epochs, Seed: 3}
		b, p := parties(t, cfg, data, pb, pp)
		if !(b.eta < 1.5 && p.eta < 1.5) {
			t.Fatalf("steps not capped: bank %.3f, partner %.3f", b.eta, p.eta)
		}
		if !capped {
			b.eta, p.eta = b.cfg.LearningRate, p.cfg.LearningRate // the agreed 1.5
		}
		var losses []float64
		for !b.Done() {
			rep, _ := step(t, b, p)
			losses = append(losses, rep.ValLoss)
		}
		return b, p, losses
	}

	_, _, wild := train(false, 4)
	if !(slices.Max(wild[1:]) > wild[0]) {
		t.Errorf("uncapped steps did not diverge (validation loss %.4f), so this test shows nothing", wild)
	}

	b, p, losses := train(true, 20)
	if !(slices.Max(losses[1:]) < losses[0] && losses[len(losses)-1] < 0.6*losses[0]) {
		t.Errorf("capped steps: validation loss %.4f", losses)
	}
	wBase, wHE := baseline(b, p, data.label, lambda), heWeights(b, p)
	aHE, aBase := valAUCs(b, p, data.label, wHE, wBase)
	t.Logf("steps: bank %.3f, partner %.3f; validation loss %.4f; uncapped %.4f; AUC HE %.5f, plaintext %.5f", b.eta, p.eta, losses, wild, aHE, aBase)
	if math.Abs(aHE-aBase) > 0.03 {
		t.Errorf("validation AUC: HE %.5f, plaintext %.5f", aHE, aBase)
	}
}
