package node

import (
	"encoding/json"
	"github.com/tandem-dev/tandem/fedlearn/vlr/vlrtest"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/node/dataset"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
	"github.com/tandem-dev/tandem/psi/ident"
)

// trainAgreement grants the bank's label and features and the partner's
// two behaviour features (not category).
const trainAgreement = `purpose: card cross-sell model
job_kinds: [ping, psi, train, score]
datasets:
  - party: bank
    dataset: customers
    columns: [phone, id_no, has_card, income, age, tenure_months]
  - party: partner-a
    dataset: users
    columns: [phone, id_no, monthly_spend, orders_90d]
psi_reveal: [initiator, both]
valid_days: 30
`

const trainSpec = `label: has_card
bank_features: [income, age, tenure_months]
partner_features: [monthly_spend, orders_90d]
epochs: 40
learning_rate: 1.5
l2: 0.001
validation_fraction: 0.25
batch: 0
seed: 5
early_stopping: {patience: 0}
validation_auc: true
`

// trainCSV is a CSV file as numeric columns by name (NaN = missing) plus
// the canonical identifiers of each data row.
type trainCSV struct {
	cols map[string][]float64
	ids  [][]string // per row: canonical phone, canonical id_no ("" if invalid)
	rows int
}

func loadTrainCSV(t *testing.T, file string, cols []string) *trainCSV {
	t.Helper()
	recs := readCSV(t, file)
	hdr := recs[0]
	idx := func(name string) int {
		i := slices.Index(hdr, name)
		if i < 0 {
			t.Fatalf("%s: no column %s", file, name)
		}
		return i
	}
	phone, _ := ident.ParseKind("cn_mobile")
	idNo, _ := ident.ParseKind("cn_id")
	c := &trainCSV{cols: map[string][]float64{}, rows: len(recs) - 1}
	for _, name := range cols {
		col, _, _ := dataset.SplitIndicator(name)
		k := idx(col)
		for _, r := range recs[1:] {
			c.cols[name] = append(c.cols[name], vlrtest.CellValue(name, r[k]))
		}
	}
	if !slices.Contains(hdr, "phone") {
		return c // a file without identifiers (the German credit data)
	}
	kp, ki := idx("phone"), idx("id_no")
	for _, r := range recs[1:] {
		var ids []string
		for _, x := range []struct {
			k ident.Kind
			s string
		}{{phone, r[kp]}, {idNo, r[ki]}} {
			cn, err := ident.Canonical(x.k, x.s)
			if err != nil {
				ids = append(ids, "")
			} else {
				ids = append(ids, x.k.String()+":"+cn)
			}
		}
		c.ids = append(c.ids, ids)
	}
	return c
}

// joinRows joins bank and partner rows on canonical phone, else id number
// (the PSI's rule): pairs of (bank row, partner row).
func joinRows(bank, part *trainCSV) [][2]int {
	byID := map[string]int{}
	for i, ids := range bank.ids {
		for _, c := range ids {
			if _, dup := byID[c]; c != "" && !dup {
				byID[c] = i
			}
		}
	}
	var out [][2]int
	used := map[int]bool{}
	for pr, ids := range part.ids {
		bi, ok := byID[ids[0]]
		if ids[0] == "" || !ok || used[bi] {
			bi, ok = byID[ids[1]]
			if ids[1] == "" {
				ok = false
			}
		}
		if !ok || used[bi] {
			continue
		}
		used[bi] = true
		out = append(out, [2]int{bi, pr})
	}
	return out
}

// meanSD is the owner's standardisation: mean of the present values over
// the rows used, missing values imputed with it, population sd.
func meanSD(v []float64, rows []int) (float64, float64) {
	var s, n float64
	for _, r := range rows {
		if !math.IsNaN(v[r]) {
			s += v[r]
			n++
		}
	}
	m := s / n
	var ss float64
	for _, r := range rows {
		if !math.IsNaN(v[r]) {
			ss += (v[r] - m) * (v[r] - m)
		}
	}
	return m, math.Sqrt(ss / float64(len(rows)))
}

