package vlr

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLambdaMax: for two standardised columns with sample correlation r the
// Gram matrix is [[1 r] [r 1]], λmax = 1+|r|; an intercept column is
// orthogonal to centred columns (eigenvalue 1); rows outside use do not
// count. lambdaMax reports 10 % above.
func TestLambdaMax(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const L = 4000
	x := [][]float64{make([]float64, L), make([]float64, L)}
	use := make([]bool, L)
	for i := range L {
		z := r.NormFloat64()
		x[0][i], x[1][i] = z+0.3*r.NormFloat64(), -z+0.8*r.NormFloat64()
		use[i] = i%4 != 0
	}
	for _, u := range [][]bool{nil, use} {
		cols := [][]float64{append([]float64(nil), x[0]...), append([]float64(nil), x[1]...)}
		standardise(cols, u)
		var corr, n float64
		for i := range L {
			if u == nil || u[i] {
				corr += cols[0][i] * cols[1][i]
				n++
			}
		}
		corr /= n
		want := 1.1 * (1 + math.Abs(corr))
		for _, ic := range []bool{false, true} {
			if got := lambdaMax(cols, u, ic); math.Abs(got-want) > 1e-6*want {
				t.Errorf("use %v, intercept %v: λmax %.6f, want 1.1·(1+|%.4f|) = %.6f", u != nil, ic, got, corr, want)
			}
		}
	}
	// Both methods agree (the Gram matrix's 200 rounds converge further than
	// the rows' 30: within 1e-4 on correlated columns).
	cols := make([][]float64, 12)
	for j := range cols {
		cols[j] = make([]float64, L)
		for i := range cols[j] {
			cols[j][i] = x[0][i]*float64(j%3) + r.NormFloat64()
		}
	}
	standardise(cols, use)
	for _, ic := range []bool{false, true} {
		g, w := lambdaMaxGram(cols, use, ic), lambdaMaxRows(cols, use, ic)
		if math.Abs(g-w) > 1e-4*w {
			t.Errorf("intercept %v: Gram %.6f, rows %.6f", ic, g, w)
		}
	}
	if got := lambdaMax(nil, nil, true); got != 1 {
		t.Errorf("intercept only: %v", got)
	}
	// The cap binds only above the budget: η·λ̂ ≤ stepBudget.
	standardise(x, nil)
	lam := lambdaMax(x, nil, false)
	if got := cappedRate(1.5, x, nil, false); got != 1.5 {
		t.Errorf("cappedRate(1.5) with λ̂ = %.3f: %v, want 1.5 (under the budget)", lam, got)
	}
	if got := cappedRate(5, x, nil, false); math.Abs(got-stepBudget/lam) > 1e-12 {
		t.Errorf("cappedRate(5) with λ̂ = %.3f: %v, want %v", lam, got, stepBudget/lam)
	}
}

// Every step's released gradients, on both sides, against the plaintext
// formula at the same weights: g_j = (1/n_step)·Σ_i mask_i·x_ij·d_i + λw_j,
// d_i = Σ_a β_a(u_B,i)·u_P,i^a − y_i (the table's approximation, u_P
// clipped), over mini-batches (a third of the training rows, so the masks
// change every step) and 6 steps (weights far from zero, every power of
// u_P in play). Each gradient is read back from the momentum update.
func TestStepGradientsMatchPlaintext(t *testing.T) {
	data := genSynth(9000, 4, 5, 0.7, 21)
	bs, ps := sessions(t)
	cfg := Config{L2: 1e-2, Seed: 4, BatchSize: 1700, MaxEpochs: 10}
	b, err := NewBank(bs, cfg, data.bank, data.label, data.match, 5)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPartner(ps, cfg, data.partner, 4)
	if err != nil {
		t.Fatal(err)
	}
	coef := make([]float64, b.cfg.Degree+1)
	for s := range 6 {
		wB, vB, wP, vP := b.Weights(), append([]float64(nil), b.vel...), p.Weights(), append([]float64(nil), p.vel...)
		uB, uP := b.UB(), p.UP()
		step(t, b, p)
		// The plaintext gradient over this step's mask.
		pB := len(b.x)
		gB, gP := make([]float64, pB+1), make([]float64, len(p.x))
		aB, aP := make([]float64, pB+1), make([]float64, len(p.x)) // Σ|x|·(|d| + 1)
		n := 0.0
		for i, m := range b.mask {
			if m == 0 {
				continue
			}
			n++
			b.tab.Beta(uB[i], coef)
			d, pw := -b.y[i], 1.0
			for _, c := range coef {
				d += c * pw
				pw *= uP[i]
			}
			ad := math.Abs(d) + 1
			for j := range pB {
				gB[j] += b.x[j][i] * d
				aB[j] += math.Abs(b.x[j][i]) * ad
			}
			gB[pB] += d
			aB[pB] += ad
			for j := range p.x {
				gP[j] += p.x[j][i] * d
				aP[j] += math.Abs(p.x[j][i]) * ad
			}
		}
		check := func(side string, g, a, w, v, w2 []float64, eta float64, penalised int, unit func(int) float64) {
			for j := range g {
				want := g[j] / n
				if j < penalised {
					want += b.cfg.L2 * w[j]
				}
				got := (b.cfg.Momentum*v[j] - (w2[j] - w[j])) / eta
				flood := math.Exp2(84) * unit(j) * math.Exp2(float64(b.kexp)) / n
				if math.Abs(got-want) > flood+1e-5*a[j]/n {
					t.Errorf("step %d, %s gradient %d: HE %.8f, plaintext %.8f (flooding up to %.2g)", s, side, j, got, want, flood)
				}
			}
		}
		check("bank", gB, aB, wB, vB, b.Weights(), b.eta, pB, b.cols.Unit)
		check("partner", gP, aP, wP, vP, p.Weights(), p.eta, len(p.x), p.cols.Unit)
	}
}
