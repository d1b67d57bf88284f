package vlr

import (
	"errors"
	"fmt"
	"math"
)

// Poly is a polynomial Σ_k C[k]·z^k in monomial form (C[0] first).
type Poly struct {
	C []float64
}

// Eval evaluates the polynomial at z (Horner).
func (p Poly) Eval(z float64) float64 {
	var r float64
	for k := len(p.C) - 1; k >= 0; k-- {
		r = r*z + p.C[k]
	}
	return r
}

// Degree returns the polynomial degree.
func (p Poly) Degree() int { return len(p.C) - 1 }

// Sigmoid is the exact logistic function 1/(1+e^-z).
func Sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// Softplus is log(1+e^z), the log-loss primitive: ℓ(z, y) = softplus(z) − y·z.
func Softplus(z float64) float64 {
	if z > 0 {
		return z + math.Log1p(math.Exp(-z))
	}
	return math.Log1p(math.Exp(z))
}

// Approximation is a least-squares polynomial approximation of a function on
// [−Range, Range] with its measured worst-case error on that interval.
type Approximation struct {
	Poly
	Range    float64
	MaxError float64 // max |p(z) − f(z)| over a 1e5-point grid of [−Range, Range]
}

// FitSigmoid returns the degree-d least-squares fit of the logistic function
// on [−r, r] (continuous L2 norm, Gauss–Legendre quadrature). Because
// σ(z) − 1/2 is odd the fit has c_0 = 1/2 and zero even coefficients of
// degree ≥ 2 (enforced exactly). Degrees 1…9 are accepted.
func FitSigmoid(d int, r float64) (Approximation, error) {
	return fit(Sigmoid, d, r, true)
}

// FitSoftplus returns the degree-d least-squares fit of log(1+e^z) on [−r, r]
// (used for the validation loss aggregate).
func FitSoftplus(d int, r float64) (Approximation, error) {
	return fit(Softplus, d, r, false)
}

var errFit = errors.New("vlr: invalid approximation degree or range")

func fit(f func(float64) float64, d int, r float64, oddSigmoid bool) (Approximation, error) {
	if d < 1 || d > 9 || !(r > 0) || r > 64 {
		return Approximation{}, fmt.Errorf("%w (degree %d, range %g)", errFit, d, r)
	}
	// Fit on x = z/r ∈ [−1, 1] with Legendre polynomials (orthogonal, so the
	// normal equations are diagonal), then convert to monomials in z.
	nodes, weights := gaussLegendre(64)
	leg := make([]float64, d+1) // Legendre coefficients
	for k := range leg {
		var num float64
		for i, x := range nodes {
			num += weights[i] * legendre(k, x) * f(r*x)
		}
		leg[k] = num * float64(2*k+1) / 2
	}
	if oddSigmoid {
		for k := 2; k <= d; k += 2 {
			leg[k] = 0
		}
		leg[0] = 0.5
	}
	// Monomial coefficients in x: Σ_k leg_k·P_k(x).
	mono := make([]float64, d+1)
	for k, lk := range leg {
		for j, cj := range legendreMonomial(k) {
			mono[j] += lk * cj
		}
	}
	c := make([]float64, d+1)
	scale := 1.0
	for j := range c {
		c[j] = mono[j] / scale
		scale *= r
	}
	if oddSigmoid {
		c[0] = 0.5
		for k := 2; k <= d; k += 2 {
			c[k] = 0
		}
	}
	a := Approximation{Poly: Poly{C: c}, Range: r}
	const grid = 100_000
	for i := 0; i <= grid; i++ {
		z := -r + 2*r*float64(i)/grid
		a.MaxError = math.Max(a.MaxError, math.Abs(a.Eval(z)-f(z)))
	}
	return a, nil
}

// legendre evaluates P_k(x) by the three-term recurrence.
func legendre(k int, x float64) float64 {
	p0, p1 := 1.0, x
	if k == 0 {
		return p0
	}
	for n := 1; n < k; n++ {
		p0, p1 = p1, (float64(2*n+1)*x*p1-float64(n)*p0)/float64(n+1)
	}
	return p1
}

// legendreMonomial returns the monomial coefficients of P_k.
func legendreMonomial(k int) []float64 {
	p0 := []float64{1}
	if k == 0 {
		return p0
	}
	p1 := []float64{0, 1}
	for n := 1; n < k; n++ {
		next := make([]float64, n+2)
		for j, c := range p1 {
			next[j+1] += float64(2*n+1) * c / float64(n+1)
		}
		for j, c := range p0 {
			next[j] -= float64(n) * c / float64(n+1)
		}
		p0, p1 = p1, next
	}
	return p1
}

// gaussLegendre returns n nodes and weights on [−1, 1] (Newton on P_n).
func gaussLegendre(n int) ([]float64, []float64) {
	x := make([]float64, n)
	w := make([]float64, n)
	for i := range n {
		z := math.Cos(math.Pi * (float64(i) + 0.75) / (float64(n) + 0.5))
		for range 100 {
			p := legendre(n, z)
			dp := float64(n) * (z*p - legendre(n-1, z)) / (z*z - 1)
			dz := p / dp
			z -= dz
			if math.Abs(dz) < 1e-15 {
				break
			}
		}
		dp := float64(n) * (z*legendre(n, z) - legendre(n-1, z)) / (z*z - 1)
		x[i] = z
		w[i] = 2 / ((1 - z*z) * dp * dp)
	}
	return x, w
}