// partScore is the plaintext scoring helper: a side's partial predictor
// from its stored part (missing = mean = standardised 0; the partner's
// part clipped to ±clip_range).
func partScore(p ModelPart, csv *trainCSV, row int) float64 {
	var s float64
	for k, f := range p.Features {
		switch v := csv.cols[f][row]; {
		case !math.IsNaN(v):
			s += p.Weights[k] * (v - p.Mean[k]) / p.SD[k]
		case p.Missing == "drop":
			return math.NaN() // no score, as the node
		}
	}
	if p.ClipRange > 0 {
		s = math.Max(-p.ClipRange, math.Min(p.ClipRange, s))
	}
	if p.Intercept != nil {
		s += *p.Intercept
	}
	return s
}

// jsonShape walks decoded JSON: the longest array and every object key.
func jsonShape(v any, keys map[string]bool) int {
	longest := 0
	switch x := v.(type) {
	case []any:
		longest = len(x)
		for _, e := range x {
			longest = max(longest, jsonShape(e, keys))
		}
	case map[string]any:
		for k, e := range x {
			keys[k] = true
			longest = max(longest, jsonShape(e, keys))
		}
	}
	return longest
}

func getModel(t *testing.T, tn *testNode, id string) (ModelPart, ModelCard, []byte) {
	t.Helper()
	info, err := tn.analyst.GetModel(t.Context(), &tandemv1.GetModelRequest{Id: id})
	if err != nil {
		t.Fatalf("%s: GetModel(%s): %v", tn.name, id, err)
	}
	var m struct {
		Part ModelPart `json:"part"`
		Card ModelCard `json:"card"`
	}
	if err := json.Unmarshal(info.ModelJson, &m); err != nil {
		t.Fatal(err)
	}
	return m.Part, m.Card, info.ModelJson
}

