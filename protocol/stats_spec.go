package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// StatsSpec is a parsed stats.yaml (issue 5): the statistics a bank asks
// for over the aligned rows of a PSI job.
//
//	group_by: has_card          # optional bank column; one group per value
//	label: has_card             # optional bank 0/1 column for woe_iv (default: group_by)
//	epsilon: 0.5                # optional ε asked per release when DP applies
//	statistics:
//	  - {column: monthly_spend, kinds: [count, sum, mean, variance]}
//	  - {column: monthly_spend, kinds: [histogram, woe_iv], bins: [0, 500, 1000]}
//	  - {column: category, kinds: [crosstab]}
//	  - {column: age, kinds: [quantiles], probabilities: [0.1, 0.5, 0.9]}
//
// Columns are the partner's. quantiles takes optional rounds (histogram
// refinement rounds, default 3, at most 4), precision (stop refining a
// quantile once its bin is at most this wide, and report the value rounded
// to it) and bins (the first round's edges instead of 16 equal bins over
// the partner's published range).
type StatsSpec struct {
	GroupBy    string      `yaml:"group_by" json:"group_by,omitempty"`
	Label      string      `yaml:"label" json:"label,omitempty"`
	Epsilon    float64     `yaml:"epsilon" json:"epsilon,omitempty"`
	Statistics []StatsItem `yaml:"statistics" json:"statistics"`
}

// StatsItem is one entry of a StatsSpec.
type StatsItem struct {
	Column        string    `yaml:"column" json:"column"`
	Kinds         []string  `yaml:"kinds" json:"kinds"`
	Bins          []float64 `yaml:"bins" json:"bins,omitempty"`
	Probabilities []float64 `yaml:"probabilities" json:"probabilities,omitempty"`
	Rounds        int       `yaml:"rounds" json:"rounds,omitempty"`
	Precision     float64   `yaml:"precision" json:"precision,omitempty"`
}

// Statistic kinds of a StatsItem.
var (
	numericKinds = []string{"count", "sum", "mean", "variance"}
	binnedKinds  = []string{"histogram", "woe_iv", "crosstab"}
)

// Limits of a stats spec (peer input: both nodes parse the signed spec).
const (
	maxStatsItems  = 64
	maxStatsEdges  = 63
	MaxStatsGroups = 16 // bank groups (values of group_by) per job
	maxCategories  = 64 // distinct values of a crosstab column
	// quantiles: probabilities per entry, refinement rounds.
	maxProbabilities      = 16
	defaultQuantileRounds = 3
	maxQuantileRounds     = 4
)

// ErrStatsSpec is returned by ParseStatsSpec for an invalid spec; the
// message names the field. Callers map it to InvalidArgument.
var ErrStatsSpec = errors.New("protocol: stats spec")

// ParseStatsSpec decodes and validates a stats.yaml. Unknown fields are
// errors.
func ParseStatsSpec(b []byte) (*StatsSpec, error) {
	if len(b) > 64<<10 {
		return nil, fmt.Errorf("%w: larger than 64 KiB", ErrStatsSpec)
	}
	var s StatsSpec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStatsSpec, err)
	}
	if len(s.Statistics) == 0 {
		return nil, fmt.Errorf("%w: statistics: at least one entry required", ErrStatsSpec)
	}
	if len(s.Statistics) > maxStatsItems {
		return nil, fmt.Errorf("%w: statistics: at most %d entries", ErrStatsSpec, maxStatsItems)
	}
	if s.Epsilon < 0 || math.IsNaN(s.Epsilon) || math.IsInf(s.Epsilon, 0) {
		return nil, fmt.Errorf("%w: epsilon: must be a finite number ≥ 0", ErrStatsSpec)
	}
	if s.Label == "" {
		s.Label = s.GroupBy
	}
	for i, it := range s.Statistics {
		f := fmt.Sprintf("statistics[%d]", i)
		if it.Column == "" {
			return nil, fmt.Errorf("%w: %s.column: required", ErrStatsSpec, f)
		}
		if len(it.Kinds) == 0 {
			return nil, fmt.Errorf("%w: %s.kinds: at least one kind required", ErrStatsSpec, f)
		}
		for _, k := range it.Kinds {
			switch {
			case k != "quantiles" && !slices.Contains(numericKinds, k) && !slices.Contains(binnedKinds, k):
				return nil, fmt.Errorf("%w: %s.kinds: unknown kind %q (want count, sum, mean, variance, histogram, woe_iv, crosstab, quantiles)", ErrStatsSpec, f, k)
			}
		}
		if slices.Contains(it.Kinds, "histogram") && len(it.Bins) == 0 {
			return nil, fmt.Errorf("%w: %s.bins: histogram needs bin edges (use crosstab for a categorical column)", ErrStatsSpec, f)
		}
		if len(it.Bins) > maxStatsEdges {
			return nil, fmt.Errorf("%w: %s.bins: at most %d edges", ErrStatsSpec, f, maxStatsEdges)
		}
		for j, e := range it.Bins {
			if math.IsNaN(e) || math.IsInf(e, 0) || (j > 0 && e <= it.Bins[j-1]) {
				return nil, fmt.Errorf("%w: %s.bins: edges must be finite and strictly increasing", ErrStatsSpec, f)
			}
		}
		if err := checkQuantileItem(it, f); err != nil {
			return nil, err
		}
		if slices.Contains(it.Kinds, "quantiles") && it.Rounds == 0 {
			s.Statistics[i].Rounds = defaultQuantileRounds
		}
		if slices.Contains(it.Kinds, "woe_iv") && s.Label == "" {
			return nil, fmt.Errorf("%w: %s.kinds: woe_iv needs a bank label (label or group_by)", ErrStatsSpec, f)
		}
	}
	return &s, nil
}

