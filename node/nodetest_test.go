package node

import (
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/internal/loopback"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// Helpers for the multi-node tests: real nodes on loopback, real Badger in
// t.TempDir(), real gRPC. Every node started here is stopped by a cleanup,
// and checkGoroutines (registered first, so it runs last) fails the test
// if goroutines outlive the nodes.

// testNode is one node home and, while started, its running Node.
type testNode struct {
	t    *testing.T
	name string
	dir  string
	card Card
	log  *slog.Logger
	// prepare, if set, is called by start on the new Node before Run.
	prepare func(*Node)

	n       *Node
	cancel  context.CancelFunc
	done    chan error
	admin   *Client
	analyst *Client
}

// newTestNode initialises a home for name with explicit free loopback
// ports (so the advertised address is dialable) and no HTTP listener. It
// does not start the node.
func newTestNode(t *testing.T, name string) *testNode {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	card, err := Init(InitOptions{Name: name, Dir: dir, PeerListen: freeAddr(t), ControlListen: freeAddr(t), HTTPListen: "off"})
	if err != nil {
		t.Fatalf("Init(%s): %v", name, err)
	}
	tn := &testNode{t: t, name: name, dir: dir, card: card, log: testLogger(t)}
	t.Cleanup(tn.stop)
	return tn
}

// freeAddr returns a loopback address whose port was free a moment ago,
// from below the ephemeral range (see package loopback).
func freeAddr(t *testing.T) string {
	t.Helper()
	addrs, err := loopback.Addrs(1)
	if err != nil {
		t.Fatal(err)
	}
	return addrs[0]
}

// start loads the config, runs the node until stop and connects admin and
// analyst clients.
func (tn *testNode) start() {
	t := tn.t
	t.Helper()
	if tn.n != nil {
		t.Fatalf("node %s already running", tn.name)
	}
	cfg, err := LoadConfig(tn.dir)
	if err != nil {
		t.Fatalf("LoadConfig(%s): %v", tn.name, err)
	}
	n, err := New(cfg, tn.log)
	if err != nil {
		t.Fatalf("New(%s): %v", tn.name, err)
	}
	if tn.prepare != nil {
		tn.prepare(n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("node %s: Run returned before ready: %v", tn.name, err)
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatalf("node %s: not ready after 15s", tn.name)
	}
	tn.n, tn.cancel, tn.done = n, cancel, done
	tn.admin = tn.dialRole("admin")
	tn.analyst = tn.dialRole("analyst")
}

// dialRole connects an operator client with role's token. The caller
// closes it (clients made here for admin and analyst are closed by stop).
func (tn *testNode) dialRole(role string) *Client {
	tn.t.Helper()
	c, err := DialHome(tn.dir, role)
	if err != nil {
		tn.t.Fatalf("DialHome(%s, %s): %v", tn.name, role, err)
	}
	return c
}

// stop cancels Run and waits for it to return. It is a no-op on a stopped
// node, so it doubles as the cleanup.
func (tn *testNode) stop() {
	if tn.n == nil {
		return
	}
	for _, c := range []*Client{tn.admin, tn.analyst} {
		if c != nil {
			c.Close()
		}
	}
	tn.cancel()
	select {
	case err := <-tn.done:
		if err != nil {
			tn.t.Errorf("node %s: Run: %v", tn.name, err)
		}
	case <-time.After(30 * time.Second):
		tn.t.Errorf("node %s: Run did not return 30s after cancel", tn.name)
	}
	tn.n, tn.cancel, tn.done, tn.admin, tn.analyst = nil, nil, nil, nil, nil
}

// pin makes tn trust other (control API AddPeer as admin).
func (tn *testNode) pin(other *testNode) {
	tn.t.Helper()
	if _, err := tn.admin.AddPeer(tn.t.Context(), &tandemv1.AddPeerRequest{Name: other.name, Addr: other.card.PeerAddr, Fingerprint: other.card.Fingerprint}); err != nil {
		tn.t.Fatalf("%s: AddPeer(%s): %v", tn.name, other.name, err)
	}
}

// agree has proposer propose the agreement in yml to responder, which
// accepts it; it returns the agreement id, active on both sides.
func agree(t *testing.T, proposer, responder *testNode, yml string) string {
	t.Helper()
	ctx := t.Context()
	rec, err := proposer.admin.ProposeAgreement(ctx, &tandemv1.ProposeAgreementRequest{Peer: responder.name, Yaml: []byte(yml)})
	if err != nil {
		t.Fatalf("ProposeAgreement: %v", err)
	}
	id := rec.Agreement.Id
	if _, err := responder.admin.DecideAgreement(ctx, &tandemv1.DecideAgreementRequest{Id: id, Accept: true}); err != nil {
		t.Fatalf("DecideAgreement(%s): %v", id, err)
	}
	for _, tn := range []*testNode{proposer, responder} {
		got, err := tn.admin.GetAgreement(ctx, &tandemv1.GetAgreementRequest{Id: id})
		if err != nil {
			t.Fatalf("%s: GetAgreement(%s): %v", tn.name, id, err)
		}
		if got.State != "active" {
			t.Fatalf("%s: agreement %s state: got %q, want active", tn.name, id, got.State)
		}
	}
	return id
}

// pingAgreement allows ping jobs for a year.
const pingAgreement = "purpose: connectivity check\njob_kinds: [ping]\nvalid_days: 365\n"

// startPair starts "bank" and "partner-a", pins each to the other and
// activates agreementYAML between them (proposed by the bank). It also
// registers the goroutine-leak check.
func startPair(t *testing.T, agreementYAML string) (bank, partner *testNode, agreementID string) {
	t.Helper()
	checkGoroutines(t)
	bank, partner = newTestNode(t, "bank"), newTestNode(t, "partner-a")
	bank.start()
	partner.start()
	bank.pin(partner)
	partner.pin(bank)
	return bank, partner, agree(t, bank, partner, agreementYAML)
}

// finalJob polls GetJob on c until job id reaches a final state.
func finalJob(t *testing.T, c *Client, id string, timeout time.Duration) *tandemv1.JobState {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		js, err := c.GetJob(t.Context(), &tandemv1.GetJobRequest{Id: id})
		if err != nil {
			t.Fatalf("GetJob(%s): %v", id, err)
		}
		if finalState(js.State) {
			return js
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: still %s (phase %q, progress %.2f) after %s", id, js.State, js.Phase, js.Progress, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runPing submits a ping from bank to partner and waits for both sides to
// succeed; it returns the job id.
func runPing(t *testing.T, bank, partner *testNode) string {
	t.Helper()
	js, err := bank.analyst.SubmitJob(t.Context(), &tandemv1.SubmitJobRequest{Kind: "ping", Peer: partner.name})
	if err != nil {
		t.Fatalf("SubmitJob(ping): %v", err)
	}
	for _, tn := range []*testNode{bank, partner} {
		got := finalJob(t, tn.analyst, js.Id, 20*time.Second)
		if got.State != stateSucceeded {
			t.Fatalf("%s: ping job %s: got state %q (reason %q), want succeeded", tn.name, js.Id, got.State, got.Reason)
		}
	}
	return js.Id
}

// checkGoroutines records the goroutine count now and, at cleanup (after
// every cleanup registered later, i.e. after the nodes stopped), fails if
// more than a few extra goroutines are still alive after 3 s.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		const slack = 2 // process-wide gRPC/Badger workers (none observed; a leaked client conn is 3)
		var after int
		for deadline := time.Now().Add(3 * time.Second); ; {
			after = runtime.NumGoroutine()
			if after <= before+slack || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if after > before+slack {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutine leak: got %d goroutines after the test, want at most %d (%d before + %d slack)\n%s", after, before+slack, before, slack, buf)
		}
	})
}

// testLogger sends node logs to the test log until the test ends (a
// goroutine logging after that would panic the test binary).
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(b), "\n"))
	}
	return len(b), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// runJobs submits req on the bank (the initiator) and waits up to timeout
// for it to succeed there, then on the partner; it returns both final
// states (ResultJson holds each side's result).
func runJobs(t *testing.T, bank, partner *testNode, req *tandemv1.SubmitJobRequest, timeout time.Duration) (bj, pj *tandemv1.JobState) {
	t.Helper()
	js, err := bank.analyst.SubmitJob(t.Context(), req)
	if err != nil || js.State != stateAccepted {
		t.Fatalf("SubmitJob(%s): %v %v", req.Kind, js, err)
	}
	bj = finalJob(t, bank.analyst, js.Id, timeout)
	pj = finalJob(t, partner.analyst, js.Id, 30*time.Second)
	if bj.State != stateSucceeded || pj.State != stateSucceeded {
		t.Fatalf("%s job: bank %s (%s), partner %s (%s)", req.Kind, bj.State, bj.Reason, pj.State, pj.Reason)
	}
	return bj, pj
}
