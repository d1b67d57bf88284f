package protocol

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/fedlearn"
)

// statsWorld is a synthetic aligned world: L positions, the bank's match
// indicator, group and label, the partner's columns.
type statsWorld struct {
	L      int
	match  []bool
	group  []int
	names  []string
	label  []int8
	spend  []float64 // real-valued, some missing
	spendP []bool
	orders []float64 // integers, all present
	cat    []string  // categorical, some missing
}

func newStatsWorld(seed uint64, L int) *statsWorld {
	r := rand.New(rand.NewPCG(seed, 1))
	w := &statsWorld{L: L, names: []string{"a", "b", "c"}}
	cats := []string{"beauty", "fashion", "grocery", "home"}
	for range L {
		m := r.IntN(5) < 2
		w.match = append(w.match, m)
		g := r.IntN(10)
		switch {
		case g < 5:
			g = 0
		case g < 9:
			g = 1
		default:
			g = 2
		}
		w.group = append(w.group, g)
		w.label = append(w.label, int8(r.IntN(3)/2))
		present := r.IntN(10) != 0
		w.spendP = append(w.spendP, present)
		v := 0.0
		if present {
			v = math.Round(r.ExpFloat64()*80000) / 100
		}
		w.spend = append(w.spend, v)
		w.orders = append(w.orders, float64(r.IntN(40)))
		c := cats[r.IntN(len(cats))]
		if r.IntN(20) == 0 {
			c = ""
		}
		w.cat = append(w.cat, c)
	}
	return w
}

func (w *statsWorld) Numeric(_ context.Context, col string) ([]float64, []bool, error) {
	switch col {
	case "monthly_spend":
		return w.spend, w.spendP, nil
	case "orders_90d":
		p := make([]bool, w.L)
		for i := range p {
			p[i] = true
		}
		return w.orders, p, nil
	}
	return nil, nil, fmt.Errorf("no numeric column %s", col)
}

func (w *statsWorld) Categorical(_ context.Context, col string) ([]string, error) {
	if col == "category" {
		return w.cat, nil
	}
	return nil, fmt.Errorf("no categorical column %s", col)
}

func seeded(s uint64) *rand.ChaCha8 {
	var k [32]byte
	k[0] = byte(s)
	return rand.NewChaCha8(k)
}

type statsRun struct {
	bank     *StatsResult
	partner  *StatsPartnerResult
	bErr     error
	pErr     error
	released int
	pipeB    *pipe
}

// runStats runs both sides over the in-memory pipe.
func runStats(t *testing.T, w *statsWorld, specYAML string, k int64, policy func(context.Context, []StatsRelease) ([]StatsDecision, error)) statsRun {
	t.Helper()
	spec, err := ParseStatsSpec([]byte(specYAML))
	if err != nil {
		t.Fatalf("ParseStatsSpec: %v", err)
	}
	if policy == nil {
		policy = func(_ context.Context, rel []StatsRelease) ([]StatsDecision, error) {
			return make([]StatsDecision, len(rel)), nil
		}
	}
	pb, pp := newPipe()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	bcfg := StatsBankConfig{JobID: "job-stats-test", Spec: spec, Rand: seeded(1), Match: w.match, MinCellSize: k}
	if spec.GroupBy != "" {
		bcfg.Group, bcfg.GroupNames = w.group, w.names
	}
	if spec.NeedsLabel() {
		bcfg.Label = w.label
	}
	var run statsRun
	var mu sync.Mutex
	pcfg := StatsPartnerConfig{JobID: "job-stats-test", Spec: spec, Rand: seeded(2), Length: w.L, Data: w, Policy: policy,
		OnRelease: func(context.Context, StatsRelease, StatsDecision, int, []byte) error {
			mu.Lock()
			run.released++
			mu.Unlock()
			return nil
		}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		run.partner, run.pErr = RunStatsPartner(ctx, pp, pcfg, nil)
		if run.pErr != nil {
			// Let the bank read the partner's refusal before unblocking it
			// (cancelling at once races with that read).
			time.AfterFunc(10*time.Second, cancel)
		}
	}()
	run.bank, run.bErr = RunStatsBank(ctx, pb, bcfg, nil)
	if run.bErr != nil {
		cancel()
	}
	wg.Wait()
	run.pipeB = pb
	return run
}

