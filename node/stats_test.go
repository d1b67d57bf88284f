package node

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/fedlearn"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
	"github.com/tandem-dev/tandem/psi/ident"
)

// statsAgreement grants the bank's has_card and city_tier and the
// partner's monthly_spend and category (not orders_90d), with k = 5.
const statsAgreement = `purpose: card cross-sell feature analysis
job_kinds: [ping, psi, stats]
datasets:
  - party: bank
    dataset: customers
    columns: [phone, id_no, has_card, city_tier]
  - party: partner-a
    dataset: users
    columns: [phone, id_no, monthly_spend, category]
psi_reveal: [initiator, both]
min_cell_size: 5
valid_days: 30
`

const statsSpecYAML = `group_by: has_card
statistics:
  - {column: monthly_spend, kinds: [count, sum, mean, variance]}
  - {column: monthly_spend, kinds: [histogram, woe_iv], bins: [100, 300, 600, 1000]}
  - {column: category, kinds: [crosstab]}
  - {column: category=books, kinds: [count, sum]}
`

// joinedRow is one shared customer of the plaintext join.
type joinedRow struct {
	hasCard  string
	spend    float64
	spendOK  bool
	category string
}

// plaintextJoin joins bank.csv and the partner's CSV on canonical phone or
// id number (the PSI's matching rule), independently of the protocol.
func plaintextJoin(t *testing.T, bankFile, partnerFile string) []joinedRow {
	t.Helper()
	bank, part := readCSV(t, bankFile), readCSV(t, partnerFile)
	col := func(hdr []string, name string) int {
		for i, h := range hdr {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	canon := func(k ident.Kind, s string) string {
		c, err := ident.Canonical(k, s)
		if err != nil {
			return ""
		}
		return k.String() + ":" + c
	}
	phone, err := ident.ParseKind("cn_mobile")
	if err != nil {
		t.Fatal(err)
	}
	idNo, err := ident.ParseKind("cn_id")
	if err != nil {
		t.Fatal(err)
	}
	bPhone, bID, bCard := col(bank[0], "phone"), col(bank[0], "id_no"), col(bank[0], "has_card")
	byID := map[string]int{}
	for i, r := range bank[1:] {
		for _, c := range []string{canon(phone, r[bPhone]), canon(idNo, r[bID])} {
			if c != "" {
				if _, dup := byID[c]; !dup {
					byID[c] = i
				}
			}
		}
	}
	pPhone, pID, pSpend, pCat := col(part[0], "phone"), col(part[0], "id_no"), col(part[0], "monthly_spend"), col(part[0], "category")
	var out []joinedRow
	used := map[int]bool{}
	for _, r := range part[1:] {
		bi, ok := byID[canon(phone, r[pPhone])]
		if !ok || used[bi] {
			bi, ok = byID[canon(idNo, r[pID])]
		}
		if !ok || used[bi] {
			continue
		}
		used[bi] = true
		j := joinedRow{hasCard: bank[bi+1][bCard], category: strings.TrimSpace(r[pCat])}
		if v, err := strconv.ParseFloat(strings.TrimSpace(r[pSpend]), 64); err == nil {
			j.spend, j.spendOK = v, true
		}
		out = append(out, j)
	}
	return out
}

func statsCell(t *testing.T, res *protocol.StatsResult, col, stat, group, bin string) protocol.StatsCell {
	t.Helper()
	for _, c := range res.Cells {
		if c.Column == col && c.Statistic == stat && c.Group == group && c.Bin == bin {
			return c
		}
	}
	t.Fatalf("no cell %s/%s/%s/%s", col, stat, group, bin)
	return protocol.StatsCell{}
}

func submitStats(t *testing.T, bank *testNode, psiJob, spec string) string {
	t.Helper()
	js, err := bank.analyst.SubmitJob(t.Context(), &tandemv1.SubmitJobRequest{Kind: "stats", Peer: "partner-a",
		Stats: &tandemv1.StatsParams{PsiJobId: psiJob, SpecYaml: []byte(spec)}})
	if err != nil {
		t.Fatalf("SubmitJob(stats): %v", err)
	}
	if js.State != stateAccepted {
		t.Fatalf("SubmitJob(stats): got state %q (reason %q), want accepted", js.State, js.Reason)
	}
	return js.Id
}

func auditKinds(t *testing.T, tn *testNode, job string) map[string]int {
	t.Helper()
	resp, err := tn.admin.AuditTail(t.Context(), &tandemv1.AuditTailRequest{JobId: job})
	if err != nil {
		t.Fatalf("%s: AuditTail: %v", tn.name, err)
	}
	out := map[string]int{}
	for _, e := range resp.Entries {
		var m struct{ Kind string }
		json.Unmarshal(e.EntryJson, &m)
		out[m.Kind]++
	}
	return out
}

// TestStatsEndToEnd runs a PSI job in initiator mode and then a stats job
// between two real nodes on synthetic data, and compares every statistic
// with a plaintext join of the two CSV files on canonical identifiers.
// The partner's stored result holds no value and no membership count;
// every release share is an audit record on the partner. A second job asks
// for a column the agreement does not grant: both sides fail with a clear
// error, the refusal is recorded and nothing is released.
func TestStatsEndToEnd(t *testing.T) {
	truth, pt := psiWorld(t, 3000, 2000)
	bank, partner, _ := startPair(t, statsAgreement)
	addDataset(t, bank, "customers", truth.BankFile)
	addDataset(t, partner, "users", pt.File)
	psiJob := submitPSI(t, bank, "initiator")
	psiResult(t, bank, psiJob)
	psiResult(t, partner, psiJob)

	start := time.Now()
	id := submitStats(t, bank, psiJob, statsSpecYAML)
	js := finalJob(t, bank.analyst, id, 60*time.Second)
	t.Logf("stats job over %d partner rows: %s wall", pt.Rows, time.Since(start).Round(time.Millisecond))
	if js.State != stateSucceeded {
		t.Fatalf("bank: stats job: got %s (%s), want succeeded", js.State, js.Reason)
	}
	var res StatsJobResult
	if err := json.Unmarshal(js.ResultJson, &res); err != nil || res.Statistics == nil {
		t.Fatalf("bank result %s: %v", js.ResultJson, err)
	}
	st := res.Statistics
	rows := plaintextJoin(t, truth.BankFile, pt.File)
	if st.Matched != len(rows) || st.Matched != pt.ByEither {
		t.Errorf("matched: got %d, want %d (plaintext join) = %d (truth)", st.Matched, len(rows), pt.ByEither)
	}
	const k = 5
	for _, g := range append(st.Groups, "all") {
		var n, miss int64
		var sum, sq float64
		hist := make([]int64, 5)
		cats := map[string]int64{}
		for _, r := range rows {
			if g != "all" && r.hasCard != g {
				continue
			}
			c := r.category
			if c == "" {
				c = "(missing)"
			}
			cats[c]++
			if !r.spendOK {
				miss++
				continue
			}
			n++
			sum += r.spend
			sq += r.spend * r.spend
			switch {
			case r.spend < 100:
				hist[0]++
			case r.spend < 300:
				hist[1]++
			case r.spend < 600:
				hist[2]++
			case r.spend < 1000:
				hist[3]++
			default:
				hist[4]++
			}
		}
		c := statsCell(t, st, "monthly_spend", "count", g, "")
		if n < k {
			if !c.Suppressed {
				t.Errorf("group %s: count %d below k not suppressed", g, n)
			}
			continue
		}
		want := map[string]float64{"count": float64(n), "missing": float64(miss), "sum": sum, "mean": sum / float64(n), "variance": (sq - sum*sum/float64(n)) / float64(n-1)}
		for stat, w := range want {
			c := statsCell(t, st, "monthly_spend", stat, g, "")
			if c.Value == nil {
				if !(stat == "missing" && miss < k) {
					t.Errorf("group %s %s: no value (suppressed %v)", g, stat, c.Suppressed)
				}
				continue
			}
			if math.Abs(*c.Value-w) > 1e-6*math.Abs(w) {
				t.Errorf("group %s %s: got %v, want %v", g, stat, *c.Value, w)
			}
			if stat == "count" && c.Rows != n {
				t.Errorf("group %s count rows: got %d, want %d", g, c.Rows, n)
			}
		}
		for b, l := range []string{"<100", "[100,300)", "[300,600)", "[600,1000)", "≥1000"} {
			c := statsCell(t, st, "monthly_spend", "histogram", g, l)
			switch {
			case c.Value != nil && *c.Value != float64(hist[b]):
				t.Errorf("histogram %s/%s: got %v, want %d", g, l, *c.Value, hist[b])
			case c.Value == nil && !c.Suppressed:
				t.Errorf("histogram %s/%s: no value, not suppressed", g, l)
			case hist[b] < k && !c.Suppressed:
				t.Errorf("histogram %s/%s: %d < k shown", g, l, hist[b])
			}
		}
		var withCat int64
		for cat, w := range cats {
			c := statsCell(t, st, "category", "crosstab", g, cat)
			if c.Value != nil && *c.Value != float64(w) || w < k && !c.Suppressed {
				t.Errorf("crosstab %s/%s: got %+v, want %d", g, cat, c, w)
			}
			if cat != "(missing)" {
				withCat += w
			}
		}
		// An indicator column=level: its count is the rows with a category,
		// its sum those in the level (the crosstab's cell).
		if c := statsCell(t, st, "category=books", "count", g, ""); withCat >= k && (c.Value == nil || *c.Value != float64(withCat)) {
			t.Errorf("category=books count %s: got %+v, want %d", g, c, withCat)
		}
		if c := statsCell(t, st, "category=books", "sum", g, ""); withCat >= k && (c.Value == nil || *c.Value != float64(cats["books"])) {
			t.Errorf("category=books sum %s: got %+v, want %d", g, c, cats["books"])
		}
	}
	// WOE/IV against has_card (label defaults to group_by).
	edges := []float64{100, 300, 600, 1000}
	good, bad := make([]int64, 5), make([]int64, 5)
	for _, r := range rows {
		if !r.spendOK {
			continue
		}
		b := 0
		for b < len(edges) && r.spend >= edges[b] {
			b++
		}
		if r.hasCard == "1" {
			bad[b]++
		} else {
			good[b]++
		}
	}
	_, iv := fedlearn.WOEIV(good, bad)
	if c := statsCell(t, st, "monthly_spend", "iv", "all", ""); c.Value == nil || math.Abs(*c.Value-iv) > 1e-9 {
		t.Errorf("iv: got %+v, want %v", c, iv)
	}

	// The partner: succeeded, released 4 shares (one per statistics item),
	// each an audit record; its stored result has no statistics and no
	// membership count.
	pj := finalJob(t, partner.analyst, id, 30*time.Second)
	if pj.State != stateSucceeded {
		t.Fatalf("partner: got %s (%s)", pj.State, pj.Reason)
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(pj.ResultJson, &raw)
	for _, key := range []string{"statistics", "matched", "intersection", "cells"} {
		if _, ok := raw[key]; ok {
			t.Errorf("partner result has %q", key)
		}
	}
	for _, bad := range []string{`"matched"`, `"intersection"`, `"cells"`, `"value":`, `"count":`, `"rows":`} {
		if strings.Contains(string(pj.ResultJson), bad) {
			t.Errorf("partner result mentions %s: %s", bad, pj.ResultJson)
		}
	}
	var pres StatsJobResult
	json.Unmarshal(pj.ResultJson, &pres)
	if pres.Released == nil || len(pres.Released.Releases) != 4 || pres.Released.Length != pt.Rows {
		t.Errorf("partner released: got %+v, want 4 releases over L=%d", pres.Released, pt.Rows)
	}
	if got := auditKinds(t, partner, id)["release"]; got != 4 {
		t.Errorf("partner release audit records: got %d, want 4", got)
	}
	if rec, err := partner.n.jobs.get(id); err != nil || string(rec.Result) == "" || strings.Contains(string(rec.Result), `"matched"`) {
		t.Errorf("partner stored record: %v %s", err, rec.Result)
	}

	// Refused: orders_90d is not granted.
	id2 := submitStats(t, bank, psiJob, "group_by: has_card\nstatistics:\n  - {column: orders_90d, kinds: [mean]}\n")
	for _, tn := range []*testNode{bank, partner} {
		js := finalJob(t, tn.analyst, id2, 30*time.Second)
		if js.State != stateFailed || !strings.Contains(js.Reason, "orders_90d") || !strings.Contains(js.Reason, "not granted") {
			t.Errorf("%s: refused job: got %s (%q), want failed naming orders_90d as not granted", tn.name, js.State, js.Reason)
		}
	}
	kinds := auditKinds(t, partner, id2)
	if kinds["release_refused"] != 1 || kinds["release"] != 0 {
		t.Errorf("partner audit for the refused job: got %v, want one release_refused and no release", kinds)
	}

	// Quantiles by histogram refinement: each round one release (one audit
	// record on the partner); every interval holds the plaintext quantile
	// of the joined rows with its exact row count.
	id4 := submitStats(t, bank, psiJob, "group_by: has_card\nstatistics:\n  - {column: monthly_spend, kinds: [quantiles], probabilities: [0.1, 0.5, 0.9]}\n")
	if js := finalJob(t, bank.analyst, id4, 60*time.Second); js.State != stateSucceeded {
		t.Fatalf("quantiles: got %s (%s)", js.State, js.Reason)
	} else {
		var qr StatsJobResult
		json.Unmarshal(js.ResultJson, &qr)
		shown := 0
		for _, c := range qr.Statistics.Cells {
			var xs []float64
			for _, r := range rows {
				if r.spendOK && (c.Group == "all" || r.hasCard == c.Group) {
					xs = append(xs, r.spend)
				}
			}
			slices.Sort(xs)
			if c.Statistic != "quantile" || c.Value == nil || len(c.Interval) != 2 {
				if len(xs) >= k && c.Statistic == "quantile" && !c.Suppressed {
					t.Errorf("quantile cell without a value: %+v", c)
				}
				continue
			}
			shown++
			q := xs[max(int(math.Ceil(c.Probability*float64(len(xs)))), 1)-1]
			var in int64
			for _, x := range xs {
				if x >= c.Interval[0] && x < c.Interval[1] {
					in++
				}
			}
			if q < c.Interval[0] || q >= c.Interval[1] || c.Rows != in || in < k || math.Abs(*c.Value-q) > c.Interval[1]-c.Interval[0] {
				t.Errorf("quantile %s p=%g: got %v in %v on %d rows; plaintext %v, %d rows in the interval", c.Group, c.Probability, *c.Value, c.Interval, c.Rows, q, in)
			}
		}
		if shown == 0 {
			t.Errorf("no quantile shown: %s", js.ResultJson)
		}
		if got := auditKinds(t, partner, id4)["release"]; got != qr.Statistics.Releases || got < 2 {
			t.Errorf("partner release audit records for quantiles: got %d, bank counted %d releases", got, qr.Statistics.Releases)
		}
	}

	// A group_by column the agreement does not grant is refused too.
	id3 := submitStats(t, bank, psiJob, "group_by: income\nstatistics:\n  - {column: monthly_spend, kinds: [count]}\n")
	if js := finalJob(t, bank.analyst, id3, 30*time.Second); js.State != stateFailed || !strings.Contains(js.Reason, "group_by column income") {
		t.Errorf("ungranted group_by: got %s (%q)", js.State, js.Reason)
	}
}

// TestStatsSubmitChecks: a stats job over an unknown PSI job or with a
// malformed quantiles request is refused at submission with a clear error.
func TestStatsSubmitChecks(t *testing.T) {
	bank, _, _ := startPair(t, statsAgreement)
	for _, tc := range []struct{ psi, spec, want string }{
		{"job-0000", statsSpecYAML, "not known"},
		{"job-0000", "statistics:\n  - {column: age, kinds: [quantiles], probabilities: [0.5, 0.2]}\n", "strictly increasing"},
	} {
		_, err := bank.analyst.SubmitJob(t.Context(), &tandemv1.SubmitJobRequest{Kind: "stats", Peer: "partner-a",
			Stats: &tandemv1.StatsParams{PsiJobId: tc.psi, SpecYaml: []byte(tc.spec)}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SubmitJob(stats %s): got %v, want error containing %q", tc.want, err, tc.want)
		}
	}
}
