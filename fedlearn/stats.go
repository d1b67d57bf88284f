package fedlearn

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
)

// This file holds the plaintext side of the statistics of DESIGN §4: how the
// partner turns its columns into multiplier columns for InnerProducts, how
// the bank builds its indicator vectors, and how the bank decodes decrypted
// inner products into answers. No cryptography here.

// GroupVectors builds the bank's indicator vectors m⊙[group==g] for
// g = 0…groups-1 (step E0). group[i] outside [0,groups) counts as no group.
func GroupVectors(match []bool, group []int, groups int) ([][]int64, error) {
	if len(match) != len(group) || groups < 1 {
		return nil, errors.New("fedlearn: match/group length mismatch")
	}
	out := make([][]int64, groups)
	for g := range out {
		out[g] = make([]int64, len(match))
	}
	for i, m := range match {
		if m && group[i] >= 0 && group[i] < groups {
			out[group[i]][i] = 1
		}
	}
	return out, nil
}

// Packing describes a digit-packed bank vector: position i holds
// m_i·2^(DigitBits·group_i), so one inner product with a 0/1 partner column
// yields all per-group counts as base-2^DigitBits digits. Only valid for
// counts (histograms, crosstabs, WOE/IV), not for sums of values.
type Packing struct {
	Groups    int
	DigitBits int
}

// PackGroups builds the digit-packed vector (step E0, counts only). It
// returns ErrOverflow if groups·DigitBits does not fit below t/2.
func PackGroups(p Params, match []bool, group []int, groups int) ([]int64, Packing, error) {
	if err := p.validate(); err != nil {
		return nil, Packing{}, err
	}
	if len(match) != len(group) || groups < 1 {
		return nil, Packing{}, errors.New("fedlearn: match/group length mismatch")
	}
	pk := Packing{Groups: groups, DigitBits: bits.Len(uint(len(match)))}
	if groups*pk.DigitBits > p.LogT-1 {
		return nil, pk, ErrOverflow
	}
	v := make([]int64, len(match))
	for i, m := range match {
		if m && group[i] >= 0 && group[i] < groups {
			v[i] = 1 << (pk.DigitBits * group[i])
		}
	}
	return v, pk, nil
}

// Unpack splits decrypted packed totals into per-group totals [group][k].
func (pk Packing) Unpack(totals []int64) ([][]int64, error) {
	out := make([][]int64, pk.Groups)
	for g := range out {
		out[g] = make([]int64, len(totals))
	}
	mask := int64(1)<<pk.DigitBits - 1
	for k, v := range totals {
		if v < 0 {
			return nil, fmt.Errorf("fedlearn: negative packed count")
		}
		for g := range pk.Groups {
			out[g][k] = v >> (pk.DigitBits * g) & mask
		}
	}
	return out, nil
}

// NumericColumn is one partner numeric feature over the L aligned positions.
type NumericColumn struct {
	Values  []float64
	Present []bool // nil: all present. Absent positions are excluded and counted as missing.
	// Bits is the fixed-point magnitude: values are scaled by a power of two
	// so that max|x| maps below 2^Bits. Default 30 (2 limbs for Σx, 3 for
	// Σx²); 20 needs 1 + 2 limbs (~40% cheaper) at ~2^-10 of the precision.
	Bits int
}

// FeatureLayout is the public description of how one numeric column was
// encoded: x̂ = round(x·2^ScaleBits), sums split in base-2^LimbBits limbs.
type FeatureLayout struct {
	ScaleBits int
	SumLimbs  int
	SqLimbs   int
	Missing   bool // a presence multiplier is included
}

// NumericPlan is the partner's public encoding of a count/sum/sum-of-squares
// query (sent to the bank with the Result). Multiplier order: [all-ones],
// then per feature [presence if Missing], SumLimbs limbs of x̂, SqLimbs limbs
// of x̂².
type NumericPlan struct {
	L        int
	LimbBits int
	Features []FeatureLayout
}