// TestTrainEndToEnd: a PSI job then a train job between two real nodes on
// synthetic data. Both succeed; each stores only its part with a model
// card; the bank's validation AUC from the two stored parts (scored in
// plaintext here, joining the CSVs on canonical ids) is within 0.005 of a
// plaintext logistic regression trained on the joined training rows with
// the same hyperparameters; every gradient release is an audit record on
// the releasing side; the partner's stored state holds no label value and
// no match indicator.
func TestTrainEndToEnd(t *testing.T) {
	truth, pt := psiWorld(t, 3000, 2500)
	bank, partner, _ := startPair(t, trainAgreement)
	addDataset(t, bank, "customers", truth.BankFile)
	addDataset(t, partner, "users", pt.File)
	psiJob := submitPSI(t, bank, "initiator")
	psiResult(t, bank, psiJob)
	psiResult(t, partner, psiJob)

	start := time.Now()
	bj, pj := runJobs(t, bank, partner, &tandemv1.SubmitJobRequest{Kind: "train", Peer: "partner-a", Train: &tandemv1.TrainParams{PsiJobId: psiJob, SpecYaml: []byte(trainSpec)}}, 120*time.Second)
	id := bj.Id
	t.Logf("train job over %d partner rows: %s wall", pt.Rows, time.Since(start).Round(time.Millisecond))
	var bres, pres TrainJobResult
	json.Unmarshal(bj.ResultJson, &bres)
	json.Unmarshal(pj.ResultJson, &pres)
	if bres.ModelID == "" || bres.ModelID != pres.ModelID || bres.Epochs != 40 || len(bres.Metrics) != 40 || bres.Metrics[39].ValLoss == nil {
		t.Fatalf("results: bank %s; partner %s", bj.ResultJson, pj.ResultJson)
	}
	t.Logf("val loss epoch 1 %.5f → 40 %.5f", *bres.Metrics[0].ValLoss, *bres.Metrics[39].ValLoss)
	var total float64
	for _, m := range append(slices.Clone(bres.Metrics), pres.Metrics...) {
		if !(m.Seconds > 0) {
			t.Fatalf("epoch %d: %v seconds", m.Epoch, m.Seconds)
		}
		total += m.Seconds
	}
	if wall := time.Since(start).Seconds(); total > 2*wall { // both sides' epochs fit in the job, each
		t.Errorf("epochs sum to %.2f s on the two sides, the job took %.2f s", total, wall)
	}

	// Each side stored only its own part, with a model card.
	bp, bc, _ := getModel(t, bank, bres.ModelID)
	pp, pc, pjson := getModel(t, partner, bres.ModelID)
	if !slices.Equal(bp.Features, []string{"income", "age", "tenure_months"}) || bp.Intercept == nil || bp.Side != "bank" ||
		!slices.Equal(pp.Features, []string{"monthly_spend", "orders_90d"}) || pp.Intercept != nil || pp.Side != "partner" || pp.ClipRange != 4 {
		t.Fatalf("parts: bank %+v; partner %+v", bp, pp)
	}
	for _, c := range []ModelCard{bc, pc} {
		if c.JobID != id || c.AgreementID == "" || c.Training.PSIJob != psiJob || len(c.Training.DatasetDigests) != 1 || c.Hyperparameters == nil ||
			c.Hyperparameters.L2 != 0.001 || len(c.Metrics) != 40 || c.Created == "" || len(c.BankFeatures) != 3 || len(c.PartnerFeatures) != 2 {
			t.Errorf("%s model card incomplete: %+v", c.Side, c)
		}
	}
	if ms, err := bank.analyst.ListModels(t.Context(), &tandemv1.ListModelsRequest{}); err != nil || len(ms.Models) != 1 {
		t.Errorf("ListModels: %v %v", ms, err)
	}

	// Plaintext check on the joined CSVs.
	bcsv := loadTrainCSV(t, truth.BankFile, []string{"has_card", "income", "age", "tenure_months"})
	pcsv := loadTrainCSV(t, pt.File, []string{"monthly_spend", "orders_90d"})
	pairs := joinRows(bcsv, pcsv)
	aHE := checkAgainstPlain(t, bank, bres.ModelID, "has_card", 0.001, bp, pp, bc, bcsv, pcsv, pairs).aHE
	checkScoreJob(t, bank, partner, psiJob, bres.ModelID, "has_card", bp, pp, bcsv, pcsv, pairs, aHE)
	checkBandsOnlyJob(t, bank, partner, psiJob, bres.ModelID, bp, pp, bcsv, pcsv, pairs)

	// One release audit record per gradient release on each side.
	if got := auditKinds(t, bank, id)["release"]; got != 40 || bres.Releases != 40 {
		t.Errorf("bank release records: %d (result says %d), want 40", got, bres.Releases)
	}
	// The partner also records one validation release per epoch (one batch
	// of masked partial predictors at L = 2500).
	if got := auditKinds(t, partner, id)["release"]; got != 80 || pres.Releases != 40 {
		t.Errorf("partner release records: %d (result says %d gradient releases), want 40 + 40 validation", got, pres.Releases)
	}
	if a := bres.Metrics[39].ValAUC; a == nil || math.Abs(*a-aHE) > 1e-3 {
		t.Errorf("last epoch's validation AUC %v, final parts scored in plaintext %.5f", a, aHE)
	}
	for _, m := range pres.Metrics {
		if m.ValAUC != nil {
			t.Errorf("partner learnt a validation AUC: %+v", m)
		}
	}

	// The partner's stored state: no label values, no match indicator.
	resp, err := partner.admin.AuditTail(t.Context(), &tandemv1.AuditTailRequest{JobId: id})
	if err != nil {
		t.Fatal(err)
	}
	srec, err := partner.n.jobs.get(id)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := partner.n.st.getJSON("model/"+bres.ModelID, (*json.RawMessage)(&raw)); err != nil {
		t.Fatal(err)
	}
	docs := [][]byte{srec.Result, raw, pjson, pj.ResultJson}
	for _, e := range resp.Entries {
		docs = append(docs, e.EntryJson)
	}
	for _, d := range docs {
		var v any
		if err := json.Unmarshal(d, &v); err != nil {
			t.Fatalf("partner state %s: %v", d, err)
		}
		keys := map[string]bool{}
		if n := jsonShape(v, keys); n > 40 {
			t.Errorf("partner state holds an array of %d values (per-row data?): %.300s", n, d)
		}
		for k := range keys {
			lk := strings.ToLower(k)
			if strings.Contains(lk, "match") || slices.Contains([]string{"validation_rows", "train_rows", "validation_loss", "label_values", "labels"}, lk) {
				t.Errorf("partner state has key %q: %.300s", k, d)
			}
		}
	}
}