// plain is the naive model: statistics over matched rows in plaintext.
type plain struct {
	n, missing int64
	sum, sq    float64
}

func (w *statsWorld) plainNumeric(vals []float64, pres []bool, group int) plain {
	var p plain
	for i := range w.L {
		if !w.match[i] || (group >= 0 && w.group[i] != group) {
			continue
		}
		if pres != nil && !pres[i] {
			p.missing++
			continue
		}
		p.n++
		p.sum += vals[i]
		p.sq += vals[i] * vals[i]
	}
	return p
}

func cell(t *testing.T, res *StatsResult, col, stat, group, bin string) StatsCell {
	t.Helper()
	for _, c := range res.Cells {
		if c.Column == col && c.Statistic == stat && c.Group == group && c.Bin == bin {
			return c
		}
	}
	t.Fatalf("no cell %s/%s/%s/%s", col, stat, group, bin)
	return StatsCell{}
}

func val(t *testing.T, c StatsCell) float64 {
	t.Helper()
	if c.Value == nil {
		t.Fatalf("cell %s/%s/%s/%s: no value (suppressed=%v)", c.Column, c.Statistic, c.Group, c.Bin, c.Suppressed)
	}
	return *c.Value
}

func relErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

const fullSpec = `group_by: grp
label: lab
statistics:
  - {column: monthly_spend, kinds: [count, sum, mean, variance]}
  - {column: orders_90d, kinds: [count, sum, mean, variance]}
  - {column: monthly_spend, kinds: [histogram, woe_iv], bins: [0, 500, 1000, 2000]}
  - {column: category, kinds: [crosstab, woe_iv]}
`