// checkQuantileItem validates the quantile fields of an entry.
func checkQuantileItem(it StatsItem, f string) error {
	if !slices.Contains(it.Kinds, "quantiles") {
		switch {
		case len(it.Probabilities) > 0:
			return fmt.Errorf("%w: %s.probabilities: only for quantiles", ErrStatsSpec, f)
		case it.Rounds != 0:
			return fmt.Errorf("%w: %s.rounds: only for quantiles", ErrStatsSpec, f)
		case it.Precision != 0:
			return fmt.Errorf("%w: %s.precision: only for quantiles", ErrStatsSpec, f)
		}
		return nil
	}
	if len(it.Probabilities) == 0 || len(it.Probabilities) > maxProbabilities {
		return fmt.Errorf("%w: %s.probabilities: quantiles need 1..%d probabilities", ErrStatsSpec, f, maxProbabilities)
	}
	for j, p := range it.Probabilities {
		if !(p > 0 && p < 1) || (j > 0 && p <= it.Probabilities[j-1]) {
			return fmt.Errorf("%w: %s.probabilities: must be strictly increasing, each in (0, 1)", ErrStatsSpec, f)
		}
	}
	if it.Rounds < 0 || it.Rounds > maxQuantileRounds {
		return fmt.Errorf("%w: %s.rounds: 1..%d refinement rounds", ErrStatsSpec, f, maxQuantileRounds)
	}
	if it.Precision < 0 || math.IsNaN(it.Precision) || math.IsInf(it.Precision, 0) {
		return fmt.Errorf("%w: %s.precision: must be a finite number ≥ 0", ErrStatsSpec, f)
	}
	return nil
}

// Digest is SHA-256 of the spec's canonical JSON form; both nodes compare
// it before any data moves.
func (s *StatsSpec) Digest() []byte {
	b, _ := json.Marshal(s)
	d := sha256.Sum256(append([]byte("tandem/v1 stats spec\n"), b...))
	return d[:]
}

// NeedsLabel tells whether any statistic uses the bank's label vectors.
func (s *StatsSpec) NeedsLabel() bool {
	for _, it := range s.Statistics {
		if slices.Contains(it.Kinds, "woe_iv") {
			return true
		}
	}
	return false
}

// Columns returns the distinct partner columns the spec reads.
func (s *StatsSpec) Columns() []string {
	var out []string
	for _, it := range s.Statistics {
		if !slices.Contains(out, it.Column) {
			out = append(out, it.Column)
		}
	}
	return out
}

// StatsRelease is one release of the statistics protocol: one encrypted
// Result (one family of statistics over one column, or over several
// columns for count/sum/mean/variance) decrypted by the bank with the
// partner's shares. It is what the partner's policy engine approves.
type StatsRelease struct {
	Index  int    `json:"index"`
	Column string `json:"column"` // the first (for binned releases, only) column
	// Columns lists every column of a numeric release: the numeric entries
	// of a spec asking the same kinds share one release (one count
	// multiplier, one share, one audit record).
	Columns []string  `json:"columns,omitempty"`
	Kinds   []string  `json:"kinds"`
	Binned  bool      `json:"binned"`
	Bins    []float64 `json:"bins,omitempty"` // numeric bin edges; empty: categories
	GroupBy string    `json:"group_by,omitempty"`
	Label   string    `json:"label,omitempty"` // set when woe_iv uses the label vectors
	Groups  int       `json:"groups"`          // bank group vectors multiplied (0 if only woe_iv)
	// Vectors are the indices of the bank vectors multiplied, in order:
	// group vectors 0..G-1, then label vectors G (label 0) and G+1 (label 1).
	Vectors []int `json:"vectors"`
	// Epsilon is the ε the spec asks per release (the policy decides).
	Epsilon float64 `json:"epsilon_requested,omitempty"`

	// Quantiles (Kinds = [quantiles]): round Round of Rounds of histogram
	// refinement. Round 1 is a histogram over the partner's published
	// range (or Bins); round r > 1 splits at most MaxTargets bins of round
	// r-1, chosen by the bank, into equal sub-bins.
	Probabilities []float64 `json:"probabilities,omitempty"`
	Round         int       `json:"round,omitempty"`
	Rounds        int       `json:"rounds,omitempty"`
	Precision     float64   `json:"precision,omitempty"`
	MaxTargets    int       `json:"max_targets,omitempty"`
	// Intervals are the bins actually released, set by the partner when it
	// computes the release (for its audit record); empty in the approval.
	Intervals []StatsInterval `json:"intervals,omitempty"`
}