// plainCheck is a trained split model against plaintext logistic
// regression on the joined CSVs.
type plainCheck struct {
	he, base   []float64 // [bank…, partner…, intercept] in standardised units
	aHE, aBase float64   // validation AUC of the stored parts and of the baseline
}

// checkAgainstPlain joins the CSVs on canonical ids (rows with a label),
// checks the stored standardisation and split against them, fits the
// plaintext baseline (same rows, standardisation and λ) and checks the
// validation AUC of the stored parts within 0.005 of it.
func checkAgainstPlain(t *testing.T, bank *testNode, modelID, label string, lambda float64, bp, pp ModelPart, bc ModelCard, bcsv, pcsv *trainCSV, pairs [][2]int) plainCheck {
	t.Helper()
	var joined [][2]int // rows taking part: label present
	for _, pr := range pairs {
		if !math.IsNaN(bcsv.cols[label][pr[0]]) {
			joined = append(joined, pr)
		}
	}
	if bc.Training.MatchedRows != len(joined) {
		t.Errorf("matched rows: bank %d, plaintext join %d", bc.Training.MatchedRows, len(joined))
	}
	// Standardisation, computed here independently, equals the stored one.
	bRows, pRows := make([]int, len(joined)), make([]int, pcsv.rows)
	for k, pr := range joined {
		bRows[k] = pr[0]
	}
	for r := range pRows {
		pRows[r] = r
	}
	type stdz struct{ m, s float64 }
	std := map[string]stdz{}
	for k, f := range bp.Features {
		m, s := meanSD(bcsv.cols[f], bRows)
		std[f] = stdz{m, s}
		if math.Abs(m-bp.Mean[k]) > 1e-9*math.Abs(m)+1e-9 || math.Abs(s-bp.SD[k]) > 1e-9*s {
			t.Errorf("bank %s standardisation: stored %v/%v, plaintext %v/%v", f, bp.Mean[k], bp.SD[k], m, s)
		}
	}
	for k, f := range pp.Features {
		m, s := meanSD(pcsv.cols[f], pRows)
		std[f] = stdz{m, s}
		if math.Abs(m-pp.Mean[k]) > 1e-9*math.Abs(m)+1e-9 || math.Abs(s-pp.SD[k]) > 1e-9*s {
			t.Errorf("partner %s standardisation: stored %v/%v, plaintext %v/%v", f, pp.Mean[k], pp.SD[k], m, s)
		}
	}
	row := func(pr [2]int) []float64 {
		var x []float64
		for _, f := range bp.Features {
			if v := bcsv.cols[f][pr[0]]; !math.IsNaN(v) {
				x = append(x, (v-std[f].m)/std[f].s)
			} else {
				x = append(x, 0)
			}
		}
		for _, f := range pp.Features {
			if v := pcsv.cols[f][pr[1]]; !math.IsNaN(v) {
				x = append(x, (v-std[f].m)/std[f].s)
			} else {
				x = append(x, 0)
			}
		}
		return append(x, 1)
	}
	sm, err := bank.n.model(modelID)
	if err != nil {
		t.Fatal(err)
	}
	isVal := map[int]bool{}
	for _, r := range sm.ValidationRows {
		isVal[int(r)] = true
	}
	var xtr, xv [][]float64
	var ytr, yv []float64
	var sHE, sTr []float64
	for _, pr := range joined {
		y := bcsv.cols[label][pr[0]]
		s := partScore(bp, bcsv, pr[0]) + partScore(pp, pcsv, pr[1])
		if isVal[pr[0]] {
			xv, yv, sHE = append(xv, row(pr)), append(yv, y), append(sHE, s)
		} else {
			xtr, ytr, sTr = append(xtr, row(pr)), append(ytr, y), append(sTr, s)
		}
	}
	if len(xv) != len(sm.ValidationRows) || len(xv) != bc.Training.ValidationRows || len(xtr) != bc.Training.TrainRows {
		t.Fatalf("split: %d validation rows joined of %d stored; %d training rows, card %d", len(xv), len(sm.ValidationRows), len(xtr), bc.Training.TrainRows)
	}
	if len(xv) == 0 { // validation_fraction 0: compare in-sample, as with R's glm
		xv, yv, sHE = xtr, ytr, sTr
	}
	base := vlrtest.PlainLR(xtr, ytr, lambda)
	sBase := make([]float64, len(xv))
	for i, x := range xv {
		for j, v := range x {
			sBase[i] += base[j] * v
		}
	}
	aHE, aBase := vlrtest.AUC(sHE, yv), vlrtest.AUC(sBase, yv)
	he := append(append(slices.Clone(bp.Weights), pp.Weights...), *bp.Intercept)
	t.Logf("validation AUC over %d rows: split model %.5f, plaintext LR %.5f; coefficients split %.4f plaintext %.4f", len(yv), aHE, aBase, he, base)
	if math.Abs(aHE-aBase) > 0.005 {
		t.Errorf("validation AUC: split model %.5f, plaintext %.5f (|Δ| > 0.005)", aHE, aBase)
	}

	return plainCheck{he: he, base: base, aHE: aHE, aBase: aBase}
}

