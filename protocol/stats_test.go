package protocol

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

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
			cancel()
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
			if res.Releases != 4 || run.released != 4 {
				t.Errorf("releases: got bank %d partner %d, want 4", res.Releases, run.released)
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
		{"statistics:\n  - {column: age, kinds: [quantiles], probabilities: [0.5]}\n", "not supported yet"},
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
