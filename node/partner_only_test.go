package node

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

	// The same model with missing: drop: a user missing a feature gets no
	// score and no band, locally and in the bank's band counts.
	var tr TrainJobResult
	for _, missing := range []string{"mean", "drop"} {
		spec := "label: has_card\npartner_only: true\npartner_features: [monthly_spend, orders_90d]\nepochs: 15\nl2: 0.001\nseed: 3\nmissing: " + missing + "\n"
		bj, _ := runJobs(t, bank, partner, &tandemv1.SubmitJobRequest{Kind: "train", Peer: "partner-a", Train: &tandemv1.TrainParams{PsiJobId: psiJob, SpecYaml: []byte(spec)}}, 120*time.Second)
		json.Unmarshal(bj.ResultJson, &tr)
		bp, _, _ := getModel(t, bank, tr.ModelID)
		pp, pc, _ := getModel(t, partner, tr.ModelID)
		if len(bp.Features) != 0 || bp.Intercept == nil || pp.Intercept == nil || *pp.Intercept != *bp.Intercept || len(pc.BankFeatures) != 0 || pp.Missing != missing {
			t.Fatalf("parts: bank %+v; partner %+v", bp, pp)
		}
		want := 16 // 15 gradient releases + the intercept
		if got := auditKinds(t, bank, bj.Id)["release"]; got != want {
			t.Errorf("bank release records %d, want %d", got, want)
		}
		pcsv := loadTrainCSV(t, pt.File, []string{"monthly_spend", "orders_90d"})
		checkLocalScores(t, partner, tr.ModelID, pp, pcsv)
		checkPartnerBands(t, bank, partner, psiJob, tr.ModelID, pp, truth.BankFile, pcsv)
	}
	if got := auditKinds(t, partner, "")["export"]; got < 2 {
		t.Errorf("local scoring left %d export records on the partner, want 2", got)
	}
	if _, err := bank.analyst.ScoreLocal(t.Context(), &tandemv1.ScoreLocalRequest{ModelId: tr.ModelID, Dataset: "customers", Out: filepath.Join(t.TempDir(), "x.csv")}); err == nil {
		t.Error("the bank scored locally with an intercept-only part")
	}
	if _, err := partner.analyst.ScoreLocal(t.Context(), &tandemv1.ScoreLocalRequest{ModelId: tr.ModelID, Dataset: "users", Out: "relative.csv"}); err == nil {
		t.Error("relative --out accepted")
	}
	// A file that gained rows since it was registered is refused, not
	// scored against the registered row count.
	f, err := os.OpenFile(pt.File, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, pt.File)
	f.WriteString(strings.Join(recs[len(recs)-1], ",") + "\n")
	f.Close()
	_, err = partner.analyst.ScoreLocal(t.Context(), &tandemv1.ScoreLocalRequest{ModelId: tr.ModelID, Dataset: "users", Out: filepath.Join(t.TempDir(), "y.csv")})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "register it again") {
		t.Errorf("local scoring of a file that changed: %v", err)
	}
}

// checkLocalScores scores the partner's users locally with a whole
// (partner-only) model and checks every row against plaintext scoring of
// the part: a row without a score (missing: drop) has score and band empty.
func checkLocalScores(t *testing.T, partner *testNode, modelID string, pp ModelPart, pcsv *trainCSV) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "invite.csv")
	resp, err := partner.analyst.ScoreLocal(t.Context(), &tandemv1.ScoreLocalRequest{ModelId: modelID, Dataset: "users", Out: out, Bands: 4})
	if err != nil {
		t.Fatal(err)
	}
	var res LocalScoreResult
	json.Unmarshal(resp.ResultJson, &res)
	if res.Rows != int64(pcsv.rows) || len(res.Bands) != 4 {
		t.Fatalf("local scoring: %s", resp.ResultJson)
	}
	recs := readCSV(t, out)
	iRow, iScore, iBand := slices.Index(recs[0], "row"), slices.Index(recs[0], "score"), slices.Index(recs[0], "band")
	if len(recs)-1 != pcsv.rows || iRow < 0 || iScore < 0 || iBand < 0 || !slices.Contains(recs[0], "phone") {
		t.Fatalf("invite.csv header %v, %d rows", recs[0], len(recs)-1)
	}
	unscored := 0
	for _, r := range recs[1:] {
		row, _ := strconv.Atoi(r[iRow])
		z := partScore(pp, pcsv, row)
		if math.IsNaN(z) {
			unscored++
			if r[iScore] != "" || r[iBand] != "" {
				t.Fatalf("row %d misses a feature: score %q band %q, want both empty", row, r[iScore], r[iBand])
			}
			continue
		}
		got, _ := strconv.ParseFloat(r[iScore], 64)
		if want := 1 / (1 + math.Exp(-z)); math.Abs(got-want) > 1e-6 {
			t.Fatalf("row %d: score %v, plaintext %v", row, got, want)
		}
	}
	if res.Unscored != unscored || (pp.Missing == "drop") != (unscored > 0) {
		t.Errorf("model missing: %s: %d rows unscored, plaintext %d", pp.Missing, res.Unscored, unscored)
	}
}