// TestStatsMatchesPlaintext is the property test: for random worlds the
// protocol's statistics equal the plaintext computation over the matched
// rows (exact counts and integer sums, ≤ 1e-6 relative for real sums,
// means and variances), per group and overall.
func TestStatsMatchesPlaintext(t *testing.T) {
	for _, tc := range []struct {
		seed uint64
		L    int
	}{{1, 1500}, {2, 9000}} { // 9000 spans two ciphertexts
		t.Run(fmt.Sprintf("seed=%d/L=%d", tc.seed, tc.L), func(t *testing.T) {
			w := newStatsWorld(tc.seed, tc.L)
			run := runStats(t, w, fullSpec, 0, nil)
			if run.bErr != nil || run.pErr != nil {
				t.Fatalf("bank: %v; partner: %v", run.bErr, run.pErr)
			}
			res := run.bank
			// The two numeric entries share one release.
			if res.Releases != 3 || run.released != 3 {
				t.Errorf("releases: got bank %d partner %d, want 3", res.Releases, run.released)
			}
			groups := append([]string{}, w.names...)
			for g := -1; g < len(groups); g++ {
				name := "all"
				if g >= 0 {
					name = groups[g]
				}
				// Real-valued column with missing values.
				p := w.plainNumeric(w.spend, w.spendP, g)
				if got := val(t, cell(t, res, "monthly_spend", "count", name, "")); got != float64(p.n) {
					t.Errorf("%s count: got %v, want %d", name, got, p.n)
				}
				if got := val(t, cell(t, res, "monthly_spend", "missing", name, "")); got != float64(p.missing) {
					t.Errorf("%s missing: got %v, want %d", name, got, p.missing)
				}
				mean := p.sum / float64(p.n)
				variance := (p.sq - p.sum*p.sum/float64(p.n)) / float64(p.n-1)
				for stat, want := range map[string]float64{"sum": p.sum, "mean": mean, "variance": variance} {
					if got := val(t, cell(t, res, "monthly_spend", stat, name, "")); relErr(got, want) > 1e-6 {
						t.Errorf("%s %s: got %v, want %v (rel err %.2g)", name, stat, got, want, relErr(got, want))
					}
				}
				// Integer column: exact sum.
				q := w.plainNumeric(w.orders, nil, g)
				c := cell(t, res, "orders_90d", "sum", name, "")
				if wantExact := big.NewRat(int64(q.sum), 1).RatString(); c.Exact != wantExact {
					t.Errorf("%s orders sum: got %s, want exactly %s", name, c.Exact, wantExact)
				}
			}
			// Histogram per bin and group, and WOE/IV against the label.
			edges := []float64{0, 500, 1000, 2000}
			labels := binLabels(edges)
			good, bad := make([]int64, len(labels)), make([]int64, len(labels))
			hist := make([][]int64, len(labels))
			for b := range hist {
				hist[b] = make([]int64, 3)
			}
			for i := range w.L {
				if !w.match[i] || !w.spendP[i] {
					continue
				}
				b := binOf(edges, w.spend[i])
				hist[b][w.group[i]]++
				if w.label[i] == 0 {
					good[b]++
				} else {
					bad[b]++
				}
			}
			for b, l := range labels {
				for g, name := range groups {
					if got := val(t, cell(t, res, "monthly_spend", "histogram", name, l)); got != float64(hist[b][g]) {
						t.Errorf("histogram %s/%s: got %v, want %d", l, name, got, hist[b][g])
					}
				}
			}
			woe, iv := fedlearn.WOEIV(good, bad)
			for b, l := range labels {
				if got := val(t, cell(t, res, "monthly_spend", "woe", "all", l)); relErr(got, woe[b]) > 1e-9 {
					t.Errorf("woe %s: got %v, want %v", l, got, woe[b])
				}
			}
			if got := val(t, cell(t, res, "monthly_spend", "iv", "all", "")); relErr(got, iv) > 1e-9 {
				t.Errorf("iv: got %v, want %v", got, iv)
			}
			// Crosstab of the categorical column, including missing.
			ct := map[string]float64{}
			for i := range w.L {
				if w.match[i] && w.group[i] == 0 {
					c := w.cat[i]
					if c == "" {
						c = "(missing)"
					}
					ct[c]++
				}
			}
			for c, want := range ct {
				if got := val(t, cell(t, res, "category", "crosstab", "a", c)); got != want {
					t.Errorf("crosstab %s/a: got %v, want %v", c, got, want)
				}
			}
			if res.Matched == 0 || run.partner.Length != w.L {
				t.Errorf("sizes: matched %d, partner L %d", res.Matched, run.partner.Length)
			}
		})
	}
}