// StatsInterval is a half-open bin [Lo, Hi) of a quantile round.
type StatsInterval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// ColumnList returns the partner columns the release reads.
func (r StatsRelease) ColumnList() []string {
	if len(r.Columns) > 0 {
		return r.Columns
	}
	return []string{r.Column}
}

// Quantile reports whether the release is a quantile refinement round.
func (r StatsRelease) Quantile() bool { return r.Round > 0 }

// Releases lists the releases of the spec for G bank groups, in protocol
// order: numeric entries asking the same kinds are merged into one release
// (at the position of the first); each entry's binned part is a release;
// each quantile entry is Rounds consecutive releases.
func (s *StatsSpec) Releases(groups int) []StatsRelease {
	var out []StatsRelease
	gv := make([]int, groups)
	for g := range gv {
		gv[g] = g
	}
	numAt := map[string]int{}
	for _, it := range s.Statistics {
		var num, bin []string
		for _, k := range numericKinds {
			if slices.Contains(it.Kinds, k) {
				num = append(num, k)
			}
		}
		for _, k := range it.Kinds {
			if slices.Contains(binnedKinds, k) && !slices.Contains(bin, k) {
				bin = append(bin, k)
			}
		}
		if len(num) > 0 {
			key := strings.Join(num, ",")
			if i, ok := numAt[key]; ok {
				if !slices.Contains(out[i].Columns, it.Column) {
					out[i].Columns = append(out[i].Columns, it.Column)
				}
			} else {
				numAt[key] = len(out)
				out = append(out, StatsRelease{Index: len(out), Column: it.Column, Columns: []string{it.Column}, Kinds: num, GroupBy: s.GroupBy, Groups: groups, Vectors: slices.Clone(gv), Epsilon: s.Epsilon})
			}
		}
		if len(bin) > 0 {
			r := StatsRelease{Index: len(out), Column: it.Column, Kinds: bin, Binned: true, Bins: it.Bins, GroupBy: s.GroupBy, Epsilon: s.Epsilon}
			if slices.Contains(bin, "histogram") || slices.Contains(bin, "crosstab") {
				r.Groups, r.Vectors = groups, slices.Clone(gv)
			}
			if slices.Contains(bin, "woe_iv") {
				r.Label = s.Label
				r.Vectors = append(r.Vectors, groups, groups+1)
			}
			out = append(out, r)
		}
		if slices.Contains(it.Kinds, "quantiles") {
			tracks := groups
			if groups > 1 {
				tracks++ // the overall distribution ("all")
			}
			for round := 1; round <= it.Rounds; round++ {
				out = append(out, StatsRelease{Index: len(out), Column: it.Column, Kinds: []string{"quantiles"}, Binned: true, Bins: it.Bins,
					GroupBy: s.GroupBy, Groups: groups, Vectors: slices.Clone(gv), Epsilon: s.Epsilon,
					Probabilities: it.Probabilities, Round: round, Rounds: it.Rounds, Precision: it.Precision,
					MaxTargets: tracks * len(it.Probabilities)})
			}
		}
	}
	return out
}

// binLabels names the len(edges)+1 bins of a numeric histogram.
func binLabels(edges []float64) []string {
	out := make([]string, 0, len(edges)+1)
	out = append(out, fmt.Sprintf("<%g", edges[0]))
	for i := 1; i < len(edges); i++ {
		out = append(out, fmt.Sprintf("[%g,%g)", edges[i-1], edges[i]))
	}
	return append(out, fmt.Sprintf("≥%g", edges[len(edges)-1]))
}

// binOf returns the bin of x for edges (see binLabels).
func binOf(edges []float64, x float64) int {
	b, _ := slices.BinarySearchFunc(edges, x, func(e, x float64) int {
		switch {
		case e <= x:
			return -1
		default:
			return 1
		}
	})
	return b
}
