package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/node"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/psi"
	"github.com/tandem-dev/tandem/testnet"
)

// BenchmarkPSILoopback runs a PSI job between two real node processes on
// loopback (bank n rows, partner n rows, two id columns each) and, in the
// same run, times the raw kernel of the suite on one core. It reports per
// party: CPU µs per identifier (from /proc), the kernel limit, their ratio,
// payload bytes on the wire per element pair, and peak RSS per node.
//
//	TANDEM_BENCH_N=1e6 go test -run '^$' -bench PSILoopback -benchtime 1x -timeout 60m ./cmd/tandem/
func BenchmarkPSILoopback(b *testing.B) {
	n := benchRows(b)
	b.Run(fmt.Sprintf("n=%.0e", float64(n)), func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			benchPSIOnce(b, n)
		}
	})
}

// benchRows is the rows per side of the loopback benchmarks:
// TANDEM_BENCH_N (e.g. 1e6), default 1e5.
func benchRows(b *testing.B) int { return envInt(b, "TANDEM_BENCH_N", 100000) }

// envInt reads the environment variable name as a number (1e6 allowed),
// def when it is not set.
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return int(f)
}

// benchPair starts a testnet of a bank and one partner with n rows each;
// the caller defers stop.
// partnerResult decodes the second node's result of job id into v.
func partnerResult(b *testing.B, st *testnet.State, id string, v any) {
	b.Helper()
	pc, err := node.DialHome(st.Nodes[1].Home, "admin")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	j, err := pc.GetJob(context.Background(), &tandemv1.GetJobRequest{Id: id})
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(j.ResultJson, v); err != nil {
		b.Fatalf("partner's result of %s: %v", id, err)
	}
}

func benchPair(b *testing.B, n int) (st *testnet.State, stop func()) {
	dir := b.TempDir()
	st, err := testnet.Up(context.Background(), testnet.Options{Dir: dir, Nodes: []string{"bank", "partner-a"}, Rows: n, PartnerRows: n})
	if err != nil {
		b.Fatal(err)
	}
	return st, func() { testnet.Down(dir) }
}

func benchPSIOnce(b *testing.B, n int) {
	ctx := context.Background()
	st, stop := benchPair(b, n)
	defer stop()
	bank := st.Nodes[0]
	c, err := node.DialHome(bank.Home, "admin")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	// Peak RSS is measured over the PSI job only: reset VmHWM (Linux ≥ 4.0)
	// after dataset registration.
	for _, nd := range st.Nodes {
		os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", nd.PID), []byte("5"), 0)
	}
	cpu0 := [2]float64{cpuSeconds(st.Nodes[0].PID), cpuSeconds(st.Nodes[1].PID)}
	start := time.Now()
	j, err := runJob(ctx, c, &tandemv1.SubmitJobRequest{Kind: "psi", Peer: "partner-a", Psi: &tandemv1.PsiParams{Dataset: "customers", PeerDataset: "users"}})
	if err != nil {
		b.Fatal(err)
	}
	wall := time.Since(start).Seconds()
	cpu := [2]float64{cpuSeconds(st.Nodes[0].PID) - cpu0[0], cpuSeconds(st.Nodes[1].PID) - cpu0[1]}
	var r node.PSIJobResult
	json.Unmarshal(j.ResultJson, &r)
	var pr node.PSIJobResult
	partnerResult(b, st, j.Id, &pr)
	if r.Intersection != int64(st.Truth.Partners[0].ByEither) {
		b.Fatalf("intersection %d, want %d", r.Intersection, st.Truth.Partners[0].ByEither)
	}
	elemsBank, elemsPartner := float64(r.InitiatorElements), float64(r.ResponderElements)
	kernel := kernelPerElement(b, 20000)
	perBank := cpu[0] * 1e6 / elemsBank
	perPartner := cpu[1] * 1e6 / elemsPartner
	b.ReportMetric(wall, "wall-s")
	b.ReportMetric(perBank, "bank-µs·core/elem")
	b.ReportMetric(perPartner, "partner-µs·core/elem")
	b.ReportMetric(kernel, "kernel-µs·core/elem")
	b.ReportMetric(max(perBank, perPartner)/kernel, "ratio-to-kernel")
	b.ReportMetric(float64(r.BytesSent+pr.BytesSent)/max(elemsBank, elemsPartner), "wire-B/pair")
	b.ReportMetric(rssBytes(st.Nodes[0].PID)/float64(n), "bank-RSS-B/row")
	b.ReportMetric(rssBytes(st.Nodes[1].PID)/float64(n), "partner-RSS-B/row")
	b.Logf("n=%d bank ids=%.0f partner slots=%.0f intersection=%d wall=%.1fs cpu bank=%.1fs partner=%.1fs peak RSS bank=%.0f MB partner=%.0f MB",
		n, elemsBank, elemsPartner, r.Intersection, wall, cpu[0], cpu[1], rssBytes(st.Nodes[0].PID)/1e6, rssBytes(st.Nodes[1].PID)/1e6)
}

