package node

import (
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// TestPartnerOnlyModelAndLocalScoring: the acquisition use case. A
// partner-only model is trained between two real nodes (the bank gives its
// label); the partner ends up with the whole model (its weights and the
// bank's intercept, one audited release) and scores all its own users
// locally, exactly as the plaintext formula over its stored part says; the
// bank's part (an intercept alone) cannot score anything locally.
func TestPartnerOnlyModelAndLocalScoring(t *testing.T) {
	truth, pt := psiWorld(t, 2000, 1500)
	bank, partner, _ := startPair(t, trainAgreement)
	addDataset(t, bank, "customers", truth.BankFile)
	addDataset(t, partner, "users", pt.File)
	psiJob := submitPSI(t, bank, "initiator")
	psiResult(t, bank, psiJob)

	spec := "label: has_card\npartner_only: true\npartner_features: [monthly_spend, orders_90d]\nepochs: 15\nl2: 0.001\nseed: 3\n"
	js, err := bank.analyst.SubmitJob(t.Context(), &tandemv1.SubmitJobRequest{Kind: "train", Peer: "partner-a",
		Train: &tandemv1.TrainParams{PsiJobId: psiJob, SpecYaml: []byte(spec)}})
	if err != nil || js.State != stateAccepted {
		t.Fatalf("SubmitJob(train): %v %v", js, err)
	}
	bj := finalJob(t, bank.analyst, js.Id, 120*time.Second)
	pj := finalJob(t, partner.analyst, js.Id, 30*time.Second)
	if bj.State != stateSucceeded || pj.State != stateSucceeded {
		t.Fatalf("train: bank %s (%s), partner %s (%s)", bj.State, bj.Reason, pj.State, pj.Reason)
	}
	var tr TrainJobResult
	json.Unmarshal(bj.ResultJson, &tr)
	bp, _, _ := getModel(t, bank, tr.ModelID)
	pp, pc, _ := getModel(t, partner, tr.ModelID)
	if len(bp.Features) != 0 || bp.Intercept == nil || pp.Intercept == nil || *pp.Intercept != *bp.Intercept || len(pc.BankFeatures) != 0 {
		t.Fatalf("parts: bank %+v; partner %+v", bp, pp)
	}
	if got := auditKinds(t, bank, js.Id)["release"]; got != 16 { // 15 gradient releases + the intercept
		t.Errorf("bank release records %d, want 16", got)
	}

	out := filepath.Join(t.TempDir(), "invite.csv")
	resp, err := partner.analyst.ScoreLocal(t.Context(), &tandemv1.ScoreLocalRequest{ModelId: tr.ModelID, Dataset: "users", Out: out, Bands: 4})
	if err != nil {
		t.Fatal(err)
	}
	var res LocalScoreResult
	json.Unmarshal(resp.ResultJson, &res)
	pcsv := loadTrainCSV(t, pt.File, []string{"monthly_spend", "orders_90d"})
	if res.Rows != int64(pcsv.rows) || len(res.Bands) != 4 {
		t.Fatalf("local scoring: %s", resp.ResultJson)
	}
	recs := readCSV(t, out)
	iRow, iScore, iBand := slices.Index(recs[0], "row"), slices.Index(recs[0], "score"), slices.Index(recs[0], "band")
	if len(recs)-1 != pcsv.rows || iRow < 0 || iScore < 0 || iBand < 0 || !slices.Contains(recs[0], "phone") {
		t.Fatalf("invite.csv header %v, %d rows", recs[0], len(recs)-1)
	}
	for _, r := range recs[1:] {
		row, _ := strconv.Atoi(r[iRow])
		got, _ := strconv.ParseFloat(r[iScore], 64)
		want := 1 / (1 + math.Exp(-partScore(pp, pcsv, row)))
		if math.Abs(got-want) > 1e-6 {
			t.Fatalf("row %d: score %v, plaintext %v", row, got, want)
		}
	}
	if got := auditKinds(t, partner, "")["export"]; got < 1 {
		t.Errorf("local scoring left no export record on the partner")
	}
	if _, err := bank.analyst.ScoreLocal(t.Context(), &tandemv1.ScoreLocalRequest{ModelId: tr.ModelID, Dataset: "customers", Out: filepath.Join(t.TempDir(), "x.csv")}); err == nil {
		t.Error("the bank scored locally with an intercept-only part")
	}
	if _, err := partner.analyst.ScoreLocal(t.Context(), &tandemv1.ScoreLocalRequest{ModelId: tr.ModelID, Dataset: "users", Out: "relative.csv"}); err == nil {
		t.Error("relative --out accepted")
	}
}
