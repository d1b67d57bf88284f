package protocol

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/tandem-dev/tandem/fedlearn"
)

// Quantiles by histogram refinement (see the header of stats.go for the
// steps and the leakage). All bins are half-open [lo, hi) and every round's
// bins are sorted and disjoint.

// quantileBins is the number of bins of round 1 (without spec bins) and the
// number of sub-bins per refined bin, lowered when many bins are refined so
// that one round stays a single binned plan of ≤ 1024 bins.
const quantileBins = 16

// maxRoundBins bounds the bins of one round (fedlearn's maxBins is 1024,
// one more multiplier is the all-ones count).
const maxRoundBins = 1023

// subBins is the number of sub-bins each of t refined bins is split into.
func subBins(t int) int {
	if t < 1 {
		return 0
	}
	return min(quantileBins, maxRoundBins/t)
}

// statsRefine is the bank's request for round r > 1 of a quantile entry:
// the indices (strictly increasing) of the previous round's bins to split.
// Empty: nothing left to refine, the round is skipped by both sides.
type statsRefine struct {
	Index   int   `json:"index"`
	Targets []int `json:"targets"`
}

// quantileRange is the public range the partner publishes in round 1: the
// min and max of its present values over all L positions (its whole
// column, not only matched rows), rounded outwards to a multiple of
// 2^(e-4) where 2^e > max|x|, so that hi > max strictly.
func quantileRange(vals []float64, present []bool) (lo, hi float64, err error) {
	mn, mx, any := math.Inf(1), math.Inf(-1), false
	for i, x := range vals {
		if !present[i] {
			continue
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, 0, errors.New("non-finite value")
		}
		mn, mx, any = min(mn, x), max(mx, x), true
	}
	if !any {
		return 0, 0, errors.New("column has no values")
	}
	_, e := math.Frexp(max(math.Abs(mn), math.Abs(mx)))
	step := math.Ldexp(1, e-4)
	return math.Floor(mn/step) * step, (math.Floor(mx/step) + 1) * step, nil
}

// checkRange validates a published range on the bank.
func checkRange(r []float64) error {
	if len(r) != 2 || math.IsNaN(r[0]) || math.IsInf(r[0], 0) || math.IsNaN(r[1]) || math.IsInf(r[1], 0) || !(r[0] < r[1]) {
		return errors.New("bad quantile range")
	}
	return nil
}

// round1Intervals are the bins of round 1: the spec's edges inside
// (lo, hi) with lo and hi as outer bounds, or quantileBins equal bins.
func round1Intervals(lo, hi float64, edges []float64) []StatsInterval {
	var e []float64
	if len(edges) > 0 {
		e = append(e, lo)
		for _, x := range edges {
			if x > lo && x < hi {
				e = append(e, x)
			}
		}
		e = append(e, hi)
	} else {
		e = splitEdges(lo, hi, quantileBins)
	}
	out := make([]StatsInterval, len(e)-1)
	for i := range out {
		out[i] = StatsInterval{e[i], e[i+1]}
	}
	return out
}

// splitEdges returns the n+1 edges of n equal bins of [lo, hi).
func splitEdges(lo, hi float64, n int) []float64 {
	e := make([]float64, n+1)
	for i := range n {
		e[i] = lo + (hi-lo)*float64(i)/float64(n)
	}
	e[n] = hi
	return e
}

// refineIntervals splits the target bins of prev into subBins(len(targets))
// equal bins each (target-major, so the result is sorted).
func refineIntervals(prev []StatsInterval, targets []int) []StatsInterval {
	b := subBins(len(targets))
	out := make([]StatsInterval, 0, len(targets)*b)
	for _, t := range targets {
		e := splitEdges(prev[t].Lo, prev[t].Hi, b)
		for i := range b {
			if e[i] < e[i+1] { // degenerate bins (width below float precision) merge
				out = append(out, StatsInterval{e[i], e[i+1]})
			}
		}
	}
	return out
}

