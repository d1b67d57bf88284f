package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/protocol"
	"github.com/tandem-dev/tandem/psi/ident"
	"github.com/tandem-dev/tandem/testnet"
)

// e2eRow is one shared customer of the plaintext join: the bank's group
// and the partner's row.
type e2eRow struct {
	group string
	vals  map[string]string
	ids   []string // the partner row's raw identifiers
}

func readCSVFile(t *testing.T, path string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("%s: %v", path, err)
	}
	return recs[0], recs[1:]
}

// joinCSV joins the bank's CSV and a partner's on canonical phone or id
// number (psi/ident), each bank row at most once, independently of the
// nodes.
func joinCSV(t *testing.T, bankFile, partnerFile, groupBy string) []e2eRow {
	t.Helper()
	bh, bank := readCSVFile(t, bankFile)
	ph, part := readCSVFile(t, partnerFile)
	phone, err := ident.ParseKind("cn_mobile")
	if err != nil {
		t.Fatal(err)
	}
	idNo, err := ident.ParseKind("cn_id")
	if err != nil {
		t.Fatal(err)
	}
	canon := func(k ident.Kind, s string) string {
		c, err := ident.Canonical(k, s)
		if err != nil {
			return ""
		}
		return k.String() + ":" + c
	}
	bPhone, bID, bGroup := slices.Index(bh, "phone"), slices.Index(bh, "id_no"), slices.Index(bh, groupBy)
	pPhone, pID := slices.Index(ph, "phone"), slices.Index(ph, "id_no")
	if bPhone < 0 || bID < 0 || bGroup < 0 || pPhone < 0 || pID < 0 {
		t.Fatalf("columns missing: bank %v, partner %v", bh, ph)
	}
	byID := map[string]int{}
	for i, r := range bank {
		for _, c := range []string{canon(phone, r[bPhone]), canon(idNo, r[bID])} {
			if _, dup := byID[c]; c != "" && !dup {
				byID[c] = i
			}
		}
	}
	used := map[int]bool{}
	var out []e2eRow
	for _, r := range part {
		bi, ok := byID[canon(phone, r[pPhone])]
		if !ok || used[bi] {
			bi, ok = byID[canon(idNo, r[pID])]
		}
		if !ok || used[bi] {
			continue
		}
		used[bi] = true
		g := strings.TrimSpace(bank[bi][bGroup])
		if g == "" {
			g = "(missing)"
		}
		row := e2eRow{group: g, vals: map[string]string{}}
		for j, h := range ph {
			row.vals[h] = strings.TrimSpace(r[j])
		}
		for _, s := range []string{r[pPhone], r[pID]} {
			if s = strings.TrimSpace(s); len(s) >= 6 {
				row.ids = append(row.ids, s)
			}
		}
		out = append(out, row)
	}
	return out
}

// numbers returns the present values of column col of the rows in group g
// ("all": every row) and the number of missing ones.
func numbers(rows []e2eRow, col, g string) ([]float64, int64) {
	var xs []float64
	var miss int64
	for _, r := range rows {
		if g != "all" && r.group != g {
			continue
		}
		v, err := strconv.ParseFloat(r.vals[col], 64)
		if err != nil || math.IsNaN(v) {
			miss++
			continue
		}
		xs = append(xs, v)
	}
	return xs, miss
}

// runJSON runs the CLI with --json and decodes its last output line.
func runJSON(t *testing.T, v any, args ...string) string {
	t.Helper()
	out, e, code := tandem(t, args...)
	if code != 0 {
		t.Fatalf("tandem %v: exit %d\n%s%s", args, code, out, e)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("tandem %v: last line %q: %v", args, lines[len(lines)-1], err)
	}
	return out
}

type e2eJob struct {
	ID     string          `json:"id"`
	State  string          `json:"state"`
	Reason string          `json:"reason"`
	Result json.RawMessage `json:"result"`
}

func e2eCell(t *testing.T, st *protocol.StatsResult, col, stat, group, bin string) protocol.StatsCell {
	t.Helper()
	for _, c := range st.Cells {
		if c.Column == col && c.Statistic == stat && c.Group == group && c.Bin == bin {
			return c
		}
	}
	t.Fatalf("no cell %s/%s/%s/%q", col, stat, group, bin)
	return protocol.StatsCell{}
}