// checkScoreJob runs a score job with the trained split model over the
// PSI job and checks it against plaintext scoring of the joined CSVs: the
// bank's scores.csv holds exactly its matched rows, each with the score of
// the two stored parts; the bands partition them; the validation AUC is
// the one of the held-out rows; the partner learns the count only and
// records one release per batch.
func checkScoreJob(t *testing.T, bank, partner *testNode, psiJob, modelID, label string, bp, pp ModelPart, bcsv, pcsv *trainCSV, pairs [][2]int, valAUC float64) {
	t.Helper()
	bj, pj := runJobs(t, bank, partner, &tandemv1.SubmitJobRequest{Kind: "score", Peer: "partner-a", Score: &tandemv1.ScoreParams{PsiJobId: psiJob, ModelId: modelID, Bands: 10}}, 60*time.Second)
	var br, pr ScoreJobResult
	json.Unmarshal(bj.ResultJson, &br)
	json.Unmarshal(pj.ResultJson, &pr)
	if br.Scored != len(pairs) || pr.Scored != br.Scored || pr.Output != "" || len(br.Bands) != 10 || (br.ValidationAUC == nil) != math.IsNaN(valAUC) {
		t.Fatalf("score results: bank %s; partner %s", bj.ResultJson, pj.ResultJson)
	}
	want := map[string]float64{}
	var sl, yl []float64 // every labelled scored row
	for _, p := range pairs {
		z := partScore(bp, bcsv, p[0]) + partScore(pp, pcsv, p[1])
		want[strconv.Itoa(p[0])] = 1 / (1 + math.Exp(-z))
		if y := bcsv.cols[label][p[0]]; !math.IsNaN(y) {
			sl, yl = append(sl, z), append(yl, y)
		}
	}
	if a := vlrtest.AUC(sl, yl); br.LabelledAUC == nil || br.LabelledN != len(yl) || math.Abs(*br.LabelledAUC-a) > 1e-4 {
		t.Errorf("score job labelled AUC %v over %d rows; plaintext scoring of the parts %.5f over %d", br.LabelledAUC, br.LabelledN, a, len(yl))
	}
	recs := readCSV(t, br.Output)
	hdr := recs[0]
	iRow, iScore, iBand := slices.Index(hdr, "row"), slices.Index(hdr, "score"), slices.Index(hdr, "band")
	if iRow < 0 || iScore < 0 || iBand < 0 || len(recs)-1 != len(pairs) {
		t.Fatalf("scores.csv: header %v, %d rows for %d matched", hdr, len(recs)-1, len(pairs))
	}
	bandRows := map[string]int{}
	for _, r := range recs[1:] {
		w, ok := want[r[iRow]]
		got, err := strconv.ParseFloat(r[iScore], 64)
		if !ok || err != nil || math.Abs(got-w) > 2e-6 {
			t.Fatalf("scores.csv row %s: score %s, plaintext %v (matched %v)", r[iRow], r[iScore], w, ok)
		}
		bandRows[r[iBand]]++
	}
	total := 0
	for _, b := range br.Bands {
		if bandRows[strconv.Itoa(b.Band)] != b.Rows || b.MinScore > b.MaxScore {
			t.Errorf("band %+v: %d rows in the file", b, bandRows[strconv.Itoa(b.Band)])
		}
		total += b.Rows
	}
	if total != len(pairs) || br.Bands[0].MinScore < br.Bands[9].MaxScore {
		t.Errorf("bands %+v", br.Bands)
	}
	if br.ValidationAUC != nil && math.Abs(*br.ValidationAUC-valAUC) > 1e-4 {
		t.Errorf("score job validation AUC %.5f, plaintext scoring of the parts %.5f", *br.ValidationAUC, valAUC)
	}
	t.Logf("score job: %d rows, validation AUC %.5f over %d rows, labelled AUC %.5f over %d, %d releases, bank sent %d B, partner %d B",
		br.Scored, valAUC, br.ValidationN, *br.LabelledAUC, br.LabelledN, pr.Releases, br.BytesSent, pr.BytesSent)
	checkPartnerScore(t, partner, bj.Id, pj, pr.Releases)
	// A model the partner does not hold is refused at the proposal.
	js, err := bank.analyst.SubmitJob(t.Context(), &tandemv1.SubmitJobRequest{Kind: "score", Peer: "partner-a",
		Score: &tandemv1.ScoreParams{PsiJobId: psiJob, ModelId: "mdl-missing"}})
	if err == nil && js.State == stateAccepted {
		t.Errorf("score with an unknown model accepted: %v", js)
	}
}

