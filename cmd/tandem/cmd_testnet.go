package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tandem-dev/tandem/node"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
	"github.com/tandem-dev/tandem/testnet"
)

func cmdTestnet(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("testnet: want up, status or down")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("testnet "+sub, flag.ContinueOnError)
	dir := fs.String("dir", "", "testnet directory")
	nodes := fs.String("nodes", "bank,partner-a,partner-b", "node names; the first is the bank")
	rows := fs.Int("rows", 2000, "bank customers (partners get 80%)")
	fs.BoolVar(&g.json, "json", g.json, "JSON output")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("testnet %s: --dir is required", sub)
	}
	switch sub {
	case "up":
		st, err := testnet.Up(ctx, testnet.Options{Dir: *dir, Nodes: splitList(*nodes), Rows: *rows, Log: func(f string, a ...any) {
			if !g.json {
				fmt.Fprintf(g.stdout, "  "+f+"\n", a...)
			}
		}})
		if err != nil {
			return err
		}
		return g.emit(st, func(w io.Writer) { printTestnet(w, st, *dir) })
	case "status":
		st, err := testnet.Status(ctx, *dir)
		if err != nil {
			return err
		}
		return g.emit(st.Nodes, func(w io.Writer) { printTestnet(w, st, *dir) })
	case "down":
		if err := testnet.Down(*dir); err != nil {
			return err
		}
		if !g.json {
			fmt.Fprintln(g.stdout, "testnet stopped")
		}
		return nil
	}
	return fmt.Errorf("testnet: unknown subcommand %q", sub)
}