// checkPartnerBands: a score job with a partner-only model gives the bank
// per-band counts only (the partner's users per band of its own scores, and
// how many of them are bank customers), matching a plaintext banding of the
// partner's rows and the plaintext join; no per-row output on the bank.
func checkPartnerBands(t *testing.T, bank, partner *testNode, psiJob, modelID string, pp ModelPart, bankFile string, pcsv *trainCSV) {
	t.Helper()
	if js, err := bank.analyst.SubmitJob(t.Context(), &tandemv1.SubmitJobRequest{Kind: "score", Peer: "partner-a",
		Score: &tandemv1.ScoreParams{PsiJobId: psiJob, ModelId: modelID}}); err == nil && js.State == stateAccepted {
		t.Fatalf("per-row scoring of a partner-only model accepted: %v", js)
	}
	const B = 4
	js, err := bank.analyst.SubmitJob(t.Context(), &tandemv1.SubmitJobRequest{Kind: "score", Peer: "partner-a",
		Score: &tandemv1.ScoreParams{PsiJobId: psiJob, ModelId: modelID, Bands: B}})
	if err != nil || js.State != stateAccepted {
		t.Fatalf("SubmitJob(score --bands): %v %v", js, err)
	}
	bj := finalJob(t, bank.analyst, js.Id, 60*time.Second)
	pj := finalJob(t, partner.analyst, js.Id, 30*time.Second)
	if bj.State != stateSucceeded || pj.State != stateSucceeded {
		t.Fatalf("score --bands: bank %s (%s), partner %s (%s)", bj.State, bj.Reason, pj.State, pj.Reason)
	}
	var res ScoreJobResult
	json.Unmarshal(bj.ResultJson, &res)
	if res.Output != "" || len(res.PartnerBands) != B {
		t.Fatalf("bank result %s", bj.ResultJson)
	}
	// Plaintext: band the partner's rows by score, count joined rows.
	bcsv := loadTrainCSV(t, bankFile, []string{"has_card"})
	shared := map[int]bool{}
	for _, pr := range joinRows(bcsv, pcsv) {
		shared[pr[1]] = true
	}
	var order []int // rows with a score (missing: drop leaves some out)
	score := make([]float64, pcsv.rows)
	withScore := 0
	for r := range score {
		if score[r] = partScore(pp, pcsv, r); !math.IsNaN(score[r]) {
			order = append(order, r)
			if shared[r] {
				withScore++
			}
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case score[a] > score[b]:
			return -1
		case score[a] < score[b]:
			return 1
		}
		return 0
	})
	users, cust := make([]int64, B), make([]int64, B)
	for k, r := range order {
		b := k * B / len(order)
		users[b]++
		if shared[r] {
			cust[b]++
		}
	}
	var sumCust int64
	for b, pb := range res.PartnerBands {
		if pb.Suppressed || pb.Users == nil || pb.Customers == nil || *pb.Users != users[b] {
			t.Fatalf("band %d: %+v, plaintext users %d", b+1, pb, users[b])
		}
		// Rows with equal scores (both features missing) may fall on either
		// side of a band boundary; allow a handful.
		if d := *pb.Customers - cust[b]; d < -5 || d > 5 || *pb.NotCustomers != *pb.Users-*pb.Customers {
			t.Errorf("band %d: %d customers, plaintext %d", b+1, *pb.Customers, cust[b])
		}
		sumCust += *pb.Customers
	}
	if sumCust != int64(withScore) {
		t.Errorf("customers over all bands %d, plaintext join (rows with a score) %d", sumCust, withScore)
	}
	t.Logf("partner bands: %s", bj.ResultJson)
	var v any
	json.Unmarshal(pj.ResultJson, &v)
	if n := jsonShape(v, map[string]bool{}); n > 0 {
		t.Errorf("partner's result holds an array: %s", pj.ResultJson)
	}
}