// TestStatsSuppression: with k above a group's size every cell of that
// group is withheld, and a second group is withheld with it so that the
// overall total does not reveal it.
func TestStatsSuppression(t *testing.T) {
	w := newStatsWorld(3, 2000)
	sizes := make([]int64, 3)
	for i := range w.L {
		if w.match[i] && w.spendP[i] {
			sizes[w.group[i]]++
		}
	}
	k := sizes[2] + 1 // group "c" is ~10 %: below k, the others above
	if sizes[0] < k || sizes[1] < k {
		t.Fatalf("world sizes %v unsuitable for k=%d", sizes, k)
	}
	run := runStats(t, w, "group_by: grp\nstatistics:\n  - {column: monthly_spend, kinds: [count, sum, mean]}\n  - {column: monthly_spend, kinds: [histogram], bins: [100, 1000]}\n", k, nil)
	if run.bErr != nil || run.pErr != nil {
		t.Fatalf("bank: %v; partner: %v", run.bErr, run.pErr)
	}
	for _, stat := range []string{"count", "sum", "mean"} {
		c := cell(t, run.bank, "monthly_spend", stat, "c", "")
		if !c.Suppressed || c.Value != nil {
			t.Errorf("%s of small group: got %+v, want suppressed", stat, c)
		}
	}
	// Complementary: one more group withheld, so all − shown ≠ c.
	shown := 0
	for _, g := range []string{"a", "b"} {
		if !cell(t, run.bank, "monthly_spend", "count", g, "").Suppressed {
			shown++
		}
	}
	if shown != 1 {
		t.Errorf("complementary suppression: got %d of the two large groups shown, want 1", shown)
	}
	if cell(t, run.bank, "monthly_spend", "count", "all", "").Suppressed {
		t.Errorf("overall count suppressed, want shown")
	}
	// No histogram row or column has exactly one withheld cell.
	perBin, perGroup := map[string]int{}, map[string]int{}
	for _, c := range run.bank.Cells {
		if c.Statistic == "histogram" && c.Suppressed {
			if c.Value != nil || c.Rows != 0 {
				t.Errorf("suppressed cell with a value or row count: %+v", c)
			}
			if c.Group != "all" {
				perBin[c.Bin]++
			}
			perGroup[c.Group]++
		}
	}
	for b, n := range perBin {
		if n == 1 {
			t.Errorf("bin %s: exactly one withheld group cell", b)
		}
	}
	for g, n := range perGroup {
		if n == 1 {
			t.Errorf("group %s: exactly one withheld bin", g)
		}
	}
}

// TestStatsDP: with ε the partner adds noise under encryption: the counts
// move (not all equal to the truth), the noise is described, and a budget
// accounted in the policy refuses the job once spent, on both sides, with
// no share produced.
func TestStatsDP(t *testing.T) {
	w := newStatsWorld(4, 3000)
	budget := fedlearn.NewBudget(2.5)
	policy := func(_ context.Context, rel []StatsRelease) ([]StatsDecision, error) {
		total := 0.0
		for _, r := range rel {
			total += r.Epsilon
		}
		if err := budget.Spend(total); err != nil {
			return nil, fmt.Errorf("dp budget: %w (remaining %.2f, asked %.2f)", err, budget.Remaining(), total)
		}
		d := make([]StatsDecision, len(rel))
		for i, r := range rel {
			d[i].Epsilon = r.Epsilon
		}
		return d, nil
	}
	spec := "group_by: grp\nepsilon: 1\nstatistics:\n  - {column: orders_90d, kinds: [count, sum, mean]}\n  - {column: category, kinds: [crosstab]}\n"
	run := runStats(t, w, spec, 0, policy)
	if run.bErr != nil || run.pErr != nil {
		t.Fatalf("bank: %v; partner: %v", run.bErr, run.pErr)
	}
	if run.bank.Epsilon != 2 || run.partner.Epsilon != 2 {
		t.Errorf("epsilon spent: got bank %v partner %v, want 2", run.bank.Epsilon, run.partner.Epsilon)
	}
	differ := 0
	for g := range 3 {
		want := w.plainNumeric(w.orders, nil, g)
		c := cell(t, run.bank, "orders_90d", "count", w.names[g], "")
		if c.Noise == nil || c.Noise.Mechanism != "laplace" || c.Noise.Epsilon <= 0 {
			t.Errorf("count noise: got %+v, want laplace with ε", c.Noise)
		}
		got := val(t, c)
		if got != float64(want.n) {
			differ++
		}
		if math.Abs(got-float64(want.n)) > 100 {
			t.Errorf("noisy count %v too far from %d", got, want.n)
		}
		s := val(t, cell(t, run.bank, "orders_90d", "sum", w.names[g], ""))
		if relErr(s, want.sum) > 0.5 {
			t.Errorf("noisy sum %v too far from %v", s, want.sum)
		}
	}
	hc := cell(t, run.bank, "category", "crosstab", "a", "home")
	if hc.Noise == nil || hc.Noise.Mechanism != "laplace" {
		t.Errorf("crosstab noise: got %+v", hc.Noise)
	}
	if differ == 0 {
		t.Errorf("all noisy counts equal the truth: no noise added?")
	}
	// Second job: 2 more ε on a budget of 0.5 left → refused.
	run = runStats(t, w, spec, 0, policy)
	for side, err := range map[string]error{"bank": run.bErr, "partner": run.pErr} {
		if !errors.Is(err, ErrStatsRefused) || !strings.Contains(err.Error(), "budget") {
			t.Errorf("%s: got %v, want ErrStatsRefused naming the budget", side, err)
		}
	}
	if run.released != 0 {
		t.Errorf("refused job released %d shares, want 0", run.released)
	}
}