// PlanNumeric encodes the partner's numeric columns (step C0, partner side)
// for per-group count, sum and sum of squares against 0/1 bank indicator
// vectors. It returns the public plan and the multiplier columns to pass to
// InnerProducts.
func PlanNumeric(p Params, cols []NumericColumn) (NumericPlan, [][]int64, error) {
	if err := p.validate(); err != nil {
		return NumericPlan{}, nil, err
	}
	if len(cols) == 0 {
		return NumericPlan{}, nil, errors.New("fedlearn: no columns")
	}
	L := len(cols[0].Values)
	if L == 0 || L > p.MaxLength {
		return NumericPlan{}, nil, errors.New("fedlearn: column length out of range")
	}
	// Largest limb base with L·2^w < t/2 and an acceptable noise margin.
	w := p.LogT - 1 - bits.Len(uint(L))
	noiseW := float64(p.FloodBits-p.MinSmudgeBits) - math.Log2(noiseTailFactor*freshNoiseStd(1<<p.LogN)) - 0.5*math.Log2(float64(L))
	w = min(w, int(math.Floor(noiseW)))
	if w < 2 {
		return NumericPlan{}, nil, ErrOverflow
	}
	plan := NumericPlan{L: L, LimbBits: w}
	ones := make([]int64, L)
	for i := range ones {
		ones[i] = 1
	}
	mult := [][]int64{ones}
	type encoded struct {
		fl   FeatureLayout
		mult [][]int64
		err  error
	}
	enc := make([]encoded, len(cols))
	parallel(len(cols), func(next func() (int, bool)) {
		for f, ok := next(); ok; f, ok = next() {
			enc[f].fl, enc[f].mult, enc[f].err = encodeNumeric(cols[f], L, w)
		}
	})
	for _, e := range enc {
		if e.err != nil {
			return NumericPlan{}, nil, e.err
		}
		plan.Features = append(plan.Features, e.fl)
		mult = append(mult, e.mult...)
	}
	return plan, mult, nil
}

// encodeNumeric scales one column to fixed point and splits it into limbs.
func encodeNumeric(c NumericColumn, L, w int) (FeatureLayout, [][]int64, error) {
	if len(c.Values) != L || (c.Present != nil && len(c.Present) != L) {
		return FeatureLayout{}, nil, errors.New("fedlearn: column length mismatch")
	}
	target := c.Bits
	if target == 0 {
		target = 30
	}
	if target < 8 || target > 31 {
		return FeatureLayout{}, nil, errors.New("fedlearn: Bits out of range [8,31]")
	}
	present := func(i int) bool { return c.Present == nil || c.Present[i] }
	var maxAbs float64
	missing := false
	for i, x := range c.Values {
		if !present(i) {
			missing = true
			continue
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return FeatureLayout{}, nil, errors.New("fedlearn: non-finite value")
		}
		maxAbs = max(maxAbs, math.Abs(x))
	}
	scale := target
	if maxAbs > 0 {
		_, e := math.Frexp(maxAbs) // maxAbs < 2^e
		scale = target - e
	}
	scale = max(min(scale, 60), -60)
	fl := FeatureLayout{ScaleBits: scale, Missing: missing}
	// |x̂| ≤ 2^target needs target+1 bits, x̂² needs 2·target+1.
	fl.SumLimbs = (target + w) / w
	fl.SqLimbs = (2*target + w) / w
	var mult [][]int64
	var pres []int64
	if missing {
		pres = make([]int64, L)
		mult = append(mult, pres)
	}
	sum := make([][]int64, fl.SumLimbs)
	sq := make([][]int64, fl.SqLimbs)
	for l := range sum {
		sum[l] = make([]int64, L)
	}
	for l := range sq {
		sq[l] = make([]int64, L)
	}
	mask := uint64(1)<<w - 1
	for i, x := range c.Values {
		if !present(i) {
			continue
		}
		if missing {
			pres[i] = 1
		}
		v := int64(math.Round(math.Ldexp(x, scale)))
		a := absU(v)
		for l := range sum {
			m := int64(a >> (w * l) & mask)
			if v < 0 {
				m = -m
			}
			sum[l][i] = m
		}
		a2 := a * a
		for l := range sq {
			sq[l][i] = int64(a2 >> (w * l) & mask)
		}
	}
	mult = append(mult, sum...)
	mult = append(mult, sq...)
	return fl, mult, nil
}

// Multipliers returns the number of multiplier columns of the plan.
func (pl NumericPlan) Multipliers() int {
	n := 1
	for _, f := range pl.Features {
		n += f.SumLimbs + f.SqLimbs
		if f.Missing {
			n++
		}
	}
	return n
}

// NumericStat is the bank's answer for one (feature, group) cell.
type NumericStat struct {
	Count      int64    // matched rows of the group with the value present
	Missing    int64    // matched rows of the group with the value absent
	Sum        *big.Rat // exact Σx̂/2^ScaleBits
	SumSquares *big.Rat // exact Σx̂²/2^(2·ScaleBits)
	Mean       float64
	Variance   float64 // sample variance (n-1); NaN if Count < 2
	Suppressed bool    // set by Suppress: Count below k, all values withheld
}

