package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"encoding/json"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/tandem-dev/tandem/node"
	"github.com/tandem-dev/tandem/testnet"
)

// The test binary doubles as the tandem binary: with TANDEM_TEST_MAIN=1 it
// runs main, so multi-node tests start real node processes from it.
func TestMain(m *testing.M) {
	if os.Getenv("TANDEM_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Setenv("TANDEM_TEST_MAIN", "1")
	os.Exit(m.Run())
}

// tandem runs the CLI as a separate process and returns stdout, stderr and
// the exit code.
func tandem(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestTestnetEndToEnd brings up a three-node testnet of real processes and
// checks the operator surface of issue 2: reflection lists ControlService,
// an unpinned TLS client is refused on the peer port, CLI jobs run, bad
// input gets clear errors and exit codes, and `testnet down` leaves no
// process behind.
func TestTestnetEndToEnd(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := tandem(t, "testnet", "up", "--dir", dir, "--rows", "1500")
	if code != 0 {
		t.Fatalf("testnet up: exit %d\n%s\n%s", code, out, errOut)
	}
	st, err := testnet.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, e, c := tandem(t, "testnet", "down", "--dir", dir); c != 0 {
			t.Errorf("testnet down: exit %d: %s", c, e)
		}
		for _, n := range st.Nodes {
			if syscall.Kill(n.PID, 0) == nil && !isZombie(n.PID) {
				t.Errorf("node %s (pid %d) still running after testnet down", n.Name, n.PID)
			}
		}
	}()
	bank := filepath.Join(dir, "bank")

	t.Run("status", func(t *testing.T) {
		out, _, code := tandem(t, "testnet", "status", "--dir", dir, "--json")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		var nodes []testnet.Node
		if err := json.Unmarshal([]byte(out), &nodes); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if !n.Healthy {
				t.Errorf("node %s not healthy: %s", n.Name, n.Error)
			}
		}
	})

	t.Run("reflection", func(t *testing.T) {
		conn, err := grpc.NewClient(st.Nodes[0].ControlAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.Name)
		}
		if !strings.Contains(strings.Join(names, " "), "tandem.v1.ControlService") {
			t.Fatalf("reflection lists %v, want tandem.v1.ControlService", names)
		}
	})

	t.Run("unpinned-tls-refused", func(t *testing.T) {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
		conn, err := tls.Dial("tcp", st.Nodes[0].PeerAddr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13,
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}}})
		if err == nil {
			// TLS 1.3: the server's verdict on our certificate arrives with
			// the first read.
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "bad certificate") && !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("unpinned client: got %v, want a TLS certificate alert", err)
		}
	})

	t.Run("ping-and-psi", func(t *testing.T) {
		if out, e, code := tandem(t, "--home", bank, "ping", "--peer", "partner-a", "--wait"); code != 0 {
			t.Fatalf("ping: exit %d\n%s%s", code, out, e)
		}
		out, e, code := tandem(t, "--home", bank, "--json", "psi", "--peer", "partner-b", "--dataset", "customers", "--peer-dataset", "users", "--reveal", "count", "--wait")
		if code != 0 {
			t.Fatalf("psi: exit %d\n%s%s", code, out, e)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var last struct {
			State  string
			Result struct{ Intersection int64 }
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
			t.Fatalf("last JSON line %q: %v", lines[len(lines)-1], err)
		}
		if want := int64(st.Truth.Partners[1].ByEither); last.State != "succeeded" || last.Result.Intersection != want {
			t.Fatalf("psi count: got %s/%d, want succeeded/%d", last.State, last.Result.Intersection, want)
		}
	})

	// The CLI end to end for a bands-only score: PSI, a short train job,
	// then `score --bands-only` between real processes; bands.csv holds
	// the bank's matched rows with a band and no score.
	t.Run("train-and-score-bands-only", func(t *testing.T) {
		var psiJob struct {
			ID     string
			State  string
			Result struct{ Intersection int64 }
		}
		runJSON(t, &psiJob, "--home", bank, "--json", "psi", "--peer", "partner-a", "--dataset", "customers", "--peer-dataset", "users", "--wait")
		spec := filepath.Join(t.TempDir(), "model.yaml")
		os.WriteFile(spec, []byte("label: has_card\nbank_features: [income, age]\npartner_features: [monthly_spend, category]\nepochs: 3\nl2: 0.001\nseed: 7\n"), 0o600)
		var train struct {
			State  string
			Result struct {
				ModelID string `json:"model_id"`
			}
		}
		runJSON(t, &train, "--home", bank, "--json", "train", "--psi-job", psiJob.ID, "--spec", spec, "--wait")
		var score struct {
			State  string
			Result node.ScoreJobResult
		}
		runJSON(t, &score, "--home", bank, "--json", "score", "--model", train.Result.ModelID, "--psi-job", psiJob.ID,
			"--bands", "4", "--bands-only", "--band-edges", "0.2,0.4,0.6", "--wait")
		r := score.Result
		if psiJob.State != "succeeded" || train.State != "succeeded" || score.State != "succeeded" || !r.BandsOnly ||
			r.Scored != int(psiJob.Result.Intersection) || len(r.Bands) != 4 {
			t.Fatalf("psi %+v, train %+v, score %+v", psiJob, train, score)
		}
		f, err := os.Open(r.Output)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		recs, err := csv.NewReader(f).ReadAll()
		if err != nil || len(recs) != r.Scored+1 || recs[0][len(recs[0])-1] != "band" || slices.Contains(recs[0], "score") {
			t.Fatalf("bands.csv: %d lines, header %v, %v", len(recs), recs[0], err)
		}
		counts := map[string]int{}
		for _, rec := range recs[1:] {
			counts[rec[len(rec)-1]]++
		}
		for _, b := range r.Bands {
			if counts[strconv.Itoa(b.Band)] != b.Rows {
				t.Errorf("band %d: %d rows in bands.csv, %d in the result", b.Band, counts[strconv.Itoa(b.Band)], b.Rows)
			}
		}
	})

	t.Run("bad-input", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			args     []string
			wantCode int
			wantErr  string
		}{
			{"wrong-role", []string{"--home", bank, "--role", "marketing", "ping", "--peer", "partner-a"}, 1, "PermissionDenied"},
			{"unknown-peer", []string{"--home", bank, "ping", "--peer", "nobody"}, 1, "unknown peer"},
			{"missing-file", []string{"--home", bank, "dataset", "add", "--name", "x", "--file", filepath.Join(dir, "nope.csv"), "--id", "phone:cn_mobile"}, 1, "nope.csv"},
			{"bad-kind", []string{"--home", bank, "dataset", "add", "--name", "x", "--file", st.Truth.BankFile, "--id", "phone:passport"}, 1, "passport"},
			{"no-agreement-kind", []string{"--home", bank, "psi", "--peer", "partner-a", "--dataset", "customers", "--peer-dataset", "users", "--reveal", "sideways"}, 1, "reveal"},
			{"unknown-command", []string{"frobnicate"}, 2, "unknown command"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, e, code := tandem(t, tc.args...)
				if code != tc.wantCode || !strings.Contains(e, tc.wantErr) {
					t.Fatalf("got exit %d, stderr %q; want exit %d mentioning %q", code, e, tc.wantCode, tc.wantErr)
				}
			})
		}
		// The node is still serving after all of that.
		if _, e, code := tandem(t, "--home", bank, "peer", "list"); code != 0 {
			t.Fatalf("peer list after bad input: exit %d: %s", code, e)
		}
	})

	t.Run("audit-show", func(t *testing.T) {
		out, e, code := tandem(t, "--home", bank, "--json", "audit", "show", "1", "--log", "peer/partner-a")
		if code != 0 {
			t.Fatalf("audit show: exit %d: %s", code, e)
		}
		var resp struct {
			Verified bool
			Proof    [][]byte
		}
		if err := json.Unmarshal([]byte(out), &resp); err != nil || !resp.Verified || len(resp.Proof) == 0 {
			t.Fatalf("audit show: got %s (%v), want an entry with a verified inclusion proof", out, err)
		}
	})

	t.Run("audit-export-verify", func(t *testing.T) {
		out := filepath.Join(dir, "bundle")
		if o, e, code := tandem(t, "--home", bank, "audit", "export", "--out", out); code != 0 {
			t.Fatalf("export: exit %d\n%s%s", code, o, e)
		}
		if o, e, code := tandem(t, "audit", "verify", "--dir", out); code != 0 {
			t.Fatalf("verify: exit %d\n%s%s", code, o, e)
		}
		// Flip one byte of one stored entry: verification fails with the
		// bit-flip exit code.
		logs, _ := filepath.Glob(filepath.Join(out, "peer_partner-a", "entries.jsonl"))
		if len(logs) != 1 {
			t.Fatalf("no exported peer log in %s", out)
		}
		b, _ := os.ReadFile(logs[0])
		var lines []map[string]any
		for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var m map[string]any
			json.Unmarshal(l, &m)
			lines = append(lines, m)
		}
		raw := lines[1]["raw"].(string)
		lines[1]["raw"] = raw[:10] + string(rune(raw[10]^1)) + raw[11:]
		var nb bytes.Buffer
		for _, m := range lines {
			l, _ := json.Marshal(m)
			nb.Write(l)
			nb.WriteByte('\n')
		}
		os.WriteFile(logs[0], nb.Bytes(), 0o644)
		if _, e, code := tandem(t, "audit", "verify", "--dir", out); code < 10 || code > 16 {
			t.Fatalf("verify of a tampered bundle: exit %d (%s), want a tamper class code 10..16", code, e)
		}
	})
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }
