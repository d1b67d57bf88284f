package node

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/psi"
	"github.com/tandem-dev/tandem/testnet/synth"
)

// psiAgreement allows ping and PSI in every reveal mode on the synthetic
// bank and partner datasets.
const psiAgreement = `purpose: card cross-sell audience sizing
job_kinds: [ping, psi]
datasets:
  - party: bank
    dataset: customers
    columns: [phone, id_no]
  - party: partner-a
    dataset: users
    columns: [phone, id_no]
psi_reveal: [initiator, both, count]
valid_days: 30
`

const psiIDs = "phone:cn_mobile,id_no:cn_id"

// psiWorld generates a synthetic bank and one partner and returns the
// truth for that partner.
func psiWorld(t *testing.T, bankRows, partnerRows int) (*synth.Truth, synth.PartnerTruth) {
	t.Helper()
	dir := t.TempDir()
	truth, err := synth.Generate(dir, synth.Config{
		Seed:     20240611,
		BankRows: bankRows,
		Partners: []synth.PartnerConfig{{Name: "partner-a", Rows: partnerRows, Overlap: 0.4, Kind: synth.KindEcommerce}},
	})
	if err != nil {
		t.Fatalf("synth.Generate: %v", err)
	}
	return truth, truth.Partners[0]
}

// startPSIPair starts bank and partner with the PSI agreement and the
// synthetic datasets registered (bank "customers", partner "users").
func startPSIPair(t *testing.T, bankRows, partnerRows int) (bank, partner *testNode, truth *synth.Truth, pt synth.PartnerTruth) {
	t.Helper()
	truth, pt = psiWorld(t, bankRows, partnerRows)
	bank, partner, _ = startPair(t, psiAgreement)
	addDataset(t, bank, "customers", truth.BankFile)
	addDataset(t, partner, "users", pt.File)
	return bank, partner, truth, pt
}

func addDataset(t *testing.T, tn *testNode, name, file string) {
	t.Helper()
	info, err := tn.analyst.AddDataset(t.Context(), &tandemv1.AddDatasetRequest{Name: name, File: file, Ids: psiIDs})
	if err != nil {
		t.Fatalf("%s: AddDataset(%s): %v", tn.name, name, err)
	}
	if info.Rows == 0 {
		t.Fatalf("%s: AddDataset(%s): got 0 rows", tn.name, name)
	}
}

// submitPSI submits a PSI job from the bank and returns its id.
func submitPSI(t *testing.T, bank *testNode, reveal string) string {
	t.Helper()
	js, err := bank.analyst.SubmitJob(t.Context(), &tandemv1.SubmitJobRequest{Kind: "psi", Peer: "partner-a",
		Psi: &tandemv1.PsiParams{Dataset: "customers", PeerDataset: "users", Reveal: reveal}})
	if err != nil {
		t.Fatalf("SubmitJob(psi %s): %v", reveal, err)
	}
	if js.State != stateAccepted {
		t.Fatalf("SubmitJob(psi %s): got state %q (reason %q), want accepted", reveal, js.State, js.Reason)
	}
	return js.Id
}

// psiResult waits for job id on tn to succeed and returns its result,
// decoded both as PSIJobResult and as a raw field map.
func psiResult(t *testing.T, tn *testNode, id string) (PSIJobResult, map[string]json.RawMessage) {
	t.Helper()
	js := finalJob(t, tn.analyst, id, 60*time.Second)
	if js.State != stateSucceeded {
		t.Fatalf("%s: psi job %s: got state %q (reason %q), want succeeded", tn.name, id, js.State, js.Reason)
	}
	var res PSIJobResult
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(js.ResultJson, &res); err != nil {
		t.Fatalf("%s: result %s: %v", tn.name, js.ResultJson, err)
	}
	if err := json.Unmarshal(js.ResultJson, &raw); err != nil {
		t.Fatalf("%s: result %s: %v", tn.name, js.ResultJson, err)
	}
	return res, raw
}

// readAlignment reads a node's alignment file for job id.
func readAlignment(t *testing.T, tn *testNode, id string) *psi.Alignment {
	t.Helper()
	f, err := os.Open(filepath.Join(tn.dir, "data", "jobs", id, "alignment.bin"))
	if err != nil {
		t.Fatalf("%s: alignment of %s: %v", tn.name, id, err)
	}
	defer f.Close()
	a, err := psi.ReadAlignment(f)
	if err != nil {
		t.Fatalf("%s: alignment of %s: %v", tn.name, id, err)
	}
	return a
}

// readCSV reads a whole CSV file.
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}

// TestPSIEndToEnd runs PSI between two real nodes on synthetic data in
// every reveal mode and checks the result against the generator's truth
// (a plain join on canonical identifiers).
func TestPSIEndToEnd(t *testing.T) {
	bank, partner, truth, pt := startPSIPair(t, 3000, 2000)
	ctx := t.Context()
	want := int64(pt.ByEither)
	t.Logf("truth: partner rows %d, shared %d, by phone %d, by id_no %d, by either %d", pt.Rows, pt.Shared, pt.ByPhone, pt.ByIDNo, pt.ByEither)

	t.Run("initiator", func(t *testing.T) {
		id := submitPSI(t, bank, "initiator")
		res, _ := psiResult(t, bank, id)
		if res.Intersection != want {
			t.Errorf("bank intersection: got %d, want %d (truth by_either)", res.Intersection, want)
		}
		if res.Length != uint64(pt.Rows) {
			t.Errorf("bank alignment length: got %d, want %d (partner rows)", res.Length, pt.Rows)
		}

		// The partner learns nothing about membership: no intersection in
		// its result, and its alignment maps every position.
		pres, raw := psiResult(t, partner, id)
		if _, ok := raw["intersection"]; ok {
			t.Errorf("partner result has an intersection field: %s", raw["intersection"])
		}
		if pres.Length != uint64(pt.Rows) {
			t.Errorf("partner alignment length: got %d, want %d", pres.Length, pt.Rows)
		}
		al := readAlignment(t, partner, id)
		if al.Length != uint64(pt.Rows) || al.Matched != al.Length || uint64(len(al.Positions)) != al.Length {
			t.Errorf("partner alignment: got L=%d M=%d pairs=%d, want L=M=pairs=%d", al.Length, al.Matched, len(al.Positions), pt.Rows)
		}
		rows := slices.Clone(al.Rows)
		slices.Sort(rows)
		for i, r := range rows {
			if r != uint64(i) {
				t.Errorf("partner alignment rows are not a permutation of 0..L-1 (sorted[%d] = %d)", i, r)
				break
			}
		}
		bal := readAlignment(t, bank, id)
		if bal.Matched != uint64(want) {
			t.Errorf("bank alignment matched: got %d, want %d", bal.Matched, want)
		}

		// Export: the bank's own matched rows, with only its id columns.
		out := filepath.Join(t.TempDir(), "matches.csv")
		er, err := bank.analyst.ExportMatches(ctx, &tandemv1.ExportMatchesRequest{JobId: id, Out: out})
		if err != nil {
			t.Fatalf("ExportMatches: %v", err)
		}
		if er.Rows != want {
			t.Errorf("ExportMatches rows: got %d, want %d", er.Rows, want)
		}
		recs := readCSV(t, out)
		if got := len(recs) - 1; got != int(want) {
			t.Errorf("export data rows: got %d, want %d", got, want)
		}
		if wantHdr := []string{"row", "phone", "id_no"}; !slices.Equal(recs[0], wantHdr) {
			t.Errorf("export header: got %v, want %v", recs[0], wantHdr)
		}
		// Every exported row is the bank's own row at that index.
		bankRecs := readCSV(t, truth.BankFile)
		seen := map[int]bool{}
		for _, r := range recs[1:] {
			i, err := strconv.Atoi(r[0])
			if err != nil || i < 0 || i+1 >= len(bankRecs) || seen[i] {
				t.Fatalf("export row index %q: invalid, out of range or repeated", r[0])
			}
			seen[i] = true
			if br := bankRecs[i+1]; br[1] != r[1] || br[2] != r[2] {
				t.Fatalf("export row %d: ids differ from bank.csv row %d", i, i)
			}
		}

		// The partner may not export in initiator mode.
		_, err = partner.analyst.ExportMatches(ctx, &tandemv1.ExportMatchesRequest{JobId: id, Out: filepath.Join(t.TempDir(), "p.csv")})
		if got := status.Code(err); got != codes.InvalidArgument {
			t.Errorf("partner ExportMatches: got %v (%v), want InvalidArgument", got, err)
		}
	})

	t.Run("both", func(t *testing.T) {
		id := submitPSI(t, bank, "both")
		for _, tn := range []*testNode{bank, partner} {
			res, _ := psiResult(t, tn, id)
			if res.Intersection != want {
				t.Errorf("%s intersection: got %d, want %d", tn.name, res.Intersection, want)
			}
			if res.Length != uint64(want) {
				t.Errorf("%s alignment length: got %d, want %d", tn.name, res.Length, want)
			}
			al := readAlignment(t, tn, id)
			if al.Matched != uint64(want) || al.Length != uint64(want) {
				t.Errorf("%s alignment: got L=%d M=%d, want both %d", tn.name, al.Length, al.Matched, want)
			}
		}
		// Both sides' alignments pair up the same positions.
		ab, ap := readAlignment(t, bank, id), readAlignment(t, partner, id)
		if !slices.Equal(ab.Positions, ap.Positions) {
			t.Errorf("alignment positions differ between bank and partner")
		}
		out := filepath.Join(t.TempDir(), "partner-matches.csv")
		er, err := partner.analyst.ExportMatches(ctx, &tandemv1.ExportMatchesRequest{JobId: id, Out: out})
		if err != nil {
			t.Fatalf("partner ExportMatches: %v", err)
		}
		if er.Rows != want {
			t.Errorf("partner ExportMatches rows: got %d, want %d", er.Rows, want)
		}
	})

	t.Run("count", func(t *testing.T) {
		id := submitPSI(t, bank, "count")
		res, _ := psiResult(t, bank, id)
		if res.Intersection != want {
			t.Errorf("bank intersection: got %d, want %d", res.Intersection, want)
		}
		if res.AlignmentFile != "" {
			t.Errorf("bank alignment file in count mode: got %q, want none", res.AlignmentFile)
		}
		if _, raw := psiResult(t, partner, id); raw["intersection"] != nil {
			t.Errorf("partner result in count mode has intersection %s", raw["intersection"])
		}
		_, err := bank.analyst.ExportMatches(ctx, &tandemv1.ExportMatchesRequest{JobId: id, Out: filepath.Join(t.TempDir(), "c.csv")})
		if got := status.Code(err); got != codes.InvalidArgument {
			t.Errorf("ExportMatches in count mode: got %v (%v), want InvalidArgument", got, err)
		}
	})
}

// gatedKind is a job kind whose initiator side blocks, with the job's
// Exchange stream open, until its context ends: it holds a job "running"
// on both nodes until the test stops the initiator's node.
type gatedKind struct {
	started chan struct{}
	once    sync.Once
}

func (g *gatedKind) initiate(ctx context.Context, _ *jobRun) (any, error) {
	g.once.Do(func() { close(g.started) })
	<-ctx.Done()
	return nil, ctx.Err()
}

func (g *gatedKind) respond(context.Context, *jobRun) (any, error) {
	return nil, errors.New("gatedKind: initiator only")
}

// TestPSIResumeAfterRestart stops the bank while a PSI job is running on
// both nodes and starts it again from the same home: the job resumes and
// ends with the intersection of an uninterrupted run (the generator's
// truth, as TestPSIEndToEnd checks). The first attempt is held at a
// deterministic point (stream open, no protocol message yet) by a gated
// job kind; TestPSIResumeMidProtocol interrupts mid-protocol instead.
func TestPSIResumeAfterRestart(t *testing.T) {
	bank, partner, _, pt := startPSIPair(t, 3000, 2000)
	want := int64(pt.ByEither)
	gate := &gatedKind{started: make(chan struct{})}
	// Swap the kind in before Run (so no goroutine races the write); the
	// node started again below has the real kind.
	bank.stop()
	bank.prepare = func(n *Node) { n.jobs.kinds["psi"] = gate }
	bank.start()
	bank.prepare = nil
	id := submitPSI(t, bank, "initiator")
	select {
	case <-gate.started:
	case <-time.After(20 * time.Second):
		t.Fatal("gated job did not start within 20s")
	}
	waitState(t, partner, id, stateRunning)
	bank.stop()
	interrupted(t, partner, id)

	bank.start()
	checkResumed(t, bank, partner, id, want)
}