// TestStatsRefusedColumn: the partner's policy refuses a column not in the
// agreement before any key exists: both sides fail with a clear error and
// nothing is released; only hello and the refusal crossed the wire.
func TestStatsRefusedColumn(t *testing.T) {
	w := newStatsWorld(5, 500)
	policy := func(_ context.Context, rel []StatsRelease) ([]StatsDecision, error) {
		for _, r := range rel {
			if r.Column != "orders_90d" {
				return nil, fmt.Errorf("column %s is not granted by the agreement", r.Column)
			}
		}
		return make([]StatsDecision, len(rel)), nil
	}
	run := runStats(t, w, "statistics:\n  - {column: orders_90d, kinds: [sum]}\n  - {column: monthly_spend, kinds: [mean]}\n", 0, policy)
	for side, err := range map[string]error{"bank": run.bErr, "partner": run.pErr} {
		if !errors.Is(err, ErrStatsRefused) || !strings.Contains(err.Error(), "monthly_spend is not granted") {
			t.Errorf("%s: got %v, want ErrStatsRefused naming the column", side, err)
		}
	}
	if run.released != 0 {
		t.Errorf("released %d, want 0", run.released)
	}
	for _, m := range run.pipeB.sent {
		if m.Step != "stats.hello" {
			t.Errorf("bank sent %s after a refusal", m.Step)
		}
	}
}

// TestStatsWirePrivacy: the partner receives only hello metadata, its key
// share peer message and ciphertexts; the hello carries no group names.
func TestStatsWirePrivacy(t *testing.T) {
	w := newStatsWorld(6, 800)
	run := runStats(t, w, "group_by: grp\nstatistics:\n  - {column: orders_90d, kinds: [count]}\n", 0, nil)
	if run.bErr != nil || run.pErr != nil {
		t.Fatalf("bank: %v; partner: %v", run.bErr, run.pErr)
	}
	steps := map[string]int{}
	for _, m := range run.pipeB.sent {
		steps[m.Step]++
		if m.Step == "stats.hello" {
			for _, name := range w.names {
				if strings.Contains(string(m.Payload), `"`+name+`"`) {
					t.Errorf("hello carries group name %q", name)
				}
			}
		}
	}
	want := map[string]int{"stats.hello": 1, "stats.ckg": 1, "stats.vec": 3, "stats.done": 1}
	for s, n := range want {
		if steps[s] != n {
			t.Errorf("bank sent %d %s, want %d", steps[s], s, n)
		}
	}
	if len(steps) != len(want) {
		t.Errorf("bank sent steps %v, want only %v", steps, want)
	}
}