// kernelPerElement is the primitive limit of one party per identifier on
// one core: hash-to-group + blind its own id, and re-blind one peer element
// (decode, scalar multiplication, encode).
func kernelPerElement(b *testing.B, n int) float64 {
	s := psi.FastSuite()
	ids := make([][]byte, n)
	for i := range ids {
		ids[i] = fmt.Appendf(nil, "+8613%09d", i)
	}
	k, _ := psi.GenerateKey(rand.Reader)
	defer k.Zero()
	e := make([]byte, n*s.ElementSize())
	start := time.Now()
	s.HashMask(k, []byte("bench"), ids, e, 1)
	if err := s.Remask(k, e, e, 1); err != nil {
		b.Fatal(err)
	}
	return time.Since(start).Seconds() * 1e6 / float64(n)
}

// cpuSeconds is a process's user+system CPU time from /proc/<pid>/stat.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// rssBytes is a process's peak resident set (VmHWM).
func rssBytes(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkTrainLoopback: a training job between two node processes on
// loopback (gRPC, mutual TLS, policy, audit), on the testnet's synthetic
// data with n rows per side (TANDEM_BENCH_N, default 1e5): a PSI job, a
// 1-epoch warm-up train job, then two train jobs of 2 and 6 epochs over its alignment (bank: 3 features,
// partner: 2 numeric + 1 categorical column of 7 indicators). Per epoch =
// the difference of the two jobs' wall times over 4 epochs (the set-up,
// keys, standardisation, step caps and the one-off column encoding,
// cancels); CPU-seconds (both node processes) and wire MB per epoch
// likewise; peak RSS of each node over the two train jobs.
func BenchmarkTrainLoopback(b *testing.B) {
	benchLoopback(b, benchTrainOnce)
}

// benchLoopback runs once(n) b.N times, n = TANDEM_BENCH_N, after a PSI
// job in the mode TANDEM_BENCH_REVEAL (initiator by default; both: the
// alignment is the intersection, every position a shared customer).
func benchLoopback(b *testing.B, once func(b *testing.B, st *testnet.State, c *node.Client, psiJob *tandemv1.JobState)) {
	n := benchRows(b)
	b.Run(fmt.Sprintf("n=%.0e", float64(n)), func(b *testing.B) {
		for range b.N {
			st, stop := benchPair(b, n)
			c, err := node.DialHome(st.Nodes[0].Home, "admin")
			if err != nil {
				stop()
				b.Fatal(err)
			}
			pj, err := runJob(context.Background(), c, &tandemv1.SubmitJobRequest{Kind: "psi", Peer: "partner-a",
				Psi: &tandemv1.PsiParams{Dataset: "customers", PeerDataset: "users", Reveal: os.Getenv("TANDEM_BENCH_REVEAL")}})
			if err == nil {
				once(b, st, c, pj)
			}
			c.Close()
			stop()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchTrainOnce(b *testing.B, st *testnet.State, c *node.Client, pj *tandemv1.JobState) {
	ctx := context.Background()
	n := benchRows(b)
	var psiRes node.PSIJobResult
	json.Unmarshal(pj.ResultJson, &psiRes)
	// Peak RSS over the train jobs only: reset VmHWM after the PSI job.
	for _, nd := range st.Nodes {
		os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", nd.PID), []byte("5"), 0)
	}
	cpu := func() float64 { return cpuSeconds(st.Nodes[0].PID) + cpuSeconds(st.Nodes[1].PID) }
	var epochSecs []float64 // the bank's epochs 2… of the last job (the first holds the set-up)
	train := func(epochs int) (float64, float64) {
		spec := fmt.Sprintf("label: has_card\nbank_features: [income, age, tenure_months]\npartner_features: [monthly_spend, orders_90d, category]\nepochs: %d\nl2: 0.001\nvalidation_fraction: 0.2\nseed: 7\n", epochs)
		t0 := time.Now()
		j, err := runJob(ctx, c, &tandemv1.SubmitJobRequest{Kind: "train", Peer: "partner-a", Train: &tandemv1.TrainParams{PsiJobId: pj.Id, SpecYaml: []byte(spec)}})
		if err != nil {
			b.Fatal(err)
		}
		wall := time.Since(t0).Seconds()
		var r node.TrainJobResult
		json.Unmarshal(j.ResultJson, &r)
		if r.Epochs != epochs || len(r.Metrics) != epochs {
			b.Fatalf("%d epochs (%d metrics), want %d", r.Epochs, len(r.Metrics), epochs)
		}
		epochSecs = epochSecs[:0]
		for _, m := range r.Metrics[1:] {
			epochSecs = append(epochSecs, m.Seconds)
		}
		var pr node.TrainJobResult
		partnerResult(b, st, j.Id, &pr)
		return wall, float64(r.BytesSent + pr.BytesSent)
	}
	// A first, 1-epoch job: both measured jobs then run in node processes
	// that have trained before (the Go heap at its working size).
	train(1)
	c0 := cpu()
	w2, b2 := train(2)
	c2 := cpu()
	w6, b6 := train(6)
	c6 := cpu()
	b.ReportMetric((w6-w2)/4, "s/epoch")
	slices.Sort(epochSecs)
	b.ReportMetric(epochSecs[len(epochSecs)/2], "median-epoch-s") // timed inside the 6-epoch job
	b.ReportMetric(epochSecs[0], "min-epoch-s")
	b.ReportMetric(((c6-c2)-(c2-c0))/4, "cpu-s/epoch")
	b.ReportMetric(w2-2*(w6-w2)/4, "setup-s")
	b.ReportMetric((b6-b2)/4/1e6, "MB/epoch")
	b.ReportMetric(rssBytes(st.Nodes[0].PID)/1e6, "bank-peak-RSS-MB")
	b.ReportMetric(rssBytes(st.Nodes[1].PID)/1e6, "partner-peak-RSS-MB")
	b.Logf("n=%d rows per side, intersection %d: 2 epochs %.1fs, 6 epochs %.1fs; epochs 2-6 of the last, on the bank: %.3f s", n, psiRes.Intersection, w2, w6, epochSecs)
}

// BenchmarkScoreLoopback: score jobs between two node processes on
// loopback, on the testnet's synthetic data with n rows per side
// (TANDEM_BENCH_N, default 1e5): a PSI job and a 2-epoch train job set up
// a model, then one score job that gives the bank scores (10 equal-count
// bands) and one bands-only job (10 bands, the bank learns bands only).
// Per job: wall time, scored rows/s and aligned positions/s (every
// position costs the same: the partner cannot tell which are scored),
// CPU-seconds of both processes, MB on the wire. TANDEM_BENCH_SCORE_RUNS
// (default 1) repeats each job on the same PSI job and model: the figures
// are then the median run's, and every run is logged.
func BenchmarkScoreLoopback(b *testing.B) {
	benchLoopback(b, benchScoreOnce)
}

func benchScoreOnce(b *testing.B, st *testnet.State, c *node.Client, pj *tandemv1.JobState) {
	ctx := context.Background()
	spec := "label: has_card\nbank_features: [income, age, tenure_months]\npartner_features: [monthly_spend, orders_90d, category]\nepochs: 2\nl2: 0.001\nvalidation_fraction: 0.2\nseed: 7\n"
	tj, err := runJob(ctx, c, &tandemv1.SubmitJobRequest{Kind: "train", Peer: "partner-a", Train: &tandemv1.TrainParams{PsiJobId: pj.Id, SpecYaml: []byte(spec)}})
	if err != nil {
		b.Fatal(err)
	}
	var tr node.TrainJobResult
	json.Unmarshal(tj.ResultJson, &tr)
	cpu := func() float64 { return cpuSeconds(st.Nodes[0].PID) + cpuSeconds(st.Nodes[1].PID) }
	for _, mode := range []struct {
		name string
		p    *tandemv1.ScoreParams
	}{
		{"scores", &tandemv1.ScoreParams{Bands: 10}},
		{"bands-only", &tandemv1.ScoreParams{Bands: 10, BandsOnly: true}},
	} {
		mode.p.PsiJobId, mode.p.ModelId = pj.Id, tr.ModelID
		type run struct {
			wall, cpus float64
			r, pr      node.ScoreJobResult
		}
		var runs []run
		for range envInt(b, "TANDEM_BENCH_SCORE_RUNS", 1) {
			c0, t0 := cpu(), time.Now()
			j, err := runJob(ctx, c, &tandemv1.SubmitJobRequest{Kind: "score", Peer: "partner-a", Score: mode.p})
			if err != nil {
				b.Fatal(err)
			}
			x := run{wall: time.Since(t0).Seconds(), cpus: cpu() - c0}
			json.Unmarshal(j.ResultJson, &x.r)
			partnerResult(b, st, j.Id, &x.pr)
			if x.r.Scored == 0 || x.r.BandsOnly != mode.p.BandsOnly {
				b.Fatalf("%s: %s", mode.name, j.ResultJson)
			}
			b.Logf("%s: %d of %d positions scored in %.2fs, %.2f CPU-s", mode.name, x.r.Scored, x.r.Length, x.wall, x.cpus)
			runs = append(runs, x)
		}
		slices.SortFunc(runs, func(a, b run) int { return cmp.Compare(a.wall, b.wall) })
		x := runs[len(runs)/2]
		wall, cpus, r, pr := x.wall, x.cpus, x.r, x.pr
		b.ReportMetric(wall, mode.name+"-s")
		b.ReportMetric(float64(r.Scored)/wall, mode.name+"-rows/s")
		b.ReportMetric(float64(r.Length)/wall, mode.name+"-positions/s")
		b.ReportMetric(cpus, mode.name+"-cpu-s")
		b.ReportMetric(float64(r.BytesSent+pr.BytesSent)/1e6, mode.name+"-MB")
	}
}
