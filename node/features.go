package node

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/tandem-dev/tandem/node/dataset"
)

// Features of a model, read from this node's dataset onto a PSI alignment:
// number columns, indicators (column=level), categorical columns expanded
// into indicators, the label; checked so that nothing silently enters a
// model as a constant.

// maxLevels bounds the indicators one categorical column expands into; a
// column with more levels must name the ones to use (column=level).
const maxLevels = 64

// alignedFeatures reads the spec's features onto the alignment, missing
// values replaced by the feature's mean over the rows in mask (all rows if
// nil), and returns their concrete names:
//   - a number column as itself;
//   - an indicator column=level as its 0/1 indicator;
//   - a categorical column (most of its non-null cells in the rows used are
//     not numbers) as one indicator per level, in sorted order, but the
//     most frequent one, the reference. R's glm takes the first level as
//     the reference; the fitted model and its scores are the same, only
//     the coefficients' parametrisation differs, and the most frequent
//     reference keeps the indicators far from collinear (a rare reference
//     makes the others sum to nearly 1, which slows gradient descent).
func alignedFeatures(ctx context.Context, in *alignedInputs, cols []string, mask []bool) ([]string, [][]float64, error) {
	var names []string
	var feats [][]float64
	add := func(name string, v []float64, p []bool) error {
		if err := checkFeature(name, v, p, mask); err != nil {
			return err
		}
		imputeMean(v, p, mask)
		names, feats = append(names, name), append(feats, v)
		return nil
	}
	for _, col := range cols {
		v, p, err := alignedColumn(ctx, in, col)
		if err != nil {
			return nil, nil, err
		}
		var levels []string
		if !allPresent(p, mask) { // a column of numbers throughout needs no second read
			if levels, err = categoricalLevels(ctx, in, col, p, mask); err != nil {
				return nil, nil, err
			}
		}
		if levels == nil {
			if err := add(col, v, p); err != nil {
				return nil, nil, err
			}
			continue
		}
		for _, level := range levels {
			name := col + "=" + level
			v, p, err := alignedColumn(ctx, in, name)
			if err != nil {
				return nil, nil, err
			}
			if err := add(name, v, p); err != nil {
				return nil, nil, err
			}
		}
	}
	return names, feats, nil
}

// categoricalLevels returns the levels of col over the rows in use that
// become indicators when it is categorical: a plain column (not an
// indicator) most of whose non-null cells there are not numbers
// (numeric[pos] tells which parsed). They are sorted, the most frequent
// level (the reference; ties: the first) left out. It returns nil for a
// number column.
func categoricalLevels(ctx context.Context, in *alignedInputs, col string, numeric, use []bool) ([]string, error) {
	if _, _, indicator := dataset.SplitIndicator(col); indicator {
		return nil, nil
	}
	cells, present, err := dataset.StringColumn(ctx, in.dspec, col)
	if err != nil {
		return nil, fmt.Errorf("node: column %s of dataset %s: %w", col, in.ds.Spec.Name, err)
	}
	counts := map[string]int{}
	nonNull, numbers := 0, 0
	for i, pos := range in.al.Positions {
		r := in.al.Rows[i]
		if r >= uint64(len(cells)) || !present[r] || (use != nil && !use[pos]) {
			continue
		}
		nonNull++
		if numeric[pos] {
			numbers++
		}
		counts[cells[r]]++
	}
	if nonNull == 0 || 2*numbers >= nonNull {
		return nil, nil
	}
	if len(counts) < 2 {
		return nil, fmt.Errorf("node: feature %s: the categorical column has a single level in the rows used; drop it", col)
	}
	if len(counts)-1 > maxLevels {
		return nil, fmt.Errorf("node: feature %s: the categorical column has more than %d levels; list the levels to use as %s=<level>", col, maxLevels+1, col)
	}
	levels := make([]string, 0, len(counts))
	for l := range counts {
		levels = append(levels, l)
	}
	slices.Sort(levels)
	ref := 0
	for i, l := range levels {
		if counts[l] > counts[levels[ref]] {
			ref = i
		}
	}
	return slices.Delete(levels, ref, ref+1), nil
}

// checkFeature refuses a feature that cannot enter a model: one with no
// value in the rows used, or one that never varies there (standardisation
// would silently make it 0). The error names the column, never a value or
// a row count (it reaches the peer, and in initiator mode the bank's
// matched count is not the partner's to know).
func checkFeature(col string, v []float64, present, use []bool) error {
	n, first, varies := 0, 0.0, false
	for i, ok := range present {
		if !ok || (use != nil && !use[i]) {
			continue
		}
		if n == 0 {
			first = v[i]
		} else if v[i] != first {
			varies = true
		}
		n++
	}
	_, level, indicator := dataset.SplitIndicator(col)
	switch {
	case n == 0:
		return fmt.Errorf("node: feature %s has no value in the rows used", col)
	case !varies && indicator && first == 1:
		return fmt.Errorf("node: feature %s: every row used has level %q; drop the feature", col, level)
	case !varies && indicator:
		return fmt.Errorf("node: feature %s: no row used has level %q (levels are case-sensitive); drop the feature or fix the level", col, level)
	case !varies:
		return fmt.Errorf("node: feature %s is constant over the rows used; drop it", col)
	}
	return nil
}

// alignedColumn reads a numeric column of this node's dataset onto the L
// positions: values and presence (false at positions without a row).
func alignedColumn(ctx context.Context, in *alignedInputs, col string) ([]float64, []bool, error) {
	vals, present, err := dataset.Column(ctx, in.dspec, col)
	return align(in, col, vals, present, err)
}

// alignedLabel is alignedColumn for a 0/1 label (boolean-ish cells).
func alignedLabel(ctx context.Context, in *alignedInputs, col string) ([]float64, []bool, error) {
	vals, present, err := dataset.LabelColumn(ctx, in.dspec, col)
	return align(in, col, vals, present, err)
}

func align(in *alignedInputs, col string, vals []float64, present []bool, err error) ([]float64, []bool, error) {
	if err != nil {
		return nil, nil, fmt.Errorf("node: column %s of dataset %s: %w", col, in.ds.Spec.Name, err)
	}
	L := int(in.al.Length)
	v, p := make([]float64, L), make([]bool, L)
	for i, pos := range in.al.Positions {
		r := in.al.Rows[i]
		if r < uint64(len(vals)) && present[r] && !math.IsNaN(vals[r]) && !math.IsInf(vals[r], 0) {
			v[pos], p[pos] = vals[r], true
		}
	}
	return v, p, nil
}

// imputeMean replaces absent values (among use, or all positions if use is
// nil) by the mean of the present ones, so they standardise to 0.
func imputeMean(v []float64, present, use []bool) {
	var s, n float64
	for i, x := range v {
		if present[i] && (use == nil || use[i]) {
			s += x
			n++
		}
	}
	m := 0.0
	if n > 0 {
		m = s / n
	}
	for i := range v {
		if !present[i] {
			v[i] = m
		}
	}
}

// allPresent reports whether every position in use (all if nil) has a
// value.
func allPresent(present, use []bool) bool {
	for i, ok := range present {
		if !ok && (use == nil || use[i]) {
			return false
		}
	}
	return true
}
