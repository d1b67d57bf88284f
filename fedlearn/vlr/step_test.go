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