// checkBandsOnlyJob runs a bands-only score job (fixed edges) with the
// trained split model: bands.csv holds every matched row with the band of
// its plaintext score against the edges (a row within 2^-9 logit of an
// edge may fall either side: the comparisons' fixed point; a missing: drop
// model's row with a missing feature on either side has none) and no score;
// the band table counts them; the partner records its comparison
// releases and its result holds no per-row values.
func checkBandsOnlyJob(t *testing.T, bank, partner *testNode, psiJob, modelID string, bp, pp ModelPart, bcsv, pcsv *trainCSV, pairs [][2]int) {
	t.Helper()
	edges := []float64{0.2, 0.35, 0.5, 0.65, 0.8}
	B := len(edges) + 1
	bj, pj := runJobs(t, bank, partner, &tandemv1.SubmitJobRequest{Kind: "score", Peer: "partner-a",
		Score: &tandemv1.ScoreParams{PsiJobId: psiJob, ModelId: modelID, Bands: int32(B), BandsOnly: true, BandEdges: edges}}, 60*time.Second)
	var br, pr ScoreJobResult
	json.Unmarshal(bj.ResultJson, &br)
	json.Unmarshal(pj.ResultJson, &pr)
	if !br.BandsOnly || br.Scored+br.IncompleteBank+br.IncompletePartner != len(pairs) || pr.Scored != len(pairs)-br.IncompleteBank ||
		len(br.Bands) != B || br.LabelledAUC != nil || br.MeanScore != 0 {
		t.Fatalf("bands-only results: bank %s; partner %s", bj.ResultJson, pj.ResultJson)
	}
	recs := readCSV(t, br.Output)
	hdr := recs[0]
	iRow, iBand := slices.Index(hdr, "row"), slices.Index(hdr, "band")
	if iRow < 0 || iBand != len(hdr)-1 || slices.Contains(hdr, "score") || len(recs)-1 != len(pairs) {
		t.Fatalf("bands.csv: header %v, %d rows for %d matched", hdr, len(recs)-1, len(pairs))
	}
	type want struct {
		band int
		near bool
	}
	wants := map[string]want{}
	for _, p := range pairs {
		z := partScore(bp, bcsv, p[0]) + partScore(pp, pcsv, p[1])
		w := want{band: B}
		if math.IsNaN(z) { // a missing: drop model's row with a missing feature: no band
			wants[strconv.Itoa(p[0])] = want{band: 0}
			continue
		}
		for _, e := range edges {
			l := math.Log(e / (1 - e))
			if z >= l {
				w.band--
			}
			w.near = w.near || math.Abs(z-l) < 2.0/(1<<protocol.BandScaleBits)
		}
		wants[strconv.Itoa(p[0])] = w
	}
	counts := map[int]int{}
	near := 0
	for _, r := range recs[1:] {
		w, ok := wants[r[iRow]]
		got, err := strconv.Atoi(r[iBand])
		if r[iBand] == "" {
			got, err = 0, nil
		}
		if !ok || err != nil || got != w.band && !(w.near && abs(got-w.band) == 1) {
			t.Fatalf("bands.csv row %s: band %s, plaintext score's band %d (matched %v)", r[iRow], r[iBand], w.band, ok)
		}
		if w.near {
			near++
		}
		counts[got]++
	}
	for _, b := range br.Bands {
		if counts[b.Band] != b.Rows || b.MinScore >= b.MaxScore {
			t.Errorf("band %+v: %d rows in the file", b, counts[b.Band])
		}
	}
	if br.Bands[0].MaxScore != 1 || br.Bands[0].MinScore != 0.8 || br.Bands[B-1].MinScore != 0 {
		t.Errorf("band table %+v", br.Bands)
	}
	checkPartnerScore(t, partner, bj.Id, pj, pr.Releases)
	t.Logf("bands-only score job: %d rows (%d within 2^-9 logit of an edge), %d releases, bank sent %d B, partner %d B",
		br.Scored, near, pr.Releases, br.BytesSent, pr.BytesSent)
}

