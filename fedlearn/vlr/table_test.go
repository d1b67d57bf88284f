package vlr

import (
	"math"
	"testing"
)

func TestCondTable(t *testing.T) {
	ct, err := NewCondTable(7, 4)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := FitSigmoid(7, 4)
	b := make([]float64, 8)
	ct.Beta(0, b)
	for a := range b {
		if math.Abs(b[a]-g.C[a]) > 1e-9 {
			t.Fatalf("β_%d(0) = %g, global fit %g", a, b[a], g.C[a])
		}
	}
	t.Logf("D=7 R=4: cond max error %.5f, global fit max error %.5f, BMax %v", ct.Error, g.MaxError, ct.BMax)
	if ct.Error > 0.0065 {
		t.Fatalf("error %g", ct.Error)
	}
	// interpolation vs exact off-grid
	worst := 0.0
	for _, c := range []float64{-5.3, -1.001, 0.37, 2.9999, 7.77} {
		ct.Beta(c, b)
		for i := 0; i <= 100; i++ {
			tt := -4 + 8*float64(i)/100
			worst = math.Max(worst, math.Abs(Poly{C: b}.Eval(tt)-Sigmoid(c+tt)))
		}
	}
	if worst > 0.0065 {
		t.Fatalf("off-grid error %g", worst)
	}
}
