// Package vlrtest holds the plaintext reference model the joint-modelling
// tests compare against: logistic regression with the exact sigmoid,
// solved by Newton's method, and the Mann–Whitney AUC. Test code only.
package vlrtest

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/fedlearn"
)

// PlainLR fits logistic regression on row-major x (intercept column last)
// minimising (1/n)Σ logloss + (λ/2)‖w‖² with the intercept unpenalised,
// Newton's method to convergence (at most 50 steps).
func PlainLR(x [][]float64, y []float64, lambda float64) []float64 {
	p := len(x[0])
	w := make([]float64, p)
	n := float64(len(x))
	for range 50 {
		g := make([]float64, p)
		H := make([][]float64, p)
		for j := range H {
			H[j] = make([]float64, p)
		}
		for i, xi := range x {
			var z float64
			for j, v := range xi {
				z += w[j] * v
			}
			s := 1 / (1 + math.Exp(-z))
			for j, v := range xi {
				g[j] += (s - y[i]) * v / n
				for k := range xi {
					H[j][k] += s * (1 - s) * v * xi[k] / n
				}
			}
		}
		for j := range p - 1 {
			g[j] += lambda * w[j]
			H[j][j] += lambda
		}
		d := solve(H, g)
		var dn float64
		for j := range w {
			w[j] -= d[j]
			dn += d[j] * d[j]
		}
		if dn < 1e-24 {
			break
		}
	}
	return w
}

// solve solves A·x = b by Gauss–Jordan elimination with partial pivoting.
func solve(A [][]float64, b []float64) []float64 {
	n := len(b)
	M := make([][]float64, n)
	for i := range M {
		M[i] = append(append([]float64(nil), A[i]...), b[i])
	}
	for c := range n {
		piv := c
		for r := c + 1; r < n; r++ {
			if math.Abs(M[r][c]) > math.Abs(M[piv][c]) {
				piv = r
			}
		}
		M[c], M[piv] = M[piv], M[c]
		for r := range n {
			if r != c {
				f := M[r][c] / M[c][c]
				for k := c; k <= n; k++ {
					M[r][k] -= f * M[c][k]
				}
			}
		}
	}
	x := make([]float64, n)
	for i := range x {
		x[i] = M[i][n] / M[i][i]
	}
	return x
}

// AUC is fedlearn.AUC (the production implementation), for tests.
func AUC(score, y []float64) float64 { return fedlearn.AUC(score, y) }

// CheckCoefficients applies the coefficient rule to trained
// weights against the plaintext baseline (same order, standardised units):
// every coefficient with |w| > 0.05 within 1 % relative, smaller ones
// within 0.0005 absolute. It returns the worst relative error among the
// large ones.
func CheckCoefficients(t testing.TB, wHE, wBase []float64) (worst float64) {
	t.Helper()
	if len(wHE) != len(wBase) {
		t.Fatalf("%d coefficients, baseline has %d", len(wHE), len(wBase))
	}
	for j := range wHE {
		d := math.Abs(wHE[j] - wBase[j])
		if math.Abs(wBase[j]) > 0.05 {
			rel := d / math.Abs(wBase[j])
			worst = math.Max(worst, rel)
			if rel > 0.01 {
				t.Errorf("coef %d: HE %.5f baseline %.5f (rel %.4f)", j, wHE[j], wBase[j], rel)
			}
		} else if d > 0.0005 {
			t.Errorf("small coef %d: HE %.5f baseline %.5f", j, wHE[j], wBase[j])
		}
	}
	return worst
}

// CellValue is a feature's value in a CSV cell as the plaintext baselines
// read it, the node's reading of the same cell: a number, or for an
// indicator "column=level" 1 where the cell is the level and 0 where it is
// another; NaN where missing (a number column's cell that does not parse;
// an indicator's cell that is empty or a null spelling of the dataset
// docs: NA, N/A, NULL, NaN, \N, any case; "None" is a level there).
func CellValue(feature, cell string) float64 {
	cell = strings.TrimSpace(cell)
	if _, level, ok := strings.Cut(feature, "="); ok {
		switch {
		case cell == level:
			return 1
		case cell == "", cell == `\N`, slices.ContainsFunc([]string{"NA", "N/A", "NULL", "NaN"}, func(n string) bool { return strings.EqualFold(cell, n) }):
			return math.NaN()
		}
		return 0
	}
	v, err := strconv.ParseFloat(cell, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}