// checkPartnerScore: the partner recorded one release per batch of a
// score job and its result holds no per-row values.
func checkPartnerScore(t *testing.T, partner *testNode, jobID string, pj *tandemv1.JobState, releases int) {
	t.Helper()
	if got := auditKinds(t, partner, jobID)["release"]; got != releases || got < 1 {
		t.Errorf("partner release records: %d, result says %d", got, releases)
	}
	var v any
	json.Unmarshal(pj.ResultJson, &v)
	if n := jsonShape(v, map[string]bool{}); n > 0 {
		t.Errorf("partner's score result holds an array of %d values: %s", n, pj.ResultJson)
	}
}

func abs(x int) int { return max(x, -x) }

// alignedPair starts a bank and a partner under the agreement, registers
// synthetic datasets of the given sizes and runs an initiator-mode PSI
// job between them.
func alignedPair(t *testing.T, bankRows, partnerRows int, agreement string) (bank, partner *testNode, psiJob string) {
	t.Helper()
	truth, pt := psiWorld(t, bankRows, partnerRows)
	bank, partner, _ = startPair(t, agreement)
	addDataset(t, bank, "customers", truth.BankFile)
	addDataset(t, partner, "users", pt.File)
	psiJob = submitPSI(t, bank, "initiator")
	psiResult(t, bank, psiJob)
	return bank, partner, psiJob
}

