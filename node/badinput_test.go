package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

// TestBadInput feeds a running pair of nodes bad peers, bad operators, bad
// files and bad protocol messages. Each is refused with the documented
// status, and afterwards the nodes still run a ping job and keep their
// state.
func TestBadInput(t *testing.T) {
	bank, partner, pingAgr := startPair(t, pingAgreement)
	ctx := t.Context()

	// An agreement that expires in a few seconds; checked at the end, so
	// the wait overlaps the other cases.
	expiring, err := bank.admin.ProposeAgreement(ctx, &tandemv1.ProposeAgreementRequest{Peer: partner.name,
		Yaml: []byte("purpose: short-lived\njob_kinds: [ping]\nexpires: " + time.Now().Add(3*time.Second).UTC().Format(time.RFC3339) + "\n")})
	if err != nil {
		t.Fatalf("ProposeAgreement(expiring): %v", err)
	}
	if _, err := partner.admin.DecideAgreement(ctx, &tandemv1.DecideAgreementRequest{Id: expiring.Agreement.Id, Accept: true}); err != nil {
		t.Fatalf("DecideAgreement(expiring): %v", err)
	}

	// A third node: bank and partner have not pinned it.
	eve := newTestNode(t, "eve")
	eve.start()
	eve.pin(bank)

	// stillServes checks, after each case, that the pair still runs jobs.
	stillServes := func(t *testing.T) {
		t.Helper()
		runPing(t, bank, partner)
	}

	t.Run("unpinned peer gRPC", func(t *testing.T) {
		client, err := eve.n.dial("bank")
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = client.Hello(cctx, &tandemv1.HelloRequest{})
		if got := status.Code(err); got != codes.Unavailable {
			t.Errorf("Hello from unpinned eve: got %v (%v), want Unavailable (handshake refused)", got, err)
		}
		stillServes(t)
	})

	t.Run("unpinned peer raw TLS", func(t *testing.T) {
		cert, err := tls.LoadX509KeyPair(filepath.Join(eve.dir, "node.crt"), filepath.Join(eve.dir, "node.key"))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", bank.card.PeerAddr, &tls.Config{
			MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, NextProtos: []string{"h2"},
		})
		if err == nil {
			// TLS 1.3: the server's verdict on the client certificate
			// arrives after the client's handshake completes.
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "bad certificate") {
			t.Errorf("raw TLS from unpinned key: got %v, want a bad certificate alert", err)
		}
		// No certificate at all.
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", bank.card.PeerAddr, &tls.Config{
			MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, NextProtos: []string{"h2"},
		})
		if err == nil {
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil {
			t.Errorf("raw TLS without a client certificate: got no error, want the handshake refused")
		}
		stillServes(t)
	})

	t.Run("mismatched fingerprint", func(t *testing.T) {
		// The bank pins partner's address under a name with eve's key: the
		// partner's real key does not match, so the bank refuses it.
		if _, err := bank.admin.AddPeer(ctx, &tandemv1.AddPeerRequest{Name: "partner-b", Addr: partner.card.PeerAddr, Fingerprint: eve.card.Fingerprint}); err != nil {
			t.Fatalf("AddPeer: %v", err)
		}
		lp, err := bank.admin.ListPeers(ctx, &tandemv1.ListPeersRequest{Check: true})
		if err != nil {
			t.Fatalf("ListPeers: %v", err)
		}
		got := map[string]*tandemv1.PeerInfo{}
		for _, p := range lp.Peers {
			got[p.Name] = p
		}
		if p := got["partner-b"]; p == nil || p.Reachable || !strings.Contains(p.Error, "fingerprint mismatch") {
			t.Errorf("partner-b (wrong pin): got %+v, want unreachable with a fingerprint mismatch", p)
		}
		if p := got["partner-a"]; p == nil || !p.Reachable {
			t.Errorf("partner-a (right pin): got %+v, want reachable", p)
		}
		// A job to the mis-pinned name is rejected, not run.
		js, err := bank.admin.SubmitJob(ctx, &tandemv1.SubmitJobRequest{Kind: "ping", Peer: "partner-b"})
		if err == nil && js.State != stateRejected {
			t.Errorf("ping to mis-pinned partner-b: got state %q, want rejected or an error", js.State)
		}
		stillServes(t)
	})

	t.Run("roles", func(t *testing.T) {
		addr := bank.n.cfg.ControlListen
		marketing := bank.dialRole("marketing")
		defer marketing.Close()
		compliance := bank.dialRole("compliance")
		defer compliance.Close()
		none, err := DialControl(addr, "")
		if err != nil {
			t.Fatal(err)
		}
		defer none.Close()
		bogus, err := DialControl(addr, "tdm_not-a-real-token")
		if err != nil {
			t.Fatal(err)
		}
		defer bogus.Close()
		submit := func(c *Client) error {
			_, err := c.SubmitJob(ctx, &tandemv1.SubmitJobRequest{Kind: "ping", Peer: partner.name})
			return err
		}
		for _, tc := range []struct {
			name string
			call func() error
			want codes.Code
		}{
			{"marketing SubmitJob", func() error { return submit(marketing) }, codes.PermissionDenied},
			{"compliance SubmitJob", func() error { return submit(compliance) }, codes.PermissionDenied},
			{"analyst AddPeer", func() error {
				_, err := bank.analyst.AddPeer(ctx, &tandemv1.AddPeerRequest{Name: "eve", Addr: eve.card.PeerAddr, Fingerprint: eve.card.Fingerprint})
				return err
			}, codes.PermissionDenied},
			{"marketing ExportMatches", func() error {
				_, err := marketing.ExportMatches(ctx, &tandemv1.ExportMatchesRequest{JobId: "job-x", Out: "/tmp/x.csv"})
				return err
			}, codes.PermissionDenied},
			{"no token SubmitJob", func() error { return submit(none) }, codes.Unauthenticated},
			{"no token Status", func() error { _, err := none.Status(ctx, &tandemv1.StatusRequest{}); return err }, codes.Unauthenticated},
			{"bogus token SubmitJob", func() error { return submit(bogus) }, codes.Unauthenticated},
			{"marketing ListJobs", func() error { _, err := marketing.ListJobs(ctx, &tandemv1.ListJobsRequest{}); return err }, codes.OK},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := status.Code(tc.call()); got != tc.want {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			})
		}
		// The refused AddPeer pinned nothing.
		lp, err := bank.admin.ListPeers(ctx, &tandemv1.ListPeersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range lp.Peers {
			if p.Name == "eve" {
				t.Errorf("eve is pinned after a refused AddPeer")
			}
		}
		stillServes(t)
	})

	t.Run("dataset files", func(t *testing.T) {
		dir := t.TempDir()
		ragged := filepath.Join(dir, "ragged.csv")
		// Line 3 has too few fields; its values must not be echoed.
		writeFile(t, ragged, "customer_id,phone,id_no\nc1,13812345678,11010119900307803X\nc2,13987654321\n")
		for _, tc := range []struct {
			name, file string
			wantIn     []string
		}{
			{"missing file", filepath.Join(dir, "nope.csv"), []string{filepath.Join(dir, "nope.csv")}},
			{"ragged row", ragged, []string{ragged, "line 3"}},
			{"relative path", "customers.csv", []string{"absolute"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := bank.analyst.AddDataset(ctx, &tandemv1.AddDatasetRequest{Name: "customers", File: tc.file, Ids: psiIDs})
				if got := status.Code(err); got != codes.InvalidArgument {
					t.Fatalf("AddDataset: got %v (%v), want InvalidArgument", got, err)
				}
				msg := status.Convert(err).Message()
				for _, s := range tc.wantIn {
					if !strings.Contains(msg, s) {
						t.Errorf("message %q: want it to mention %q", msg, s)
					}
				}
				for _, secret := range []string{"13812345678", "13987654321", "11010119900307803X", "c2"} {
					if strings.Contains(msg, secret) {
						t.Errorf("message %q leaks the cell value %q", msg, secret)
					}
				}
			})
		}
		l, err := bank.analyst.ListDatasets(ctx, &tandemv1.ListDatasetsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Datasets) != 0 {
			t.Errorf("datasets after refused adds: got %d, want 0", len(l.Datasets))
		}
		stillServes(t)
	})

	// proposal returns a fresh ping proposal from bank to partner under the
	// ping agreement.
	proposal := func() *tandemv1.JobProposal {
		now := time.Now()
		p := &tandemv1.JobProposal{JobId: newJobID(), Kind: "ping", Initiator: bank.name, Responder: partner.name, AgreementId: pingAgr,
			Nonce: make([]byte, 16), CreatedUnix: now.Unix(), ExpiresUnix: now.Add(time.Minute).Unix(), Ping: &tandemv1.PingParams{Rounds: 1}}
		rand.Read(p.Nonce)
		return p
	}
	seal := func(t *testing.T, id *Identity, p *tandemv1.JobProposal) *tandemv1.Signed {
		t.Helper()
		sig, err := protocol.Seal(id, p)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	peerClient := func(t *testing.T) tandemv1.PeerServiceClient {
		t.Helper()
		c, err := bank.n.dial(partner.name)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("replayed proposal", func(t *testing.T) {
		client := peerClient(t)
		p := proposal()
		sig := seal(t, bank.n.id, p)
		resp, err := client.ProposeJob(ctx, sig)
		if err != nil {
			t.Fatalf("first ProposeJob: %v", err)
		}
		var dec tandemv1.JobDecision
		if err := protocol.Open(resp, partner.card.Fingerprint, &dec); err != nil {
			t.Fatalf("decision: %v", err)
		}
		if !dec.Accepted || dec.JobId != p.JobId {
			t.Errorf("first decision: got accepted=%v job=%s reason=%q, want accepted %s", dec.Accepted, dec.JobId, dec.Reason, p.JobId)
		}
		_, err = client.ProposeJob(ctx, sig)
		if got := status.Code(err); got != codes.AlreadyExists {
			t.Errorf("replayed ProposeJob: got %v (%v), want AlreadyExists", got, err)
		}
		// Same job id, fresh nonce: still a replay.
		p2 := proposal()
		p2.JobId = p.JobId
		_, err = client.ProposeJob(ctx, seal(t, bank.n.id, p2))
		if got := status.Code(err); got != codes.AlreadyExists {
			t.Errorf("ProposeJob reusing a job id: got %v (%v), want AlreadyExists", got, err)
		}
		stillServes(t)
	})

	t.Run("expired proposal", func(t *testing.T) {
		p := proposal()
		p.CreatedUnix, p.ExpiresUnix = time.Now().Add(-2*time.Minute).Unix(), time.Now().Add(-time.Minute).Unix()
		_, err := peerClient(t).ProposeJob(ctx, seal(t, bank.n.id, p))
		if got := status.Code(err); got != codes.FailedPrecondition {
			t.Errorf("expired ProposeJob: got %v (%v), want FailedPrecondition", got, err)
		}
		if _, err := partner.n.jobs.get(p.JobId); err == nil {
			t.Errorf("expired proposal created job %s on the partner", p.JobId)
		}
		stillServes(t)
	})

	t.Run("forged proposal", func(t *testing.T) {
		client := peerClient(t)
		// Signed by eve, relayed over the bank's pinned connection.
		p := proposal()
		_, err := client.ProposeJob(ctx, seal(t, eve.n.id, p))
		if got := status.Code(err); got != codes.Unauthenticated {
			t.Errorf("ProposeJob signed by another key: got %v (%v), want Unauthenticated", got, err)
		}
		// Signed by the bank but naming another initiator.
		p = proposal()
		p.Initiator = "eve"
		_, err = client.ProposeJob(ctx, seal(t, bank.n.id, p))
		if got := status.Code(err); got != codes.InvalidArgument {
			t.Errorf("ProposeJob with initiator eve over the bank's connection: got %v (%v), want InvalidArgument", got, err)
		}
		// A tampered body.
		sig := seal(t, bank.n.id, proposal())
		sig.Body[len(sig.Body)-1] ^= 1
		_, err = client.ProposeJob(ctx, sig)
		if got := status.Code(err); got != codes.Unauthenticated {
			t.Errorf("ProposeJob with a tampered body: got %v (%v), want Unauthenticated", got, err)
		}
		stillServes(t)
	})

	t.Run("oversized message", func(t *testing.T) {
		client := peerClient(t)
		big := &tandemv1.Signed{Body: make([]byte, 5<<20), Type: "tandem.v1.JobProposal"}
		// Lift the client's own cap so the partner's limit is what is tested.
		_, err := client.ProposeJob(ctx, big, grpc.MaxCallSendMsgSize(16<<20))
		if got := status.Code(err); got != codes.ResourceExhausted {
			t.Errorf("5 MiB ProposeJob: got %v (%v), want ResourceExhausted", got, err)
		}
		// The same on a job stream.
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		stream, err := client.Exchange(sctx, grpc.MaxCallSendMsgSize(16<<20))
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		err = stream.Send(&tandemv1.Frame{JobId: "job-x", Step: "open", Payload: make([]byte, 5<<20)})
		if err == nil {
			_, err = stream.Recv()
		}
		if got := status.Code(err); got != codes.ResourceExhausted {
			t.Errorf("5 MiB Exchange frame: got %v (%v), want ResourceExhausted", got, err)
		}
		stillServes(t)
	})

	t.Run("no agreement", func(t *testing.T) {
		_, err := bank.analyst.SubmitJob(ctx, &tandemv1.SubmitJobRequest{Kind: "psi", Peer: partner.name,
			Psi: &tandemv1.PsiParams{Dataset: "customers", PeerDataset: "users", Reveal: "initiator"}})
		if got := status.Code(err); got != codes.PermissionDenied {
			t.Errorf("SubmitJob psi without a psi agreement: got %v (%v), want PermissionDenied", got, err)
		}
		_, err = bank.analyst.SubmitJob(ctx, &tandemv1.SubmitJobRequest{Kind: "ping", Peer: partner.name, AgreementId: "agr-000000000000"})
		if got := status.Code(err); got != codes.NotFound && got != codes.PermissionDenied {
			t.Errorf("SubmitJob naming an unknown agreement: got %v (%v), want NotFound or PermissionDenied", got, err)
		}
	})

	t.Run("expired agreement", func(t *testing.T) {
		if d := time.Until(time.Unix(expiring.Agreement.ExpiresUnix, 0)); d > 0 {
			time.Sleep(d + 100*time.Millisecond)
		}
		ag, err := bank.analyst.GetAgreement(ctx, &tandemv1.GetAgreementRequest{Id: expiring.Agreement.Id})
		if err != nil {
			t.Fatal(err)
		}
		if ag.State != "expired" {
			t.Errorf("agreement state after expiry: got %q, want expired", ag.State)
		}
		_, err = bank.analyst.SubmitJob(ctx, &tandemv1.SubmitJobRequest{Kind: "ping", Peer: partner.name, AgreementId: expiring.Agreement.Id})
		if got := status.Code(err); got != codes.FailedPrecondition || !strings.Contains(err.Error(), "expired") {
			t.Errorf("SubmitJob under an expired agreement: got %v (%v), want FailedPrecondition naming the expiry", got, err)
		}
		// The partner refuses it too, with a signed rejection.
		p := proposal()
		p.AgreementId = expiring.Agreement.Id
		resp, err := peerClient(t).ProposeJob(ctx, seal(t, bank.n.id, p))
		if err != nil {
			t.Fatalf("ProposeJob under an expired agreement: %v", err)
		}
		var dec tandemv1.JobDecision
		if err := protocol.Open(resp, partner.card.Fingerprint, &dec); err != nil {
			t.Fatal(err)
		}
		if dec.Accepted {
			t.Errorf("partner accepted a job under an expired agreement")
		}
		// Both nodes recorded the expiry exactly once, however often it was
		// hit.
		for _, pair := range [][2]*testNode{{bank, partner}, {partner, bank}} {
			tn, other := pair[0], pair[1]
			entries, err := tn.n.audit.Entries(peerLog(other.name), 0, mustSize(t, tn, other.name))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range entries {
				if e.Kind == "agreement_expired" && e.AgreementID == expiring.Agreement.Id {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s: agreement_expired entries for %s: got %d, want 1", tn.name, expiring.Agreement.Id, n)
			}
		}
		// The long-lived agreement still works.
		stillServes(t)
	})

	// State intact: the ping agreement is active on both sides and every
	// job the bank ran succeeded on both nodes.
	for _, tn := range []*testNode{bank, partner} {
		ag, err := tn.admin.GetAgreement(ctx, &tandemv1.GetAgreementRequest{Id: pingAgr})
		if err != nil || ag.State != "active" {
			t.Errorf("%s: ping agreement: got %v %v, want active", tn.name, ag.GetState(), err)
		}
	}
	jobs, err := bank.analyst.ListJobs(ctx, &tandemv1.ListJobsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Jobs {
		if j.Peer == partner.name && j.State != stateSucceeded {
			t.Errorf("bank job %s to partner: got state %q (%s), want succeeded", j.Id, j.State, j.Reason)
		}
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLoadConfigErrors checks that every malformed config is refused with
// an error naming the offending field.
func TestLoadConfigErrors(t *testing.T) {
	const fp = "0000000000000000000000000000000000000000000000000000000000000000"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"bad peer_listen", "name: bank\npeer_listen: nonsense\n", "peer_listen"},
		{"bad control_listen", "name: bank\ncontrol_listen: 7401\n", "control_listen"},
		{"remote control_listen", "name: bank\ncontrol_listen: 10.1.2.3:7401\n", "control_listen"},
		{"bad http_listen", "name: bank\nhttp_listen: everywhere\n", "http_listen"},
		{"unknown field", "name: bank\npeer_lisen: 127.0.0.1:7400\n", "peer_lisen"},
		{"missing name", "peer_listen: 127.0.0.1:7400\n", "name"},
		{"bad name", "name: Bank!\n", "name"},
		{"bad log_level", "name: bank\nlog_level: loud\n", "log_level"},
		{"small max_message_bytes", "name: bank\nmax_message_bytes: 1024\n", "max_message_bytes"},
		{"negative ttl", "name: bank\nproposal_ttl_seconds: -1\n", "proposal_ttl_seconds"},
		{"unknown role", "name: bank\ntokens:\n  root: " + fp + "\n", "tokens"},
		{"bad token hash", "name: bank\ntokens:\n  admin: xyz\n", "tokens.admin"},
		{"bad peer fingerprint", "name: bank\npeers:\n  - name: partner-a\n    addr: 127.0.0.1:7500\n    fingerprint: abc\n", "peers[0]"},
		{"bad peer addr", "name: bank\npeers:\n  - name: partner-a\n    addr: nowhere\n    fingerprint: " + fp + "\n", "peers[0]"},
		{"peer is self", "name: bank\npeers:\n  - name: bank\n    addr: 127.0.0.1:7500\n    fingerprint: " + fp + "\n", "peers[0].name"},
		{"duplicate peer", "name: bank\npeers:\n  - name: p\n    addr: 127.0.0.1:7500\n    fingerprint: " + fp + "\n  - name: p\n    addr: 127.0.0.1:7501\n    fingerprint: " + fp + "\n", "peers[1].name"},
		{"wrong type", "name: bank\nmax_message_bytes: lots\n", "field max_message_bytes: line 2"},
		{"broken yaml", "name: [bank\n", "line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, ConfigFile), tc.yaml)
			_, err := LoadConfig(dir)
			if err == nil {
				t.Fatalf("LoadConfig: got nil error, want one naming %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadConfig: got %q, want it to name %q", err, tc.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		if _, err := LoadConfig(t.TempDir()); err == nil || !strings.Contains(err.Error(), ConfigFile) {
			t.Errorf("LoadConfig of an empty dir: got %v, want an error naming %s", err, ConfigFile)
		}
	})
}

// TestRunPortInUse starts a node whose listener address is taken: Run
// fails naming the address, and releases its state so that the node
// starts once the port is free.
func TestRunPortInUse(t *testing.T) {
	checkGoroutines(t)
	for _, field := range []string{"peer_listen", "control_listen"} {
		t.Run(field, func(t *testing.T) {
			tn := newTestNode(t, "bank")
			cfg, err := LoadConfig(tn.dir)
			if err != nil {
				t.Fatal(err)
			}
			addr := cfg.PeerListen
			if field == "control_listen" {
				addr = cfg.ControlListen
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("occupy %s: %v", addr, err)
			}
			n, err := New(cfg, tn.log)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- n.Run(t.Context()) }()
			select {
			case err = <-done:
			case <-n.Ready():
				t.Fatalf("node became ready on an occupied %s", addr)
			case <-time.After(10 * time.Second):
				t.Fatalf("Run did not return within 10s")
			}
			if err == nil || !strings.Contains(err.Error(), addr) {
				t.Errorf("Run: got %v, want an error naming %s", err, addr)
			}
			ln.Close()
			tn.start() // Badger lock and listeners were released
			if _, err := tn.admin.Status(t.Context(), &tandemv1.StatusRequest{}); err != nil {
				t.Errorf("Status after restart: %v", err)
			}
		})
	}
}

func mustSize(t *testing.T, tn *testNode, peer string) uint64 {
	t.Helper()
	n, err := tn.n.audit.Size(peerLog(peer))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