// checkTargets validates a refinement request on the partner.
func checkTargets(targets []int, prev int, maxTargets int) error {
	if len(targets) > maxTargets {
		return fmt.Errorf("%d bins to refine, the release allows %d", len(targets), maxTargets)
	}
	for i, t := range targets {
		if t < 0 || t >= prev || (i > 0 && t <= targets[i-1]) {
			return errors.New("refinement targets out of range or not increasing")
		}
	}
	return nil
}

// intervalOf returns the bin of x among sorted disjoint intervals, -1 if
// none holds it.
func intervalOf(ivs []StatsInterval, x float64) int {
	i, _ := slices.BinarySearchFunc(ivs, x, func(iv StatsInterval, x float64) int {
		if iv.Lo <= x {
			return -1
		}
		return 1
	}) // i = number of intervals with Lo ≤ x
	if i == 0 || x >= ivs[i-1].Hi {
		return -1
	}
	return i - 1
}

func intervalLabel(iv StatsInterval) string {
	return "[" + strconv.FormatFloat(iv.Lo, 'g', -1, 64) + "," + strconv.FormatFloat(iv.Hi, 'g', -1, 64) + ")"
}

func intervalLabels(ivs []StatsInterval) []string {
	out := make([]string, len(ivs))
	for i, iv := range ivs {
		out[i] = intervalLabel(iv)
	}
	return out
}

// qStep is one round's answer for a quantile track: the bin holding the
// rank, the rows below it and in it.
type qStep struct {
	iv           StatsInterval
	below, count int64
}

// qTrack follows one (group, probability) through the rounds on the bank.
type qTrack struct {
	col   int // group index; G is the overall column ("all") when G > 1
	p     float64
	n     int64 // present rows of the group (round 1)
	rank  int64 // ⌈p·n⌉: the quantile is the rank-th smallest value
	idx   int   // bin of the latest round holding the rank; -1 when done
	steps []qStep
}

// quantileChain is the bank's state for one quantile entry.
type quantileChain struct {
	first   StatsRelease
	names   []string // track columns: groups, then "all" when G > 1
	ivs     []StatsInterval
	targets []int
	tracks  []*qTrack
	eps     float64
	noisy   bool
}

func newQuantileChain(rel StatsRelease, groups []string) *quantileChain {
	c := &quantileChain{first: rel, names: slices.Clone(groups)}
	if len(groups) > 1 {
		c.names = append(c.names, "all")
	}
	for col := range c.names {
		for _, p := range rel.Probabilities {
			c.tracks = append(c.tracks, &qTrack{col: col, p: p, idx: -1})
		}
	}
	return c
}

// nextTargets chooses the bins of the latest round to refine: those
// holding a rank, unless they hold fewer than max(k, 1) rows (nothing finer
// could be shown) or are already at most precision wide.
func (c *quantileChain) nextTargets(k int64, precision float64) []int {
	var out []int
	for _, t := range c.tracks {
		if t.idx < 0 {
			continue
		}
		s := t.steps[len(t.steps)-1]
		if s.count < max(k, 1) || (precision > 0 && s.iv.Hi-s.iv.Lo <= precision) {
			t.idx = -1
			continue
		}
		if !slices.Contains(out, t.idx) {
			out = append(out, t.idx)
		}
	}
	slices.Sort(out)
	return out
}

