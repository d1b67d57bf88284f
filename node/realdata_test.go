package node

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/fedlearn/vlr/vlrtest"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
	"github.com/tandem-dev/tandem/psi/ident"
)

// The real public credit dataset of the tests: the UCI Statlog (German
// Credit Data) set, 1000 applicants with a good/bad label, numeric and
// categorical attributes (testnet/testdata/README.md). It has no
// identifiers; realCreditWorld adds synthetic, messy ones.
const realCreditFile = "../testnet/testdata/german_credit.csv"

// The bank holds the label and the loan application; the partner holds
// the applicant's savings, employment, household and property attributes.
// Categorical columns enter as indicators, the most common level left out.
var (
	realBankCols    = []string{"bad", "duration_months", "amount", "installment_rate", "age", "existing_credits", "checking", "credit_history", "purpose"}
	realPartnerCols = []string{"savings", "employment", "personal", "other_debtors", "residence_years", "property", "other_plans", "housing", "job", "dependents", "telephone", "foreign_worker"}
	realBankFeats   = []string{"duration_months", "amount", "installment_rate", "age",
		"checking=lt_0", "checking=0_to_200", "checking=gt_200",
		"credit_history=critical", "credit_history=delay", "credit_history=thisbank_allpaid", "credit_history=nocredit_allpaid",
		"purpose=newcar", "purpose=usedcar", "purpose=education"}
	realPartnerFeats = []string{"savings=lt_100", "savings=unknown", "employment=lt_1", "employment=gt_7",
		"other_debtors=guarantor", "property=realestate", "property=unknown", "other_plans=bank", "housing=rent",
		"personal=male_single", "residence_years", "telephone"}
)

const realCreditAgreement = `purpose: credit risk model on the German credit data
job_kinds: [ping, psi, train, score]
datasets:
  - party: bank
    dataset: customers
    columns: [phone, id_no, bad, duration_months, amount, installment_rate, age, checking, credit_history, purpose]
  - party: partner-a
    dataset: users
    columns: [phone, id_no, savings, employment, personal, other_debtors, residence_years, property, other_plans, housing, telephone]
psi_reveal: [initiator, both]
valid_days: 30
`

