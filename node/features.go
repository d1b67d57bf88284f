package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

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
// nil), and returns their concrete names and the positions where a
// feature was missing (incomplete; positions without a row are not):
//   - a number column as itself;
//   - an indicator column=level as its 0/1 indicator;
//   - a categorical column (most of its non-null cells are not numbers) as
//     one indicator per level, in sorted order, but the most frequent one,
//     the reference. R's glm takes the first level as the reference; the
//     fitted model and its scores are the same, only the coefficients'
//     parametrisation differs, and the most frequent reference keeps the
//     indicators far from collinear (a rare reference makes the others sum
//     to nearly 1, which slows gradient descent).
//
// Whether a column is categorical, and its levels, are decided over the
// whole dataset, not the rows in mask: the names are announced to the
// peer, and on the bank the rows in mask are its matched customers, whom
// the partner must not learn anything about. An expanded indicator that is
// constant over the rows used (a level none of them has) is kept; its
// weight stays 0.
func alignedFeatures(ctx context.Context, in *alignedInputs, cols []string, mask []bool) (names []string, feats [][]float64, incomplete []bool, err error) {
	incomplete = make([]bool, in.al.Length)
	hasRow := make([]bool, in.al.Length)
	for _, pos := range in.al.Positions {
		hasRow[pos] = true
	}
	add := func(name string, v []float64, p []bool, expanded bool) error {
		if err := checkFeature(name, v, p, mask); err != nil && !(expanded && errors.Is(err, errConstantFeature)) {
			return err
		}
		for i, ok := range p {
			incomplete[i] = incomplete[i] || (hasRow[i] && !ok)
		}
		imputeMean(v, p, mask)
		names, feats = append(names, name), append(feats, v)
		return nil
	}
	all, allPresent, err := dataset.Columns(ctx, in.dspec, cols) // one pass for every column
	if err != nil {
		return nil, nil, nil, fmt.Errorf("node: features of dataset %s: %w", in.ds.Spec.Name, err)
	}
	for c, col := range cols {
		vals, present := all[c], allPresent[c]
		all[c], allPresent[c] = nil, nil
		var cat *categorical
		if _, _, indicator := dataset.SplitIndicator(col); !indicator && slices.Contains(present, false) {
			// Not a number in every row: perhaps categorical.
			if cat, err = categoricalLevels(ctx, in, col, present); err != nil {
				return nil, nil, nil, err
			}
		}
		if cat == nil {
			v, p, _ := align(in, col, vals, present, nil)
			if err := add(col, v, p, false); err != nil {
				return nil, nil, nil, err
			}
			continue
		}
		// Each level's indicator from the cells already read, as the
		// dataset reads col=level (1 where the trimmed cell is the level,
		// 0 at another level, no value where the cell is null), not by a
		// third pass over the file (0.25 s at 1e6 rows in a training
		// job's profile).
		for _, level := range cat.levels {
			v := make([]float64, len(cat.cells))
			for r, c := range cat.cells {
				if cat.present[r] && c == level {
					v[r] = 1
				}
			}
			name := col + "=" + level
			v, p, _ := align(in, name, v, cat.present, nil)
			if err := add(name, v, p, true); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	return names, feats, incomplete, nil
}

// categorical is a categorical column: its trimmed cells by dataset row
// (present: not null) and the levels that become indicators.
type categorical struct {
	cells   []string
	present []bool
	levels  []string
}

// categoricalLevels returns, when col is categorical (most of its non-null
// cells in the dataset are not numbers; numeric[row] tells which parsed),
// its cells and the levels that become indicators: sorted, the most
// frequent one (the reference; ties: the first) left out. It returns nil
// for a number column. Both are decided over every row of the dataset.
func categoricalLevels(ctx context.Context, in *alignedInputs, col string, numeric []bool) (*categorical, error) {
	cells, present, err := dataset.StringColumn(ctx, in.dspec, col)
	if err != nil {
		return nil, fmt.Errorf("node: column %s of dataset %s: %w", col, in.ds.Spec.Name, err)
	}
	counts := map[string]int{}
	nonNull, numbers := 0, 0
	for r, ok := range present {
		if !ok {
			continue
		}
		nonNull++
		if r < len(numeric) && numeric[r] {
			numbers++
		}
		counts[cells[r]]++
	}
	if nonNull == 0 || 2*numbers >= nonNull {
		return nil, nil
	}
	formatted := 0
	for c, k := range counts {
		if formattedNumber(c) {
			formatted += k
		}
	}
	if 2*(numbers+formatted) > nonNull {
		// Read as categories these would be silently wrong (or too many).
		// The error describes the cells, never quotes one.
		return nil, fmt.Errorf("node: feature %s: %d of its %d cells are numbers written with a decimal comma, thousands separators, %% or a currency sign; write plain numbers (1234.5), or name the levels as %s=<level> if it is categorical", col, formatted, nonNull, col)
	}
	if len(counts) < 2 {
		return nil, fmt.Errorf("node: feature %s: the categorical column has a single level; drop it", col)
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
	return &categorical{cells: cells, present: present, levels: slices.Delete(levels, ref, ref+1)}, nil
}

// formattedNumber reports whether a cell is a number in a spreadsheet's
// display format rather than a plain one: digits with a decimal comma or
// thousands separators (, . space ' _), a leading or trailing currency
// sign or a trailing %, and nothing else.
func formattedNumber(c string) bool {
	c = strings.TrimSpace(c)
	if _, err := strconv.ParseFloat(c, 64); err == nil {
		return false // a plain number
	}
	signed := false // a currency or percent sign makes a number formatted
	for _, affix := range []string{"%", "$", "€", "£", "¥", "USD", "EUR", "CNY", "RMB"} {
		t := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(c, affix), affix))
		signed, c = signed || t != c, t
	}
	c = strings.TrimPrefix(strings.TrimPrefix(c, "-"), "+")
	digits, seps := 0, 0
	for _, r := range c {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == ',' || r == '.' || r == ' ' || r == '\'' || r == '_' || r == '\u00a0' || r == '\u202f':
			seps++
		default:
			return false
		}
	}
	return digits > 0 && (seps > 0 || signed)
}

// errConstantFeature marks a feature that never varies over the rows used
// (its text is the package prefix of the messages that wrap it).
var errConstantFeature = errors.New("node")

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
		return fmt.Errorf("%w: feature %s: every row used has level %q; drop the feature", errConstantFeature, col, level)
	case !varies && indicator:
		return fmt.Errorf("%w: feature %s: no row used has level %q (levels are case-sensitive); drop the feature or fix the level", errConstantFeature, col, level)
	case !varies:
		return fmt.Errorf("%w: feature %s is constant over the rows used; drop it", errConstantFeature, col)
	}
	return nil
}

// alignedLabel reads a 0/1 label column (boolean-ish cells) onto the L
// positions.
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