func TestParseStatsSpec(t *testing.T) {
	for _, tc := range []struct{ yml, err string }{
		{"statistics:\n  - {column: age, kinds: [quantiles], probabilities: [0.5, 1]}\n", "each in (0, 1)"},
		{"statistics:\n  - {column: age, kinds: [quantiles]}\n", "need 1..16 probabilities"},
		{"statistics:\n  - {column: age, kinds: [quantiles], probabilities: [0.5], rounds: 9}\n", "rounds"},
		{"statistics:\n  - {column: age, kinds: [count], probabilities: [0.5]}\n", "only for quantiles"},
		{"statistics:\n  - {column: age, kinds: [quantiles], probabilities: [0.1, 0.5]}\n", ""},
		{"statistics: []\n", "at least one"},
		{"statistics:\n  - {column: x, kinds: [median]}\n", "unknown kind"},
		{"statistics:\n  - {column: x, kinds: [histogram]}\n", "needs bin edges"},
		{"statistics:\n  - {column: x, kinds: [histogram], bins: [2, 1]}\n", "strictly increasing"},
		{"statistics:\n  - {column: x, kinds: [woe_iv], bins: [1]}\n", "needs a bank label"},
		{"group_by: g\nbogus: 1\nstatistics:\n  - {column: x, kinds: [count]}\n", "bogus"},
		{"group_by: g\nstatistics:\n  - {column: x, kinds: [count, woe_iv], bins: [1]}\n", ""},
	} {
		_, err := ParseStatsSpec([]byte(tc.yml))
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseStatsSpec(%q): got %v, want error containing %q", tc.yml, err, tc.err)
		}
	}
	s, _ := ParseStatsSpec([]byte("group_by: g\nstatistics:\n  - {column: x, kinds: [count, histogram, woe_iv], bins: [1]}\n"))
	rels := s.Releases(2)
	if len(rels) != 2 || rels[0].Binned || !rels[1].Binned || len(rels[1].Vectors) != 4 || rels[1].Label != "g" {
		t.Errorf("Releases: got %+v", rels)
	}
}

func TestSplitLimbs(t *testing.T) {
	for _, x := range []int64{0, 1, -1, 12345678901, -12345678901, 1 << 40} {
		dst := make([]int64, 3)
		splitLimbs(big.NewInt(x), 21, dst)
		got := dst[0] + dst[1]<<21 + dst[2]<<42
		if got != x || dst[0] < 0 || dst[1] < 0 {
			t.Errorf("splitLimbs(%d) = %v (sum %d)", x, dst, got)
		}
	}
}

// plainQuantile is the type-1 (inverse CDF) quantile of the matched
// present values of group (-1: all): the ⌈p·n⌉-th smallest, and the values.
func (w *statsWorld) plainQuantile(vals []float64, pres []bool, group int, p float64) (float64, []float64) {
	var xs []float64
	for i := range w.L {
		if w.match[i] && (group < 0 || w.group[i] == group) && (pres == nil || pres[i]) {
			xs = append(xs, vals[i])
		}
	}
	slices.Sort(xs)
	r := max(int(math.Ceil(p*float64(len(xs)))), 1)
	return xs[r-1], xs
}