// TestPSIResumeMidProtocol stops the bank while PSI messages are flowing
// and starts it again: the job resumes and ends with the right
// intersection.
func TestPSIResumeMidProtocol(t *testing.T) {
	bank, partner, _, pt := startPSIPair(t, 12000, 8000)
	ctx := t.Context()
	want := int64(pt.ByEither)
	id := submitPSI(t, bank, "initiator")

	// Interrupt mid-protocol: once the initiator has made progress, or has
	// been exchanging data for a moment (its first phase reports no
	// progress).
	var exchanging time.Time
	for deadline := time.Now().Add(30 * time.Second); ; {
		js, err := bank.analyst.GetJob(ctx, &tandemv1.GetJobRequest{Id: id})
		if err != nil {
			t.Fatalf("GetJob: %v", err)
		}
		if finalState(js.State) {
			t.Fatalf("job ended (%s) before it could be interrupted; enlarge the dataset", js.State)
		}
		if js.State == stateRunning && js.Phase != "connecting" && exchanging.IsZero() {
			exchanging = time.Now()
		}
		if !exchanging.IsZero() && (js.Progress > 0 || time.Since(exchanging) > 300*time.Millisecond) {
			t.Logf("stopping bank at phase %q, progress %.2f", js.Phase, js.Progress)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s (phase %q) after 30s", js.State, js.Phase)
		}
		time.Sleep(10 * time.Millisecond)
	}
	bank.stop()
	interrupted(t, partner, id)

	bank.start()
	checkResumed(t, bank, partner, id, want)
}

// waitState polls tn until job id is in state.
func waitState(t *testing.T, tn *testNode, id, state string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		js, err := tn.analyst.GetJob(t.Context(), &tandemv1.GetJobRequest{Id: id})
		if err == nil && js.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: job %s: got %v (err %v), want state %s within 20s", tn.name, id, js.GetState(), err, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// interrupted checks that the partner keeps an interrupted job open for
// the initiator to come back.
func interrupted(t *testing.T, partner *testNode, id string) {
	t.Helper()
	time.Sleep(100 * time.Millisecond) // let the partner see the stream break
	js, err := partner.analyst.GetJob(t.Context(), &tandemv1.GetJobRequest{Id: id})
	if err != nil {
		t.Fatalf("partner GetJob: %v", err)
	}
	if finalState(js.State) {
		t.Fatalf("partner job after the bank stopped: got state %q (reason %q), want it still open", js.State, js.Reason)
	}
}

// checkResumed waits for a resumed initiator-mode PSI job and checks its
// outcome on both nodes.
func checkResumed(t *testing.T, bank, partner *testNode, id string, want int64) {
	t.Helper()
	res, _ := psiResult(t, bank, id)
	if res.Intersection != want {
		t.Errorf("bank intersection after resume: got %d, want %d", res.Intersection, want)
	}
	if _, raw := psiResult(t, partner, id); raw["intersection"] != nil {
		t.Errorf("partner result has intersection %s in initiator mode", raw["intersection"])
	}
	for _, tn := range []*testNode{bank, partner} {
		rec, err := tn.n.jobs.get(id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Attempt < 2 {
			t.Errorf("%s: job attempts: got %d, want ≥ 2 (resumed)", tn.name, rec.Attempt)
		}
	}
	out := filepath.Join(t.TempDir(), "m.csv")
	er, err := bank.analyst.ExportMatches(t.Context(), &tandemv1.ExportMatchesRequest{JobId: id, Out: out})
	if err != nil {
		t.Fatalf("ExportMatches: %v", err)
	}
	if er.Rows != want {
		t.Errorf("ExportMatches rows after resume: got %d, want %d", er.Rows, want)
	}
}