// Decode turns the decrypted inner products of the plan's multipliers
// against each group vector (totals[g][k]) into [feature][group] answers
// (step S1, bank side).
func (pl NumericPlan) Decode(totals [][]int64) ([][]NumericStat, error) {
	m := pl.Multipliers()
	for _, t := range totals {
		if len(t) != m {
			return nil, fmt.Errorf("fedlearn: %d totals, plan has %d multipliers", len(t), m)
		}
	}
	out := make([][]NumericStat, len(pl.Features))
	for g, t := range totals {
		k := 1
		for f, fl := range pl.Features {
			st := NumericStat{Count: t[0]}
			if fl.Missing {
				st.Count = t[k]
				k++
			}
			st.Missing = t[0] - st.Count
			sum := limbSum(t[k:k+fl.SumLimbs], pl.LimbBits)
			k += fl.SumLimbs
			sq := limbSum(t[k:k+fl.SqLimbs], pl.LimbBits)
			k += fl.SqLimbs
			st.Sum = scaleRat(sum, fl.ScaleBits)
			st.SumSquares = scaleRat(sq, 2*fl.ScaleBits)
			st.Mean, st.Variance = meanVar(st.Count, st.Sum, st.SumSquares)
			if g == 0 {
				out[f] = make([]NumericStat, len(totals))
			}
			out[f][g] = st
		}
	}
	return out, nil
}

func limbSum(limbs []int64, w int) *big.Int {
	s := new(big.Int)
	for l := len(limbs) - 1; l >= 0; l-- {
		s.Lsh(s, uint(w))
		s.Add(s, big.NewInt(limbs[l]))
	}
	return s
}

// scaleRat returns x/2^e exactly.
func scaleRat(x *big.Int, e int) *big.Rat {
	if e >= 0 {
		return new(big.Rat).SetFrac(x, new(big.Int).Lsh(big.NewInt(1), uint(e)))
	}
	return new(big.Rat).SetInt(new(big.Int).Lsh(x, uint(-e)))
}

func meanVar(n int64, sum, sq *big.Rat) (mean, variance float64) {
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	bn := new(big.Rat).SetInt64(n)
	mr := new(big.Rat).Quo(sum, bn)
	mean, _ = mr.Float64()
	if n < 2 {
		return mean, math.NaN()
	}
	// (Σx² − (Σx)²/n)/(n−1), exact in rationals.
	v := new(big.Rat).Mul(sum, mr)
	v.Sub(sq, v)
	v.Quo(v, new(big.Rat).SetInt64(n-1))
	variance, _ = v.Float64()
	return mean, variance
}

// BinnedColumn is one partner categorical or binned numeric feature: Bin[i]
// in [0, NumBins) or -1 when the value is missing.
type BinnedColumn struct {
	Bin     []int
	NumBins int
}

// BinnedPlan is the partner's public encoding of a histogram / crosstab /
// WOE query. Multiplier order: [all-ones], then per feature one 0/1
// indicator per bin.
type BinnedPlan struct {
	L       int
	NumBins []int
}

// PlanBinned encodes binned columns (step C0, partner side).
func PlanBinned(p Params, cols []BinnedColumn) (BinnedPlan, [][]int64, error) {
	if err := p.validate(); err != nil {
		return BinnedPlan{}, nil, err
	}
	if len(cols) == 0 || len(cols[0].Bin) == 0 || len(cols[0].Bin) > p.MaxLength {
		return BinnedPlan{}, nil, errors.New("fedlearn: no columns or bad length")
	}
	L := len(cols[0].Bin)
	plan := BinnedPlan{L: L}
	ones := make([]int64, L)
	for i := range ones {
		ones[i] = 1
	}
	mult := [][]int64{ones}
	ind := make([][][]int64, len(cols))
	errs := make([]error, len(cols))
	parallel(len(cols), func(next func() (int, bool)) {
		for f, ok := next(); ok; f, ok = next() {
			c := cols[f]
			if len(c.Bin) != L || c.NumBins < 1 || c.NumBins > maxBins {
				errs[f] = errors.New("fedlearn: bad binned column")
				continue
			}
			ind[f] = make([][]int64, c.NumBins)
			for b := range ind[f] {
				ind[f][b] = make([]int64, L)
			}
			for i, b := range c.Bin {
				if b >= c.NumBins || b < -1 {
					errs[f] = errors.New("fedlearn: bin index out of range")
					break
				}
				if b >= 0 {
					ind[f][b][i] = 1
				}
			}
		}
	})
	for f, c := range cols {
		if errs[f] != nil {
			return BinnedPlan{}, nil, errs[f]
		}
		mult = append(mult, ind[f]...)
		plan.NumBins = append(plan.NumBins, c.NumBins)
	}
	return plan, mult, nil
}