// update consumes one round's histogram counts[bin][group] over c.ivs;
// round 1 when c.targets is nil.
func (c *quantileChain) update(counts [][]int64, round int) {
	G := len(c.names)
	if G > 1 {
		G--
	}
	at := func(b, col int) int64 {
		var v int64
		if col < G {
			v = counts[b][col]
		} else {
			for g := range G {
				v += max(counts[b][g], 0)
			}
		}
		return max(v, 0) // DP noise can make a count negative
	}
	for _, t := range c.tracks {
		var from, to int
		var below int64
		switch {
		case round == 1:
			from, to = 0, len(c.ivs)
			for b := range c.ivs {
				t.n += at(b, t.col)
			}
			if t.n == 0 {
				continue
			}
			t.rank = min(max(int64(math.Ceil(t.p*float64(t.n))), 1), t.n)
		case t.idx < 0:
			continue
		default:
			if _, ok := slices.BinarySearch(c.targets, t.idx); !ok {
				t.idx = -1
				continue
			}
			// sub-bins of target j: those of c.ivs inside its interval.
			parent := t.steps[len(t.steps)-1].iv
			below = t.steps[len(t.steps)-1].below
			from = 0
			for from < len(c.ivs) && c.ivs[from].Lo < parent.Lo {
				from++
			}
			to = from
			for to < len(c.ivs) && c.ivs[to].Hi <= parent.Hi {
				to++
			}
			if from == to {
				t.idx = -1
				continue
			}
		}
		sel, cum := -1, below
		for b := from; b < to; b++ {
			n := at(b, t.col)
			if cum+n >= t.rank {
				sel = b
				break
			}
			cum += n
		}
		if sel < 0 { // only under DP noise: the rank lies past the bins
			sel = to - 1
			cum -= at(sel, t.col)
		}
		t.idx = sel
		t.steps = append(t.steps, qStep{iv: c.ivs[sel], below: cum, count: at(sel, t.col)})
	}
}

// cells renders the quantiles: each as the finest interval holding at
// least max(k, 1) rows, with the value interpolated inside it (rounded to
// precision when set); suppressed when the group has fewer than k rows or
// no interval qualifies.
func (c *quantileChain) cells(k int64, precision float64) []StatsCell {
	var noise *StatsNoise
	if c.noisy {
		noise = &StatsNoise{Mechanism: "derived", Epsilon: c.eps}
	}
	var out []StatsCell
	for _, t := range c.tracks {
		cell := StatsCell{Column: c.first.Column, Statistic: "quantile", Group: c.names[t.col], Probability: t.p, Noise: noise}
		best := -1
		for i, s := range t.steps {
			if s.count >= max(k, 1) {
				best = i
			}
		}
		if t.n == 0 || t.n < k || best < 0 {
			cell.Suppressed = t.n > 0
			out = append(out, cell)
			continue
		}
		s := t.steps[best]
		v := s.iv.Lo + (float64(t.rank-s.below)-0.5)/float64(s.count)*(s.iv.Hi-s.iv.Lo)
		v = min(max(v, s.iv.Lo), s.iv.Hi)
		if precision > 0 {
			v = math.Round(v/precision) * precision
		}
		cell.Value, cell.Rows, cell.Bin = &v, s.count, intervalLabel(s.iv)
		cell.Interval = []float64{s.iv.Lo, s.iv.Hi}
		out = append(out, cell)
	}
	return out
}

// decode consumes one round's release on the bank: it checks the plan and
// the bins against the chain's own computation of them and updates the
// tracks.
func (c *quantileChain) decode(rel StatsRelease, meta statsMeta, totals []int64, L int) error {
	if rel.Round == 1 {
		if err := checkRange(meta.Range); err != nil {
			return err
		}
		c.ivs = round1Intervals(meta.Range[0], meta.Range[1], rel.Bins)
	} else {
		c.ivs = refineIntervals(c.ivs, c.targets)
	}
	plan, err := fedlearn.ParseBinnedPlan(meta.Plan, L)
	if err != nil {
		return err
	}
	nv := len(rel.Vectors)
	if len(plan.NumBins) != 1 || plan.L != L || plan.NumBins[0] != len(c.ivs) || !slices.Equal(meta.Labels, intervalLabels(c.ivs)) ||
		nv == 0 || len(totals) != nv*plan.Multipliers() {
		return errors.New("plan does not match the release")
	}
	m := plan.Multipliers()
	per := make([][]int64, nv)
	for v := range per {
		per[v] = totals[v*m : (v+1)*m]
	}
	hs, err := plan.Decode(per)
	if err != nil {
		return err
	}
	c.update(hs[0].Counts, rel.Round)
	c.eps += meta.Epsilon
	c.noisy = c.noisy || meta.Epsilon > 0
	return nil
}