// TestStatsQuantiles is the property test of quantiles by histogram
// refinement: for every group, the overall column and every probability,
// the reported interval holds the plaintext quantile of the matched rows,
// its row count is exact, and the value is within the final bin width;
// precision stops the refinement early and rounds the value; with k, every
// shown interval rests on at least k rows and a group below k is
// suppressed. Each round is one release (policy, audit hook, share).
func TestStatsQuantiles(t *testing.T) {
	w := newStatsWorld(7, 9000)
	spec := `group_by: grp
statistics:
  - {column: monthly_spend, kinds: [quantiles], probabilities: [0.1, 0.5, 0.9]}
  - {column: orders_90d, kinds: [quantiles], probabilities: [0.25, 0.75], rounds: 3, precision: 1}
`
	var cols = map[string][2]any{"monthly_spend": {w.spend, w.spendP}, "orders_90d": {w.orders, []bool(nil)}}
	check := func(t *testing.T, res *StatsResult, k int64) {
		t.Helper()
		n := 0
		for _, c := range res.Cells {
			if c.Statistic != "quantile" {
				t.Errorf("unexpected cell %+v", c)
				continue
			}
			n++
			g := slices.Index(w.names, c.Group)
			vals, pres := cols[c.Column][0].([]float64), cols[c.Column][1].([]bool)
			q, xs := w.plainQuantile(vals, pres, g, c.Probability)
			if int64(len(xs)) < k {
				if !c.Suppressed || c.Value != nil {
					t.Errorf("%s/%s p=%g: %d rows < k=%d, got %+v, want suppressed", c.Column, c.Group, c.Probability, len(xs), k, c)
				}
				continue
			}
			if c.Value == nil || len(c.Interval) != 2 {
				// Allowed only when even the round-1 bin holding the
				// quantile has fewer than k rows.
				all := make([]bool, w.L)
				for i := range all {
					all[i] = pres == nil || pres[i]
				}
				lo, hi, _ := quantileRange(vals, all)
				ivs := round1Intervals(lo, hi, nil)
				b := intervalOf(ivs, q)
				var in int64
				for _, x := range xs {
					if intervalOf(ivs, x) == b {
						in++
					}
				}
				if !c.Suppressed || in >= max(k, 1) {
					t.Errorf("%s/%s p=%g: no value though round-1 bin %v holds %d ≥ k=%d rows: %+v", c.Column, c.Group, c.Probability, ivs[b], in, k, c)
				}
				continue
			}
			lo, hi := c.Interval[0], c.Interval[1]
			var in int64
			for _, x := range xs {
				if x >= lo && x < hi {
					in++
				}
			}
			prec := 0.0
			if c.Column == "orders_90d" {
				prec = 1
			}
			switch {
			case q < lo || q >= hi:
				t.Errorf("%s/%s p=%g: interval [%g,%g) does not hold the quantile %g", c.Column, c.Group, c.Probability, lo, hi, q)
			case c.Rows != in:
				t.Errorf("%s/%s p=%g: rows %d, want %d in [%g,%g)", c.Column, c.Group, c.Probability, c.Rows, in, lo, hi)
			case math.Abs(*c.Value-q) > hi-lo+prec/2:
				t.Errorf("%s/%s p=%g: value %g, quantile %g, bin width %g", c.Column, c.Group, c.Probability, *c.Value, q, hi-lo)
			case c.Rows < max(k, 1):
				t.Errorf("%s/%s p=%g: shown on %d rows < k=%d", c.Column, c.Group, c.Probability, c.Rows, k)
			case prec > 0 && *c.Value != math.Round(*c.Value):
				t.Errorf("%s/%s p=%g: value %g not at precision 1", c.Column, c.Group, c.Probability, *c.Value)
			}
			if k == 0 && c.Column == "monthly_spend" && hi-lo > 10000.0/4096 {
				t.Errorf("%s/%s p=%g: final bin [%g,%g) wider than 3 rounds of 16", c.Column, c.Group, c.Probability, lo, hi)
			}
		}
		if want := 4 * (3 + 2); n != want {
			t.Errorf("got %d quantile cells, want %d", n, want)
		}
	}
	t.Run("exact", func(t *testing.T) {
		run := runStats(t, w, spec, 0, nil)
		if run.bErr != nil || run.pErr != nil {
			t.Fatalf("bank: %v; partner: %v", run.bErr, run.pErr)
		}
		// monthly_spend: 3 rounds; orders_90d: round 1 bins are 2.5 wide,
		// round 2 ones ≤ 1, so precision skips round 3.
		if run.bank.Releases != 5 || run.released != 5 || len(run.partner.Releases) != 5 {
			t.Errorf("releases: bank %d, partner %d/%d, want 5", run.bank.Releases, run.released, len(run.partner.Releases))
		}
		check(t, run.bank, 0)
	})
	sizes := make([]int64, 3)
	for i := range w.L {
		if w.match[i] && w.spendP[i] {
			sizes[w.group[i]]++
		}
	}
	for _, k := range []int64{60, sizes[2] + 1} { // the second puts group c below k
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
			run := runStats(t, w, spec, k, nil)
			if run.bErr != nil || run.pErr != nil {
				t.Fatalf("bank: %v; partner: %v", run.bErr, run.pErr)
			}
			check(t, run.bank, k)
			if c := cell(t, run.bank, "monthly_spend", "quantile", "c", ""); k > sizes[2] && (!c.Suppressed || c.Value != nil || c.Rows != 0) {
				t.Errorf("group c below k: got %+v", c)
			}
		})
	}
	t.Run("dp", func(t *testing.T) {
		dp := func(_ context.Context, rel []StatsRelease) ([]StatsDecision, error) {
			d := make([]StatsDecision, len(rel))
			for i := range d {
				d[i].Epsilon = 1
			}
			return d, nil
		}
		run := runStats(t, w, "statistics:\n  - {column: orders_90d, kinds: [quantiles], probabilities: [0.5], rounds: 2}\n", 0, dp)
		if run.bErr != nil || run.pErr != nil {
			t.Fatalf("bank: %v; partner: %v", run.bErr, run.pErr)
		}
		c := cell(t, run.bank, "orders_90d", "quantile", "all", c0(t, run.bank))
		q, _ := w.plainQuantile(w.orders, nil, -1, 0.5)
		if c.Noise == nil || c.Noise.Epsilon != 2 || run.bank.Epsilon != 2 || math.Abs(val(t, c)-q) > 2.5 {
			t.Errorf("dp quantile: got %+v (ε spent %g), quantile %g", c, run.bank.Epsilon, q)
		}
	})
}