// TestStatsThreeNodes runs federated statistics on a three-node testnet of
// real processes: PSI from the bank to each partner, then `tandem stats
// --wait --json` with each, and compares counts (exact) and means (≤ 1e-6
// relative) with a plaintext join of the testnet's CSV files on canonical
// identifiers. A histogram bin that isolates a handful of rows is
// suppressed (min_cell_size 10), and neither the partner's stored result
// nor its audit log holds membership information.
func TestStatsThreeNodes(t *testing.T) {
	dir := t.TempDir()
	if out, e, code := tandem(t, "testnet", "up", "--dir", dir, "--rows", "1500"); code != 0 {
		t.Fatalf("testnet up: exit %d\n%s\n%s", code, out, e)
	}
	st, err := testnet.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, e, c := tandem(t, "testnet", "down", "--dir", dir); c != 0 {
			t.Errorf("testnet down: exit %d: %s", c, e)
		}
	}()
	bank := filepath.Join(dir, "bank")
	const k = 10 // testnet.DefaultAgreement min_cell_size

	specs := map[string]struct {
		spec    string
		numeric []string // numeric columns with count/mean checked
	}{
		"partner-a": {`group_by: has_card
statistics:
  - {column: monthly_spend, kinds: [count, sum, mean, variance]}
  - {column: orders_90d, kinds: [count, mean]}
  - {column: category, kinds: [crosstab]}
  - {column: monthly_spend, kinds: [quantiles], probabilities: [0.5]}
`, []string{"monthly_spend", "orders_90d"}},
		"partner-b": {`group_by: has_card
statistics:
  - {column: avg_bill, kinds: [count, sum, mean, variance]}
  - {column: late_payments, kinds: [count, mean]}
`, []string{"avg_bill", "late_payments"}},
	}
	for i, p := range st.Truth.Partners {
		t.Run(p.Name, func(t *testing.T) {
			sp, ok := specs[p.Name]
			if !ok {
				t.Skipf("no spec for %s", p.Name)
			}
			var psiJob e2eJob
			runJSON(t, &psiJob, "--home", bank, "--json", "psi", "--peer", p.Name, "--dataset", "customers", "--peer-dataset", "users", "--reveal", "initiator", "--wait")
			if psiJob.State != "succeeded" {
				t.Fatalf("psi: %+v", psiJob)
			}
			rows := joinCSV(t, st.Truth.BankFile, p.File, "has_card")
			if len(rows) != p.ByEither {
				t.Fatalf("plaintext join: %d rows, truth says %d", len(rows), p.ByEither)
			}
			specFile := filepath.Join(dir, fmt.Sprintf("stats-%d.yaml", i))
			os.WriteFile(specFile, []byte(sp.spec), 0o644)
			var job e2eJob
			runJSON(t, &job, "--home", bank, "--json", "stats", "--psi-job", psiJob.ID, "--spec", specFile, "--wait")
			if job.State != "succeeded" {
				t.Fatalf("stats: %s (%s)", job.State, job.Reason)
			}
			var res struct{ Statistics *protocol.StatsResult }
			if err := json.Unmarshal(job.Result, &res); err != nil || res.Statistics == nil {
				t.Fatalf("stats result %s: %v", job.Result, err)
			}
			stats := res.Statistics
			if stats.Matched != len(rows) {
				t.Errorf("matched: got %d, want %d", stats.Matched, len(rows))
			}
			checked := 0
			for _, g := range append(slices.Clone(stats.Groups), "all") {
				for _, col := range sp.numeric {
					xs, miss := numbers(rows, col, g)
					c := e2eCell(t, stats, col, "count", g, "")
					if int64(len(xs)) < k {
						if !c.Suppressed || c.Value != nil {
							t.Errorf("%s/%s: count %d < k shown: %+v", col, g, len(xs), c)
						}
						continue
					}
					if c.Value == nil || *c.Value != float64(len(xs)) || c.Rows != int64(len(xs)) {
						t.Errorf("%s/%s count: got %+v, want %d", col, g, c, len(xs))
					}
					if mc := e2eCell(t, stats, col, "missing", g, ""); miss >= k && (mc.Value == nil || *mc.Value != float64(miss)) {
						t.Errorf("%s/%s missing: got %+v, want %d", col, g, mc, miss)
					}
					var sum float64
					for _, x := range xs {
						sum += x
					}
					mean := sum / float64(len(xs))
					m := e2eCell(t, stats, col, "mean", g, "")
					if m.Value == nil || math.Abs(*m.Value-mean) > 1e-6*math.Abs(mean) {
						t.Errorf("%s/%s mean: got %+v, want %v", col, g, m, mean)
					}
					checked++
				}
				if p.Name == "partner-a" {
					cats := map[string]int64{}
					for _, r := range rows {
						if g == "all" || r.group == g {
							c := r.vals["category"]
							if c == "" {
								c = "(missing)"
							}
							cats[c]++
						}
					}
					for cat, n := range cats {
						c := e2eCell(t, stats, "category", "crosstab", g, cat)
						if c.Value != nil && *c.Value != float64(n) || n < k && !c.Suppressed {
							t.Errorf("crosstab %s/%s: got %+v, want %d", g, cat, c, n)
						}
					}
					xs, _ := numbers(rows, "monthly_spend", g)
					slices.Sort(xs)
					shown := false
					for _, c := range stats.Cells {
						if c.Statistic != "quantile" || c.Group != g || c.Value == nil {
							continue
						}
						shown = true
						med := xs[int(math.Ceil(0.5*float64(len(xs))))-1]
						if med < c.Interval[0] || med >= c.Interval[1] || c.Rows < k {
							t.Errorf("median %s: interval %v on %d rows, plaintext %v", g, c.Interval, c.Rows, med)
						}
					}
					if !shown && len(xs) >= 4*k {
						t.Errorf("median of %s (%d rows) not shown", g, len(xs))
					}
				}
			}
			if checked == 0 {
				t.Errorf("no group large enough to check")
			}
			t.Logf("%s: %d matched rows, groups %v, %d (column, group) count/mean pairs checked, %d releases", p.Name, stats.Matched, stats.Groups, checked, stats.Releases)

			// Suppression: a bin holding only the few largest values.
			col := sp.numeric[0]
			xs, _ := numbers(rows, col, "all")
			slices.Sort(xs)
			edge := xs[len(xs)-4]
			var few int
			for _, x := range xs {
				if x >= edge {
					few++
				}
			}
			if few < 1 || few >= k {
				t.Fatalf("bin ≥%v holds %d rows; want 1..%d", edge, few, k-1)
			}
			supSpec := filepath.Join(dir, fmt.Sprintf("suppress-%d.yaml", i))
			os.WriteFile(supSpec, fmt.Appendf(nil, "group_by: has_card\nstatistics:\n  - {column: %s, kinds: [histogram], bins: [%v]}\n", col, edge), 0o644)
			var sj e2eJob
			runJSON(t, &sj, "--home", bank, "--json", "stats", "--psi-job", psiJob.ID, "--spec", supSpec, "--wait")
			if sj.State != "succeeded" {
				t.Fatalf("suppression job: %s (%s)", sj.State, sj.Reason)
			}
			var sres struct{ Statistics *protocol.StatsResult }
			json.Unmarshal(sj.Result, &sres)
			c := e2eCell(t, sres.Statistics, col, "histogram", "all", fmt.Sprintf("≥%g", edge))
			if !c.Suppressed || c.Value != nil || c.Rows != 0 {
				t.Errorf("bin of %d rows < k: got %+v, want suppressed", few, c)
			}
			t.Logf("%s: bin ≥%g of %d rows suppressed", p.Name, edge, few)
			if strings.Contains(string(sj.Result), fmt.Sprintf(`"rows":%d,`, few)) && few > 1 {
				t.Errorf("suppression job result mentions the small count %d: %s", few, sj.Result)
			}

			// The partner: stored results and audit records name releases,
			// never a matched row, identifier, count or value.
			partner := filepath.Join(dir, p.Name)
			var ids []string
			for _, r := range rows {
				ids = append(ids, r.ids...)
			}
			for _, id := range []string{job.ID, sj.ID} {
				out, e, code := tandem(t, "--home", partner, "--json", "job", "result", id)
				if code != 0 {
					t.Fatalf("partner job result %s: exit %d: %s", id, code, e)
				}
				for _, bad := range []string{`"statistics"`, `"matched"`, `"cells"`, `"value"`, `"rows"`, `"intersection"`, `"positions"`} {
					if strings.Contains(out, bad) {
						t.Errorf("partner result of %s mentions %s: %s", id, bad, out)
					}
				}
				audit, e, code := tandem(t, "--home", partner, "--json", "audit", "tail", "--job", id)
				if code != 0 {
					t.Fatalf("partner audit tail: exit %d: %s", code, e)
				}
				if n := strings.Count(audit, `release`); n == 0 {
					t.Errorf("partner audit for %s has no release record: %s", id, audit)
				}
				for _, s := range []string{out, audit} {
					for _, idv := range ids {
						if strings.Contains(s, idv) {
							t.Fatalf("partner output holds the identifier %s of a matched row", idv)
						}
					}
					for _, bad := range []string{`"matched"`, `"positions"`, `"rows":`} {
						if strings.Contains(s, bad) {
							t.Errorf("partner output mentions %s", bad)
						}
					}
				}
			}
		})
	}
}