// realCreditWorld writes the bank's and the partner's files: every
// applicant is a bank customer; 85 % of them, in another order, are
// partner users, plus 400 partner users who are not bank customers (their
// attributes copied from random applicants). Identifiers are written in
// different formats on each side; 10 % of the shared users' partner phones
// are missing and 40 % of their id numbers, so some match on one
// identifier only, and a few bank cells are malformed. A few feature
// cells are missing on both sides (realCreditCell).
func realCreditWorld(t *testing.T) (bankFile, partnerFile string, shared int) {
	t.Helper()
	recs := readCSV(t, realCreditFile)
	hdr, rows := recs[0], recs[1:]
	col := func(name string) int {
		i := slices.Index(hdr, name)
		if i < 0 {
			t.Fatalf("%s: no column %s", realCreditFile, name)
		}
		return i
	}
	rng := rand.New(rand.NewPCG(1994, 11))
	phones, ids := make([]string, len(rows)+400), make([]string, len(rows)+400)
	seen := map[string]bool{}
	for i := range phones {
		for phones[i] == "" || seen[phones[i]] {
			phones[i] = fmt.Sprintf("1%d%09d", 3+rng.IntN(7), rng.IntN(1e9))
		}
		seen[phones[i]] = true
		ids[i] = realCreditID(t, rng)
	}
	messyPhone := []func(string) string{
		func(p string) string { return "+86 " + p[:3] + "-" + p[3:7] + "-" + p[7:] },
		func(p string) string { return "(+86)" + p[:3] + " " + p[3:7] + " " + p[7:] },
		func(p string) string { return "0086" + p },
		func(p string) string { return " " + p + " " },
	}
	var b strings.Builder
	b.WriteString("phone,id_no," + strings.Join(realBankCols, ",") + "\n")
	for i, r := range rows {
		phone, id := messyPhone[i%2](phones[i]), ids[i]
		if i%97 == 0 {
			phone = phones[i][:9] // malformed: too short
		}
		b.WriteString(phone + "," + id)
		for _, c := range realBankCols {
			b.WriteString("," + realCreditCell(c, r[col(c)], i))
		}
		b.WriteString("\n")
	}
	bankFile = filepath.Join(t.TempDir(), "applicants.csv")
	if err := os.WriteFile(bankFile, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	order := rng.Perm(len(rows))
	shared = len(rows) * 85 / 100
	persons := append(order[:shared:shared], make([]int, 400)...)
	for k := shared; k < len(persons); k++ {
		persons[k] = len(rows) + k - shared
	}
	rng.Shuffle(len(persons), func(i, j int) { persons[i], persons[j] = persons[j], persons[i] })
	b.Reset()
	b.WriteString("phone,id_no," + strings.Join(realPartnerCols, ",") + "\n")
	for _, p := range persons {
		src := p
		if p >= len(rows) {
			src = rng.IntN(len(rows))
		}
		phone, id := messyPhone[2+rng.IntN(2)](phones[p]), strings.ToLower(ids[p])
		if rng.Float64() < 0.10 {
			phone = ""
		}
		if rng.Float64() < 0.40 {
			id = "NULL"
		}
		b.WriteString(`"` + phone + `",` + id)
		for _, c := range realPartnerCols {
			b.WriteString("," + realCreditCell(c, rows[src][col(c)], p))
		}
		b.WriteString("\n")
	}
	partnerFile = filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(partnerFile, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return bankFile, partnerFile, shared
}

// realCreditCell is the cell of column c for applicant i, missing for a
// few applicants in four columns (a number and a categorical column on
// each side, in the spellings real files use), as in real credit data:
// mean imputation (the default) and missing: drop both have work to do.
func realCreditCell(c, v string, i int) string {
	switch {
	case c == "amount" && i%23 == 4, c == "residence_years" && i%19 == 7:
		return ""
	case c == "checking" && i%29 == 11, c == "savings" && i%17 == 2:
		return "NA"
	}
	return v
}

// realCreditID draws a valid PRC resident id number (the check character
// found by trying all eleven against the canonicaliser).
func realCreditID(t *testing.T, rng *rand.Rand) string {
	regions := []string{"110105", "310104", "440305", "330106", "510107", "420102"}
	body := fmt.Sprintf("%s%d%02d%02d%03d", regions[rng.IntN(len(regions))], 1950+rng.IntN(50), 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(1000))
	kind, _ := ident.ParseKind("cn_id")
	for _, c := range "0123456789X" {
		if _, err := ident.Canonical(kind, body+string(c)); err == nil {
			return body + string(c)
		}
	}
	t.Fatalf("no check character makes a valid id of %s", body)
	return ""
}

// TestRealCreditData trains on a real credit dataset split between two
// real nodes with messy identifiers: PSI finds exactly the shared
// applicants; a split model with numeric and indicator features on both
// sides matches plaintext logistic regression on the joined data (same
// rows, standardisation and λ) by the rule: validation AUC within
// 0.005, coefficients within 1 % (or 5e-4 when small); the scores of
// every shared applicant equal plaintext scoring of the two stored parts.
// The plaintext baseline itself is checked against R's glm in
// TestRealCreditBaselineIsGLM.
func TestRealCreditData(t *testing.T) {
	bankFile, partnerFile, shared := realCreditWorld(t)
	bank, partner, _ := startPair(t, realCreditAgreement)
	addDataset(t, bank, "customers", bankFile)
	addDataset(t, partner, "users", partnerFile)
	psiJob := submitPSI(t, bank, "initiator")
	psiRes, _ := psiResult(t, bank, psiJob)
	pairs := joinRows(loadTrainCSV(t, bankFile, nil), loadTrainCSV(t, partnerFile, nil))
	// PSI finds exactly the plaintext join on canonical ids. It misses
	// only the shared applicants with no identifier usable on both sides
	// (missing partner phone or malformed bank phone, and no partner id).
	if int(psiRes.Intersection) != len(pairs) || len(pairs) < shared*9/10 || len(pairs) > shared {
		t.Fatalf("PSI intersection %d, plaintext join %d, shared applicants %d", psiRes.Intersection, len(pairs), shared)
	}

	// A level that does not occur or a text label fails the job with the
	// column named, on both sides.
	for _, tc := range []struct{ bank, partner, side, want string }{
		{"age", "housing=Rent, telephone", "partner", `feature housing=Rent: no row used has level "Rent"`},
		{"age", "telephone", "bank", "label column checking has no 0/1 (yes/no, true/false) value on the matched rows; a text label enters as an indicator, label: checking=<positive level>"},
	} {
		label := "bad"
		if strings.Contains(tc.want, "label column") {
			label = "checking"
		}
		spec := fmt.Sprintf("label: %s\nbank_features: [%s]\npartner_features: [%s]\nepochs: 2\n", label, tc.bank, tc.partner)
		js, err := bank.analyst.SubmitJob(t.Context(), &tandemv1.SubmitJobRequest{Kind: "train", Peer: "partner-a",
			Train: &tandemv1.TrainParams{PsiJobId: psiJob, SpecYaml: []byte(spec)}})
		if err != nil || js.State != stateAccepted {
			t.Fatalf("SubmitJob(train): %v %v", js, err)
		}
		owner := map[string]*testNode{"bank": bank, "partner": partner}[tc.side]
		if j := finalJob(t, owner.analyst, js.Id, 60*time.Second); j.State != stateFailed || !strings.Contains(j.Reason, tc.want) {
			t.Errorf("train with %s features [%s%s]: %s job %s (%s), want failed with %q", tc.side, tc.bank, tc.partner, tc.side, j.State, j.Reason, tc.want)
		}
		// The other side learns why, not just that the stream ended.
		other := map[string]*testNode{"bank": partner, "partner": bank}[tc.side]
		if j := finalJob(t, other.analyst, js.Id, 60*time.Second); j.State != stateFailed || !strings.Contains(j.Reason, tc.want) {
			t.Errorf("train with %s features [%s%s]: the other side's job %s (%s), want failed with %q", tc.side, tc.bank, tc.partner, j.State, j.Reason, tc.want)
		}
	}

	// Held out 20 % (validation AUC compared), then none (every matched
	// row trains; in-sample AUC compared, as one would with R's glm).
	for _, vf := range []string{"0.2", "0"} {
		t.Run("validation_fraction="+vf, func(t *testing.T) {
			trainRealCredit(t, bank, partner, psiJob, vf, 60, realBankFeats, realPartnerFeats, bankFile, partnerFile, pairs)
		})
	}
	// missing: drop trains on complete rows only, as R's glm does by
	// default, and scores no row with a missing feature.
	t.Run("missing=drop", func(t *testing.T) {
		trainRealCreditDrop(t, bank, partner, psiJob, bankFile, partnerFile, pairs)
	})
	// Categorical columns named plainly, as in an R formula: each owner
	// expands its own into indicators of every level but the most frequent
	// (the reference), and the stored parts name them.
	t.Run("plain categorical columns", func(t *testing.T) {
		bankCols := []string{"duration_months", "amount", "installment_rate", "age", "checking", "credit_history", "purpose"}
		partnerCols := []string{"savings", "employment", "other_debtors", "property", "other_plans", "housing", "personal", "residence_years", "telephone"}
		bp, pp := trainRealCredit(t, bank, partner, psiJob, "0", 60, bankCols, partnerCols, bankFile, partnerFile, pairs)
		if want := []string{"checking=0_to_200", "checking=gt_200", "checking=lt_0"}; !slices.Equal(bp.Features[4:7], want) || len(bp.Features) != 4+3+4+9 {
			t.Errorf("bank features %v, want checking expanded to %v (none, the most frequent, the reference), 20 in all", bp.Features, want)
		}
		if len(pp.Features) != 4+4+2+3+2+2+3+2 {
			t.Errorf("partner features %v, want 22", pp.Features)
		}
	})
}

// trainRealCredit trains with the given spec feature lists and checks the
// stored parts against plaintext logistic regression on the joined files.
func trainRealCredit(t *testing.T, bank, partner *testNode, psiJob, valFraction string, epochs int, bankFeats, partnerFeats []string, bankFile, partnerFile string, pairs [][2]int) (ModelPart, ModelPart) {
	spec := fmt.Sprintf(`label: bad
bank_features: [%s]
partner_features: [%s]
epochs: %d
l2: 0.001
validation_fraction: %s
seed: 3
`, strings.Join(bankFeats, ", "), strings.Join(partnerFeats, ", "), epochs, valFraction)
	start := time.Now()
	bres, bp, bc, pp, pc := trainParts(t, bank, partner, psiJob, spec)
	if protocol.CheckExpansion(bankFeats, bp.Features) != nil || protocol.CheckExpansion(partnerFeats, pp.Features) != nil ||
		!slices.Equal(bc.BankFeatures, bp.Features) || !slices.Equal(pc.BankFeatures, bp.Features) ||
		!slices.Equal(bc.PartnerFeatures, pp.Features) || !slices.Equal(pc.PartnerFeatures, pp.Features) {
		t.Fatalf("stored features: bank %v, partner %v; cards %v %v / %v %v", bp.Features, pp.Features, bc.BankFeatures, bc.PartnerFeatures, pc.BankFeatures, pc.PartnerFeatures)
	}
	// The plaintext side reads exactly the features the parts name.
	bcsv := loadTrainCSV(t, bankFile, append([]string{"bad"}, bp.Features...))
	pcsv := loadTrainCSV(t, partnerFile, pp.Features)
	plain := checkAgainstPlain(t, bank, bres.ModelID, "bad", 0.001, bp, pp, bc, bcsv, pcsv, pairs)
	worst := vlrtest.CheckCoefficients(t, plain.he, plain.base)
	t.Logf("German credit, %d shared applicants: %d epochs (stopped early: %v) in %s; AUC (held-out rows, or in-sample without hold-out) split %.5f, plaintext %.5f; worst coefficient error %.3f %%",
		len(pairs), bres.Epochs, bres.Stopped, time.Since(start).Round(time.Millisecond), plain.aHE, plain.aBase, 100*worst)
	valAUC := plain.aHE
	if valFraction == "0" {
		valAUC = math.NaN() // plain.aHE is in-sample: no validation AUC
	}
	checkScoreJob(t, bank, partner, psiJob, bres.ModelID, "bad", bp, pp, bcsv, pcsv, pairs, valAUC)
	return bp, pp
}

// TestRealCreditBaselineIsGLM checks the plaintext baseline of the tests
// (vlrtest.PlainLR on owner-standardised features, λ = 0) against R's glm
// (binomial, logit) on all 1000 applicants with the same features:
// testnet/testdata/german_credit_glm.csv, written by german_credit.R.
// Coefficients are compared on the raw scale.
func TestRealCreditBaselineIsGLM(t *testing.T) {
	feats := append(slices.Clone(realBankFeats), realPartnerFeats...)
	data := loadTrainCSV(t, realCreditFile, append([]string{"bad"}, feats...))
	all := make([]int, data.rows)
	for i := range all {
		all[i] = i
	}
	mean, sd := make([]float64, len(feats)), make([]float64, len(feats))
	for k, f := range feats {
		mean[k], sd[k] = meanSD(data.cols[f], all)
	}
	x, y := make([][]float64, data.rows), data.cols["bad"]
	for i := range x {
		for k, f := range feats {
			x[i] = append(x[i], (data.cols[f][i]-mean[k])/sd[k])
		}
		x[i] = append(x[i], 1)
	}
	w := vlrtest.PlainLR(x, y, 0)
	raw := map[string]float64{"(Intercept)": w[len(feats)]}
	for k, f := range feats {
		raw[f] = w[k] / sd[k]
		raw["(Intercept)"] -= w[k] * mean[k] / sd[k]
	}
	score := make([]float64, len(x))
	for i := range x {
		for j, v := range x[i] {
			score[i] += w[j] * v
		}
	}
	raw["(auc)"] = vlrtest.AUC(score, y)

	ref := readCSV(t, "../testnet/testdata/german_credit_glm.csv")
	if len(ref) != len(feats)+3 {
		t.Fatalf("glm reference has %d rows, want header + intercept + %d features + auc", len(ref), len(feats))
	}
	for _, r := range ref[1:] {
		want, err := strconv.ParseFloat(r[1], 64)
		got, ok := raw[r[0]]
		if err != nil || !ok {
			t.Fatalf("glm reference row %v: %v", r, err)
		}
		if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("%s: PlainLR %.10g, glm %.10g", r[0], got, want)
		}
	}
}

// trainRealCreditDrop trains with missing: drop and checks, against the
// plaintext join: the rows left out on each side, the fit against
// plaintext logistic regression on the complete rows (in-sample, as R's
// glm reports it), the partner's audited completeness release, and a
// score job that leaves exactly the incomplete rows without a score.
func trainRealCreditDrop(t *testing.T, bank, partner *testNode, psiJob, bankFile, partnerFile string, pairs [][2]int) {
	bankCols := []string{"duration_months", "amount", "installment_rate", "age", "checking", "credit_history", "purpose"}
	partnerCols := []string{"savings", "employment", "other_debtors", "property", "residence_years", "telephone"}
	spec := fmt.Sprintf("label: bad\nbank_features: [%s]\npartner_features: [%s]\nepochs: 60\nl2: 0.001\nvalidation_fraction: 0\nseed: 3\nmissing: drop\n",
		strings.Join(bankCols, ", "), strings.Join(partnerCols, ", "))
	bres, bp, bc, pp, _ := trainParts(t, bank, partner, psiJob, spec)
	if bp.Missing != "drop" || pp.Missing != "drop" {
		t.Errorf("stored parts' missing-value rule: bank %q, partner %q, want drop", bp.Missing, pp.Missing)
	}
	if k := auditKinds(t, partner, bc.JobID)["release"]; k < 2 {
		t.Errorf("partner audit: %d release records, want the completeness release and the gradients", k)
	}

	bcsv := loadTrainCSV(t, bankFile, append([]string{"bad"}, bp.Features...))
	pcsv := loadTrainCSV(t, partnerFile, pp.Features)
	missing := func(c *trainCSV, feats []string, r int) bool {
		return slices.ContainsFunc(feats, func(f string) bool { return math.IsNaN(c.cols[f][r]) })
	}
	var complete [][2]int
	bankInc, partnerInc := 0, 0
	for _, pr := range pairs {
		switch {
		case math.IsNaN(bcsv.cols["bad"][pr[0]]):
		case missing(bcsv, bp.Features, pr[0]):
			bankInc++
		case missing(pcsv, pp.Features, pr[1]):
			partnerInc++
		default:
			complete = append(complete, pr)
		}
	}
	tr := bc.Training
	if bankInc == 0 || partnerInc == 0 || tr.MatchedRows != len(complete) || tr.TrainRows != len(complete) ||
		tr.IncompleteBank != bankInc || tr.IncompletePartner != partnerInc {
		t.Fatalf("rows: card %+v; plaintext: %d complete, %d missing a bank feature, %d a partner feature", tr, len(complete), bankInc, partnerInc)
	}

	// Plaintext logistic regression on the complete rows, each side
	// standardised as its owner does (bank: its rows used; partner: all its
	// rows, a missing value counting as the mean).
	bRows, pRows := make([]int, len(complete)), make([]int, pcsv.rows)
	for k, pr := range complete {
		bRows[k] = pr[0]
	}
	for r := range pRows {
		pRows[r] = r
	}
	std := func(c *trainCSV, feats []string, rows []int, p ModelPart) ([]float64, []float64) {
		mean, sd := make([]float64, len(feats)), make([]float64, len(feats))
		for k, f := range feats {
			mean[k], sd[k] = meanSD(c.cols[f], rows)
			if math.Abs(mean[k]-p.Mean[k]) > 1e-9*math.Abs(mean[k])+1e-9 || math.Abs(sd[k]-p.SD[k]) > 1e-9*sd[k] {
				t.Errorf("%s standardisation: stored %v/%v, plaintext %v/%v", f, p.Mean[k], p.SD[k], mean[k], sd[k])
			}
		}
		return mean, sd
	}
	bm, bs := std(bcsv, bp.Features, bRows, bp)
	pm, ps := std(pcsv, pp.Features, pRows, pp)
	x, y := make([][]float64, len(complete)), make([]float64, len(complete))
	sHE := make([]float64, len(complete))
	for i, pr := range complete {
		for k, f := range bp.Features {
			x[i] = append(x[i], (bcsv.cols[f][pr[0]]-bm[k])/bs[k])
		}
		for k, f := range pp.Features {
			x[i] = append(x[i], (pcsv.cols[f][pr[1]]-pm[k])/ps[k])
		}
		x[i] = append(x[i], 1)
		y[i] = bcsv.cols["bad"][pr[0]]
		sHE[i] = partScore(bp, bcsv, pr[0]) + partScore(pp, pcsv, pr[1])
	}
	base := vlrtest.PlainLR(x, y, 0.001)
	sBase := make([]float64, len(x))
	for i := range x {
		for j, v := range x[i] {
			sBase[i] += base[j] * v
		}
	}
	aHE, aBase := vlrtest.AUC(sHE, y), vlrtest.AUC(sBase, y)
	he := append(append(slices.Clone(bp.Weights), pp.Weights...), *bp.Intercept)
	worst := vlrtest.CheckCoefficients(t, he, base)
	t.Logf("missing: drop: %d complete rows of %d matched (%d lack a bank feature, %d a partner feature); in-sample AUC split %.5f, plaintext %.5f; worst coefficient %.3f %%",
		len(complete), len(pairs), bankInc, partnerInc, aHE, aBase, 100*worst)
	if math.Abs(aHE-aBase) > 0.005 {
		t.Errorf("in-sample AUC: split model %.5f, plaintext on the complete rows %.5f (|Δ| > 0.005)", aHE, aBase)
	}

	// Bands only: the partner's "no value" travels as a comparison too.
	checkBandsOnlyJob(t, bank, partner, psiJob, bres.ModelID, bp, pp, bcsv, pcsv, pairs)
	// Scoring: every matched row is listed; exactly the rows missing a
	// feature on either side have no score.
	sb, _ := runJobs(t, bank, partner, &tandemv1.SubmitJobRequest{Kind: "score", Peer: "partner-a", Score: &tandemv1.ScoreParams{PsiJobId: psiJob, ModelId: bres.ModelID, Bands: 10}}, 60*time.Second)
	var br ScoreJobResult
	json.Unmarshal(sb.ResultJson, &br)
	want := map[string]float64{}
	var noScoreB, noScoreP int
	for _, pr := range pairs {
		switch {
		case missing(bcsv, bp.Features, pr[0]):
			noScoreB++
			want[strconv.Itoa(pr[0])] = math.NaN()
		case missing(pcsv, pp.Features, pr[1]):
			noScoreP++
			want[strconv.Itoa(pr[0])] = math.NaN()
		default:
			want[strconv.Itoa(pr[0])] = 1 / (1 + math.Exp(-(partScore(bp, bcsv, pr[0]) + partScore(pp, pcsv, pr[1]))))
		}
	}
	if br.IncompleteBank != noScoreB || br.IncompletePartner != noScoreP || br.Scored != len(pairs)-noScoreB-noScoreP {
		t.Errorf("score job: %d scored, %d/%d without a score; plaintext %d, %d/%d", br.Scored, br.IncompleteBank, br.IncompletePartner,
			len(pairs)-noScoreB-noScoreP, noScoreB, noScoreP)
	}
	recs := readCSV(t, br.Output)
	iRow, iScore, iBand := slices.Index(recs[0], "row"), slices.Index(recs[0], "score"), slices.Index(recs[0], "band")
	if len(recs)-1 != len(pairs) {
		t.Fatalf("scores.csv: %d rows for %d matched", len(recs)-1, len(pairs))
	}
	for _, r := range recs[1:] {
		w, ok := want[r[iRow]]
		if !ok {
			t.Fatalf("scores.csv row %s is not a matched row", r[iRow])
		}
		if math.IsNaN(w) {
			if r[iScore] != "" || r[iBand] != "" {
				t.Errorf("scores.csv row %s misses a feature: score %q band %q, want both empty", r[iRow], r[iScore], r[iBand])
			}
			continue
		}
		if got, err := strconv.ParseFloat(r[iScore], 64); err != nil || math.Abs(got-w) > 2e-6 || r[iBand] == "" {
			t.Errorf("scores.csv row %s: score %q band %q, plaintext %v", r[iRow], r[iScore], r[iBand], w)
		}
	}
}

// trainParts runs a train job with spec and returns the bank's result and
// each side's stored part and card.
func trainParts(t *testing.T, bank, partner *testNode, psiJob, spec string) (TrainJobResult, ModelPart, ModelCard, ModelPart, ModelCard) {
	t.Helper()
	bj, _ := runJobs(t, bank, partner, &tandemv1.SubmitJobRequest{Kind: "train", Peer: "partner-a", Train: &tandemv1.TrainParams{PsiJobId: psiJob, SpecYaml: []byte(spec)}}, 300*time.Second)
	var res TrainJobResult
	if err := json.Unmarshal(bj.ResultJson, &res); err != nil {
		t.Fatal(err)
	}
	bp, bc, _ := getModel(t, bank, res.ModelID)
	pp, pc, _ := getModel(t, partner, res.ModelID)
	return res, bp, bc, pp, pc
}
