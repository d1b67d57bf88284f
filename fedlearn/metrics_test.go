package fedlearn

import (
	"math"
	"testing"
)

func TestAUCKnownValues(t *testing.T) {
	for _, c := range []struct {
		score, y []float64
		want     float64
	}{
		{[]float64{0.1, 0.4, 0.35, 0.8}, []float64{0, 0, 1, 1}, 0.75}, // sklearn's example
		{[]float64{1, 1, 1, 1}, []float64{0, 1, 0, 1}, 0.5},           // ties count half
		{[]float64{3, 2, 1}, []float64{1, 0, 0}, 1},
		{[]float64{3, 2, 1}, []float64{0, 1, 1}, 0},
	} {
		if got := AUC(c.score, c.y); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("AUC(%v, %v) = %v, want %v", c.score, c.y, got, c.want)
		}
	}
	if got := AUC([]float64{1, 2}, []float64{1, 1}); !math.IsNaN(got) {
		t.Errorf("one class: %v, want NaN", got)
	}
}