const maxBins = 1024

// Multipliers returns the number of multiplier columns of the plan.
func (pl BinnedPlan) Multipliers() int {
	n := 1
	for _, b := range pl.NumBins {
		n += b
	}
	return n
}

// Histogram is the bank's answer for one binned feature.
type Histogram struct {
	Counts     [][]int64 // [bin][group]
	Missing    []int64   // [group] matched rows with the partner value missing
	Suppressed [][]bool  // [bin][group], set by Suppress
}

// Decode turns per-group totals (totals[g][k], e.g. from Packing.Unpack)
// into one Histogram per feature (step S1, bank side).
func (pl BinnedPlan) Decode(totals [][]int64) ([]Histogram, error) {
	m := pl.Multipliers()
	for _, t := range totals {
		if len(t) != m {
			return nil, fmt.Errorf("fedlearn: %d totals, plan has %d multipliers", len(t), m)
		}
	}
	out := make([]Histogram, len(pl.NumBins))
	k := 1
	for f, nb := range pl.NumBins {
		h := Histogram{Counts: make([][]int64, nb), Missing: make([]int64, len(totals)), Suppressed: make([][]bool, nb)}
		for b := range nb {
			h.Counts[b] = make([]int64, len(totals))
			h.Suppressed[b] = make([]bool, len(totals))
		}
		for g, t := range totals {
			present := int64(0)
			for b := range nb {
				h.Counts[b][g] = t[k+b]
				present += t[k+b]
			}
			h.Missing[g] = t[0] - present
		}
		k += nb
		out[f] = h
	}
	return out, nil
}

// Suppress withholds every (bin, group) cell whose count is below k
// (minimum cell size): the count is zeroed and flagged. Missing counts below
// k are zeroed too. See README "Minimum cell size" for where it runs.
func (h *Histogram) Suppress(k int64) {
	for b := range h.Counts {
		for g, c := range h.Counts[b] {
			if c < k {
				h.Counts[b][g] = 0
				h.Suppressed[b][g] = true
			}
		}
	}
	for g, c := range h.Missing {
		if c < k {
			h.Missing[g] = 0
		}
	}
}

// Suppress withholds every numeric cell with Count below k.
func Suppress(k int64, stats [][]NumericStat) {
	for f := range stats {
		for g := range stats[f] {
			st := &stats[f][g]
			if st.Count < k {
				*st = NumericStat{Suppressed: true, Mean: math.NaN(), Variance: math.NaN()}
			}
		}
	}
}

// WOEIV computes weight of evidence per bin and the information value from
// good (label 0) and bad (label 1) counts per bin:
// WOE_b = ln((good_b/good)/(bad_b/bad)), IV = Σ_b (good_b/good − bad_b/bad)·WOE_b.
// Smoothing: when a bin has an empty good or bad cell, 0.5 is added to both
// of its cells, and the totals good, bad are the sums of the smoothed cells.
// Returns NaN values when good or bad has no row at all.
func WOEIV(good, bad []int64) (woe []float64, iv float64) {
	gs := make([]float64, len(good))
	bs := make([]float64, len(good))
	var G, B float64
	for b := range good {
		gs[b], bs[b] = float64(good[b]), float64(bad[b])
		if good[b] == 0 || bad[b] == 0 {
			gs[b] += 0.5
			bs[b] += 0.5
		}
		G += gs[b]
		B += bs[b]
	}
	woe = make([]float64, len(good))
	var rawG, rawB int64
	for b := range good {
		rawG += good[b]
		rawB += bad[b]
	}
	if rawG == 0 || rawB == 0 {
		for b := range woe {
			woe[b] = math.NaN()
		}
		return woe, math.NaN()
	}
	for b := range good {
		pg, pb := gs[b]/G, bs[b]/B
		woe[b] = math.Log(pg / pb)
		iv += (pg - pb) * woe[b]
	}
	return woe, iv
}

// TGI returns the target group index per bin for group g of a histogram:
// 100·(n_{b,g}/n_g)/(n_b/n). NaN where undefined.
func TGI(h Histogram, g int) []float64 {
	var ng, n int64
	nb := make([]int64, len(h.Counts))
	for b, row := range h.Counts {
		for gg, c := range row {
			nb[b] += c
			n += c
			if gg == g {
				ng += c
			}
		}
	}
	out := make([]float64, len(h.Counts))
	for b := range out {
		if ng == 0 || nb[b] == 0 {
			out[b] = math.NaN()
			continue
		}
		out[b] = 100 * (float64(h.Counts[b][g]) / float64(ng)) / (float64(nb[b]) / float64(n))
	}
	return out
}