// TestScoreReleaseBands: an agreement with score_release: bands refuses
// score jobs that would give the bank scores, and bands-only parameters
// are checked at the proposal with the cause named.
func TestScoreReleaseBands(t *testing.T) {
	agr := strings.Replace(trainAgreement, "job_kinds: [ping, psi, train, score]", "job_kinds: [ping, psi, train, score]\nscore_release: bands", 1)
	bank, _, psiJob := alignedPair(t, 600, 400, agr)
	for _, tc := range []struct {
		p    *tandemv1.ScoreParams
		want string
	}{
		{&tandemv1.ScoreParams{Bands: 10}, "score_release: bands"},
		{&tandemv1.ScoreParams{Bands: 33, BandsOnly: true}, "--bands 2..32"},
		{&tandemv1.ScoreParams{Bands: 1, BandsOnly: true}, "--bands 2..32"},
		{&tandemv1.ScoreParams{Bands: 3, BandsOnly: true, BandEdges: []float64{0.5}}, "1 edges for 3 bands"},
		{&tandemv1.ScoreParams{Bands: 3, BandsOnly: true, BandEdges: []float64{0.6, 0.5}}, "ascending"},
		{&tandemv1.ScoreParams{Bands: 3, BandsOnly: true, BandEdges: []float64{0, 0.5}}, "strictly between 0 and 1"},
		{&tandemv1.ScoreParams{Bands: 3, BandsOnly: true}, "model mdl-x is not known"}, // past the release checks
	} {
		tc.p.PsiJobId, tc.p.ModelId = psiJob, "mdl-x"
		_, err := bank.analyst.SubmitJob(t.Context(), &tandemv1.SubmitJobRequest{Kind: "score", Peer: "partner-a", Score: tc.p})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SubmitJob(score %v): got %v, want error containing %q", tc.p, err, tc.want)
		}
	}
}

// TestTrainMissingDropNeedsScore: missing: drop tells the bank which of
// its matched rows the partner lacks a feature for, per-row information
// about shared customers, so the partner's policy refuses it unless the
// agreement allows scoring. Both sides fail with the reason, the refusal
// is recorded and nothing is released.
func TestTrainMissingDropNeedsScore(t *testing.T) {
	agr := strings.Replace(trainAgreement, "job_kinds: [ping, psi, train, score]", "job_kinds: [ping, psi, train]", 1)
	bank, partner, psiJob := alignedPair(t, 3000, 2500, agr)
	spec := strings.Replace(trainSpec, "validation_auc: true\n", "", 1) + "missing: drop\n"
	js, err := bank.analyst.SubmitJob(t.Context(), &tandemv1.SubmitJobRequest{Kind: "train", Peer: "partner-a",
		Train: &tandemv1.TrainParams{PsiJobId: psiJob, SpecYaml: []byte(spec)}})
	if err != nil || js.State != stateAccepted {
		t.Fatalf("SubmitJob(train): %v %v", js, err)
	}
	const want = "does not allow score jobs, which missing: drop needs"
	for _, tn := range []*testNode{bank, partner} {
		if j := finalJob(t, tn.analyst, js.Id, 60*time.Second); j.State != stateFailed || !strings.Contains(j.Reason, want) {
			t.Errorf("%s: job %s (%s), want failed with %q", tn.name, j.State, j.Reason, want)
		}
	}
	if kinds := auditKinds(t, partner, js.Id); kinds["release_refused"] != 1 || kinds["release"] != 0 {
		t.Errorf("partner audit: %v, want one release_refused and no release", kinds)
	}
}

// TestTrainSubmitChecks: an ungranted column or a malformed spec is
// refused at submission with the column or field named.
func TestTrainSubmitChecks(t *testing.T) {
	bank, _, psiJob := alignedPair(t, 600, 400, trainAgreement)
	for _, tc := range []struct{ psi, spec, want string }{
		{psiJob, strings.Replace(trainSpec, "orders_90d", "category", 1), "column category"},
		{psiJob, strings.Replace(trainSpec, "tenure_months", "city_tier", 1), "column city_tier"},
		{psiJob, trainSpec + "epoch: 3\n", "field epoch not found"},
		{psiJob, strings.Replace(trainSpec, "l2: 0.001", "l2: -1", 1), "field l2"},
		{"job-0000", trainSpec, "not known"},
	} {
		_, err := bank.analyst.SubmitJob(t.Context(), &tandemv1.SubmitJobRequest{Kind: "train", Peer: "partner-a",
			Train: &tandemv1.TrainParams{PsiJobId: tc.psi, SpecYaml: []byte(tc.spec)}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SubmitJob(train, %s): got %v, want error containing %q", tc.want, err, tc.want)
		}
	}
}