// c0 returns the bin label of the first quantile cell.
func c0(t *testing.T, res *StatsResult) string {
	for _, c := range res.Cells {
		if c.Statistic == "quantile" {
			return c.Bin
		}
	}
	t.Fatal("no quantile cell")
	return ""
}

// TestQuantileRefineChecks: the partner refuses refinement requests that
// exceed the release's bound, repeat a bin or point outside the previous
// round; intervals and bins agree.
func TestQuantileRefineChecks(t *testing.T) {
	for _, tc := range []struct {
		targets []int
		ok      bool
	}{{nil, true}, {[]int{0, 3}, true}, {[]int{3, 3}, false}, {[]int{3, 1}, false}, {[]int{16}, false}, {[]int{0, 1, 2}, false}} {
		if err := checkTargets(tc.targets, 16, 2); (err == nil) != tc.ok {
			t.Errorf("checkTargets(%v): %v", tc.targets, err)
		}
	}
	lo, hi, err := quantileRange([]float64{18, 90, 55, -1}, []bool{true, true, true, false})
	if err != nil || lo != 16 || hi != 96 {
		t.Errorf("quantileRange: got [%g,%g) %v, want [16,96)", lo, hi, err)
	}
	ivs := round1Intervals(lo, hi, nil)
	ref := refineIntervals(ivs, []int{2, 7})
	if len(ivs) != 16 || len(ref) != 32 || ref[0].Lo != ivs[2].Lo || ref[15].Hi != ivs[2].Hi || ref[16].Lo != ivs[7].Lo {
		t.Errorf("intervals: %v / %v", ivs, ref)
	}
	for _, x := range []float64{16, 20.9, 21, 95.99, 96, 15} {
		b := intervalOf(ivs, x)
		if (b < 0) != (x < 16 || x >= 96) || b >= 0 && (x < ivs[b].Lo || x >= ivs[b].Hi) {
			t.Errorf("intervalOf(%g) = %d", x, b)
		}
	}
	if got := round1Intervals(0, 100, []float64{-5, 10, 50, 100, 200}); len(got) != 3 || got[0] != (StatsInterval{0, 10}) || got[2] != (StatsInterval{50, 100}) {
		t.Errorf("round1Intervals with spec bins: %v", got)
	}
}