func printTestnet(w io.Writer, st *testnet.State, dir string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPID\tPEER\tCONTROL\tHEALTH\tHOME")
	for _, n := range st.Nodes {
		h := "ok"
		if !n.Healthy {
			h = "-"
			if n.Error != "" {
				h = n.Error
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", n.Name, n.PID, n.PeerAddr, n.ControlAddr, h, n.Home)
	}
	tw.Flush()
	if len(st.Nodes) > 0 {
		fmt.Fprintf(w, "\ntry: tandem --home %s peer list\n", filepath.Join(dir, st.Nodes[0].Name))
	}
}

// cmdDemo runs the whole flow built so far on a fresh local testnet and
// tears it down: pins and agreements, ping, PSI with every partner, a
// matched-row export, and offline verification of every node's audit log.
func cmdDemo(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	rows := fs.Int("rows", 5000, "bank customers")
	keep := fs.String("keep", "", "keep the testnet in this directory (running) instead of a temporary one")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	dir := *keep
	if dir == "" {
		tmp, err := os.MkdirTemp("", "tandem-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	out := g.stdout
	step := func(f string, a ...any) { fmt.Fprintf(out, "\n== "+f+"\n", a...) }
	step("1. testnet: bank + two partners as separate processes on loopback (%s)", dir)
	st, err := testnet.Up(ctx, testnet.Options{Dir: dir, Rows: *rows, Log: func(f string, a ...any) { fmt.Fprintf(out, "   "+f+"\n", a...) }})
	if err != nil {
		return err
	}
	if *keep == "" {
		defer func() {
			testnet.Down(dir)
			fmt.Fprintln(out, "\n== testnet stopped; no node process left")
		}()
	}
	bank := st.Nodes[0]
	bc, err := node.DialHome(bank.Home, "admin")
	if err != nil {
		return err
	}
	defer bc.Close()

	step("2. ping: signed round trips bank ↔ each partner")
	for _, p := range st.Nodes[1:] {
		j, err := runJob(ctx, bc, &tandemv1.SubmitJobRequest{Kind: "ping", Peer: p.Name, Ping: &tandemv1.PingParams{Rounds: 5}})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "   %s → %s: %s %s\n", bank.Name, p.Name, j.State, j.ResultJson)
	}

	step("3. private set intersection (ECDH on curve25519/ristretto255, initiator learns its matched rows)")
	fmt.Fprintf(out, "   %-10s %9s %9s %12s %12s %10s %8s\n", "partner", "bank ids", "partner", "intersection", "truth", "wire KiB", "seconds")
	var firstPSI string
	for i, p := range st.Nodes[1:] {
		t0 := time.Now()
		j, err := runJob(ctx, bc, &tandemv1.SubmitJobRequest{Kind: "psi", Peer: p.Name, Psi: &tandemv1.PsiParams{Dataset: "customers", PeerDataset: "users", Reveal: "initiator"}})
		if err != nil {
			return err
		}
		var r node.PSIJobResult
		json.Unmarshal(j.ResultJson, &r)
		truth := st.Truth.Partners[i].ByEither
		fmt.Fprintf(out, "   %-10s %9d %9d %12d %12d %10.0f %8.1f\n", p.Name, r.InitiatorElements, r.ResponderRows, r.Intersection, truth, float64(r.BytesSent)/1024, time.Since(t0).Seconds())
		if r.Intersection != int64(truth) {
			return fmt.Errorf("demo: PSI with %s found %d shared customers, the generator planted %d", p.Name, r.Intersection, truth)
		}
		if firstPSI == "" {
			firstPSI = j.Id
		}
		// The same co-signed receipt sits on both nodes.
		pc, err := node.DialHome(p.Home, "compliance")
		if err != nil {
			return err
		}
		pj, err := pc.GetJob(ctx, &tandemv1.GetJobRequest{Id: j.Id})
		pc.Close()
		if err != nil {
			return rpcErr(err)
		}
		bankR, partnerR := receiptOf(j), receiptOf(pj)
		if bankR.Digest == "" || bankR != partnerR || bankR.Signatures != 2 {
			return fmt.Errorf("demo: receipts differ or are not co-signed: bank %+v, %s %+v", bankR, p.Name, partnerR)
		}
		fmt.Fprintf(out, "   %-10s receipt %s… signed by both nodes, identical on both\n", "", bankR.Digest[:23])
	}
	matched := filepath.Join(dir, "matched.csv")
	ex, err := bc.ExportMatches(ctx, &tandemv1.ExportMatchesRequest{JobId: firstPSI, Out: matched})
	if err != nil {
		return rpcErr(err)
	}
	fmt.Fprintf(out, "   exported the bank's own %d matched rows (its ids and row keys only) to matched.csv\n", ex.Rows)

	step("4. statistics under homomorphic encryption (BGV, collective keys; the partner's policy approves every release)")
	spec := `group_by: has_card
statistics:
  - {column: monthly_spend, kinds: [count, mean, variance]}
  - {column: monthly_spend, kinds: [woe_iv], bins: [500, 1000, 2000, 5000]}
  - {column: category, kinds: [crosstab]}
`
	t0 := time.Now()
	sj, err := runJob(ctx, bc, &tandemv1.SubmitJobRequest{Kind: "stats", Peer: st.Nodes[1].Name, Stats: &tandemv1.StatsParams{PsiJobId: firstPSI, SpecYaml: []byte(spec)}})
	if err != nil {
		return err
	}
	var sr struct {
		Statistics *protocol.StatsResult `json:"statistics"`
	}
	if err := json.Unmarshal(sj.ResultJson, &sr); err != nil || sr.Statistics == nil {
		return fmt.Errorf("demo: stats result: %v", err)
	}
	fmt.Fprintf(out, "   over the %d customers shared with %s, by the bank's has_card label (%.1fs):\n", sr.Statistics.Matched, st.Nodes[1].Name, time.Since(t0).Seconds())
	for _, c := range sr.Statistics.Cells {
		if c.Value == nil || c.Bin != "" || c.Statistic == "crosstab" {
			continue
		}
		fmt.Fprintf(out, "   %-14s %-9s group=%-5s %12.4f  (rows %d)\n", c.Column, c.Statistic, c.Group, *c.Value, c.Rows)
	}

	step("5. joint model: vertical logistic regression (bank label and features, partner features; each side keeps its own weights)")
	model := `label: has_card
bank_features: [income, age, tenure_months]
partner_features: [monthly_spend, orders_90d, category]
epochs: 40
l2: 0.001
validation_fraction: 0.2
seed: 7
validation_auc: true
`
	t0 = time.Now()
	tj, err := runJob(ctx, bc, &tandemv1.SubmitJobRequest{Kind: "train", Peer: st.Nodes[1].Name, Train: &tandemv1.TrainParams{PsiJobId: firstPSI, SpecYaml: []byte(model)}})
	if err != nil {
		return err
	}
	var tr node.TrainJobResult
	if err := json.Unmarshal(tj.ResultJson, &tr); err != nil {
		return fmt.Errorf("demo: train result: %v", err)
	}
	var first, last, firstAUC, lastAUC float64
	for _, m := range tr.Metrics {
		if m.ValLoss != nil {
			if first == 0 {
				first = *m.ValLoss
			}
			last = *m.ValLoss
		}
		if m.ValAUC != nil {
			if firstAUC == 0 {
				firstAUC = *m.ValAUC
			}
			lastAUC = *m.ValAUC
		}
	}
	fmt.Fprintf(out, "   model %s: %d epochs (%s), validation log-loss %.4f → %.4f, validation AUC %.4f → %.4f\n",
		tr.ModelID, tr.Epochs, tr.Stopped, first, last, firstAUC, lastAUC)
	fmt.Fprintf(out, "   %d gradient releases, %.1f MB sent by the bank, %.1fs\n", tr.Releases, float64(tr.BytesSent)/1e6, time.Since(t0).Seconds())
	mi, err := bc.GetModel(ctx, &tandemv1.GetModelRequest{Id: tr.ModelID})
	if err != nil {
		return err
	}
	var md modelDoc
	if err := json.Unmarshal(mi.ModelJson, &md); err != nil {
		return fmt.Errorf("demo: model: %v", err)
	}
	fmt.Fprintf(out, "   partner features as trained (its categorical column expanded into indicators by the partner): %s\n", strings.Join(md.Card.PartnerFeatures, ", "))

	step("6. federated scoring: the bank scores its shared customers (the partner's part arrives only for them, under encryption)")
	t0 = time.Now()
	scj, err := runJob(ctx, bc, &tandemv1.SubmitJobRequest{Kind: "score", Peer: st.Nodes[1].Name, Score: &tandemv1.ScoreParams{PsiJobId: firstPSI, ModelId: tr.ModelID, Bands: 5}})
	if err != nil {
		return err
	}
	var scr node.ScoreJobResult
	if err := json.Unmarshal(scj.ResultJson, &scr); err != nil {
		return fmt.Errorf("demo: score result: %v", err)
	}
	fmt.Fprintf(out, "   %d customers scored in %.2fs, %.1f MB sent by the bank; scores with the bank's row keys in %s\n",
		scr.Scored, time.Since(t0).Seconds(), float64(scr.BytesSent)/1e6, scr.Output)
	if *keep == "" {
		fmt.Fprintln(out, "   (the temporary testnet is removed at the end; `tandem demo --keep DIR` keeps it running)")
	}
	for _, b := range scr.Bands {
		fmt.Fprintf(out, "   band %d: %5d customers, score %.3f–%.3f\n", b.Band, b.Rows, b.MinScore, b.MaxScore)
	}
	if scr.ValidationAUC != nil {
		fmt.Fprintf(out, "   validation AUC (the %d held-out customers): %.4f\n", scr.ValidationN, *scr.ValidationAUC)
	}
	aSplit, aPlain, nAUC, err := testnet.BaselineAUC(st.Truth.BankFile, st.Truth.Partners[0].File, scr.Output, "has_card",
		md.Card.BankFeatures, md.Card.PartnerFeatures, 0.001)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   AUC over all %d labelled shared customers: split model %.4f (trained on the %d not held out), plaintext logistic regression fitted on all of them %.4f (Δ %+.4f)\n",
		nAUC, aSplit, nAUC-scr.ValidationN, aPlain, aSplit-aPlain)
	fmt.Fprintln(out, "   (the baseline joins both nodes' files in the clear, which only this local testnet can do)")

	if err := demoBandsOnly(ctx, out, bc, st.Nodes[1].Name, firstPSI, tr.ModelID, &scr); err != nil {
		return err
	}

	step("8. audit: export every node's logs and verify them offline with public keys only")
	for _, n := range st.Nodes {
		c, err := node.DialHome(n.Home, "compliance")
		if err != nil {
			return err
		}
		bdir := filepath.Join(dir, "audit-"+n.Name)
		resp, err := c.AuditExport(ctx, &tandemv1.AuditExportRequest{Out: bdir})
		c.Close()
		if err != nil {
			return rpcErr(err)
		}
		os.WriteFile(filepath.Join(bdir, "verifier.key"), []byte(resp.VerifierKey+"\n"), 0o644)
		vg := *g
		vg.json = false
		var buf jsonDiscard
		vg.stdout, vg.stderr = &buf, &buf
		if err := auditVerify(&vg, []string{"--dir", bdir, "--pubkey", resp.VerifierKey}); err != nil {
			return fmt.Errorf("demo: audit verify %s: %w", n.Name, err)
		}
		fmt.Fprintf(out, "   %-10s %d logs verified\n", n.Name, len(resp.Dirs))
	}
	fmt.Fprintln(out, "\n== demo complete")
	return nil
}

// demoBandsOnly is step 7: the same customers scored again, bands only,
// with the edges between step 6's equal-count bands; each customer's band
// is checked against the band its step-6 score falls in.
func demoBandsOnly(ctx context.Context, out io.Writer, bc *node.Client, peer, psiJob, modelID string, scr *node.ScoreJobResult) error {
	fmt.Fprintf(out, "\n== 7. bands-only scoring: the bank learns each shared customer's band and no score (oblivious comparisons of the partner's share with the band edges)\n")
	var edges []float64 // ascending: between band b+1 (lower) and band b
	for b := len(scr.Bands) - 1; b > 0; b-- {
		edges = append(edges, (scr.Bands[b].MaxScore+scr.Bands[b-1].MinScore)/2)
	}
	t0 := time.Now()
	j, err := runJob(ctx, bc, &tandemv1.SubmitJobRequest{Kind: "score", Peer: peer, Score: &tandemv1.ScoreParams{
		PsiJobId: psiJob, ModelId: modelID, Bands: int32(len(edges) + 1), BandsOnly: true, BandEdges: edges}})
	if err != nil {
		return err
	}
	var br node.ScoreJobResult
	if err := json.Unmarshal(j.ResultJson, &br); err != nil {
		return fmt.Errorf("demo: bands-only result: %v", err)
	}
	fmt.Fprintf(out, "   %d customers banded in %.2fs, %.1f MB sent by the bank; bands with the bank's row keys in %s\n",
		br.Scored, time.Since(t0).Seconds(), float64(br.BytesSent)/1e6, br.Output)
	for _, b := range br.Bands {
		closing := ")"
		if b.MaxScore == 1 {
			closing = "]"
		}
		fmt.Fprintf(out, "   band %d: %5d customers, score in [%.3f, %.3f%s\n", b.Band, b.Rows, b.MinScore, b.MaxScore, closing)
	}
	scores, err := csvColumn(scr.Output, "score")
	if err != nil {
		return err
	}
	bandOf, err := csvColumn(br.Output, "band")
	if err != nil {
		return err
	}
	same, n := 0, 0
	for row, s := range scores {
		want := len(edges) + 1
		for _, e := range edges {
			if s >= e {
				want--
			}
		}
		if b, ok := bandOf[row]; ok {
			n++
			if int(b) == want {
				same++
			}
		}
	}
	fmt.Fprintf(out, "   %d of %d customers in the band their step-6 score falls in (the comparisons resolve 2^-10 logit)\n", same, n)
	return nil
}

// csvColumn reads column name of a CSV with a "row" column: row → value.
func csvColumn(path, name string) (map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, fmt.Errorf("demo: %s: %v", path, err)
	}
	iRow, iCol := slices.Index(recs[0], "row"), slices.Index(recs[0], name)
	if iRow < 0 || iCol < 0 {
		return nil, fmt.Errorf("demo: %s: no row or %s column in %v", path, name, recs[0])
	}
	m := make(map[string]float64, len(recs)-1)
	for _, r := range recs[1:] {
		if v, err := strconv.ParseFloat(r[iCol], 64); err == nil {
			m[r[iRow]] = v
		}
	}
	return m, nil
}

func receiptOf(j *tandemv1.JobState) node.ReceiptInfo {
	var r struct{ Receipt node.ReceiptInfo }
	json.Unmarshal(j.ResultJson, &r)
	return r.Receipt
}

type jsonDiscard struct{}

func (*jsonDiscard) Write(p []byte) (int, error) { return len(p), nil }

// runJob submits a job and waits for its final state.
func runJob(ctx context.Context, c *node.Client, req *tandemv1.SubmitJobRequest) (*tandemv1.JobState, error) {
	j, err := c.SubmitJob(ctx, req)
	if err != nil {
		return nil, rpcErr(err)
	}
	stream, err := c.WatchJob(ctx, &tandemv1.GetJobRequest{Id: j.Id})
	if err != nil {
		return nil, rpcErr(err)
	}
	for {
		s, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, rpcErr(err)
		}
		j = s
	}
	if j.State != "succeeded" {
		return j, fmt.Errorf("job %s (%s with %s) %s: %s", j.Id, j.Kind, j.Peer, j.State, j.Reason)
	}
	return j, nil
}
