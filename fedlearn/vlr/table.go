package vlr

import "math"

// CondTable is the bank-side residual approximation (see README "Math"):
// for a bank partial predictor c it gives the coefficients β_a(c), a = 0…D,
// of the degree-D least-squares polynomial in t of σ(c + t) on
// t ∈ [−R, R], and λ_a(c) for softplus(c + t) (validation loss). So
// σ(u_B + u_P) ≈ Σ_a β_a(u_B)·u_P^a with the bank's part exact and only the
// partner's part |u_P| ≤ R approximated. With c = 0 this is exactly the
// global fit FitSigmoid(D, R); the global σ̃(z) = Σ c_k z^k expanded
// binomially is the special case β_a(c) = Σ_{k≥a} c_k·C(k,a)·c^{k−a}.
//
// Values are tabulated for c ∈ [−CMax, CMax] with step 1/128 and linearly
// interpolated; the bank clips c to that interval (σ is saturated there).
type CondTable struct {
	D     int
	R     float64
	CMax  float64
	step  float64
	beta  [][]float64 // [grid][a]
	soft  [][]float64
	BMax  []float64 // max_c |β_a(c)| (public: fixes the bank's scales)
	SMax  []float64 // max_c |λ_a(c)|, the same for the loss coefficients
	Error float64   // max over the grid of max_t |Σ β_a t^a − σ(c+t)|
}

const condCMax = 32

// NewCondTable builds the table for degree d and partner range r.
func NewCondTable(d int, r float64) (*CondTable, error) {
	if d < 1 || d > 9 || !(r > 0) || r > 16 {
		return nil, errFit
	}
	ct := &CondTable{D: d, R: r, CMax: condCMax, step: 1.0 / 128, BMax: make([]float64, d+1), SMax: make([]float64, d+1)}
	nodes, weights := gaussLegendre(48)
	// Projection: coefficient of t^a from Legendre coefficient k.
	mono := make([][]float64, d+1)
	for k := range mono {
		mono[k] = legendreMonomial(k)
	}
	leg := make([][]float64, d+1) // leg[k][i] = w_i·P_k(x_i)·(2k+1)/2
	for k := range leg {
		leg[k] = make([]float64, len(nodes))
		for i, x := range nodes {
			leg[k][i] = weights[i] * legendre(k, x) * float64(2*k+1) / 2
		}
	}
	proj := func(f func(float64) float64, c float64) []float64 {
		fv := make([]float64, len(nodes))
		for i, x := range nodes {
			fv[i] = f(c + r*x)
		}
		out := make([]float64, d+1)
		for k := 0; k <= d; k++ {
			var lk float64
			for i := range nodes {
				lk += leg[k][i] * fv[i]
			}
			rp := 1.0
			for a, m := range mono[k] {
				out[a] += lk * m / rp
				rp *= r
			}
		}
		return out
	}
	n := int(2*condCMax/ct.step) + 1
	ct.beta = make([][]float64, n)
	ct.soft = make([][]float64, n)
	for g := range n {
		c := -condCMax + float64(g)*ct.step
		ct.beta[g] = proj(Sigmoid, c)
		ct.soft[g] = proj(Softplus, c)
		for a, b := range ct.beta[g] {
			ct.BMax[a] = math.Max(ct.BMax[a], math.Abs(b))
			ct.SMax[a] = math.Max(ct.SMax[a], math.Abs(ct.soft[g][a]))
		}
		if g%16 == 0 { // error on a sub-grid of c, 401 points of t
			for i := 0; i <= 400; i++ {
				t := -r + 2*r*float64(i)/400
				ct.Error = math.Max(ct.Error, math.Abs(Poly{C: ct.beta[g]}.Eval(t)-Sigmoid(c+t)))
			}
		}
	}
	return ct, nil
}

// Beta writes β_a(c) into dst (len D+1), c clipped to ±CMax.
func (ct *CondTable) Beta(c float64, dst []float64) { ct.interp(ct.beta, c, dst) }

// Soft writes λ_a(c) (softplus coefficients) into dst.
func (ct *CondTable) Soft(c float64, dst []float64) { ct.interp(ct.soft, c, dst) }

func (ct *CondTable) interp(tab [][]float64, c float64, dst []float64) {
	c = math.Max(-ct.CMax, math.Min(ct.CMax, c))
	x := (c + ct.CMax) / ct.step
	g := int(x)
	if g >= len(tab)-1 {
		g = len(tab) - 2
	}
	f := x - float64(g)
	lo, hi := tab[g], tab[g+1]
	for a := range dst {
		dst[a] = lo[a] + f*(hi[a]-lo[a])
	}
}
