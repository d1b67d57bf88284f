package fedlearn

import (
	"math"

	"github.com/tandem-dev/tandem/internal/radix"
)

// AUC is the Mann–Whitney area under the ROC curve of score against 0/1
// labels y, ties counted half; NaN without both classes.
func AUC(score, y []float64) float64 {
	keys, idx := make([]uint64, len(score)), make([]uint32, len(score))
	for i, s := range score {
		keys[i], idx[i] = radix.Float(s), uint32(i)
	}
	radix.Pairs(keys, idx)
	type obs struct{ s, y float64 }
	o := make([]obs, len(score))
	for k, i := range idx {
		o[k] = obs{score[i], y[i]}
	}
	var pos, neg, rankSum float64
	for i := 0; i < len(o); {
		j := i
		for j < len(o) && o[j].s == o[i].s {
			j++
		}
		avg := float64(i+j+1) / 2
		for _, x := range o[i:j] {
			if x.y == 1 {
				pos++
				rankSum += avg
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}
