package node

import (
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

// TestPingEndToEnd runs a ping job between two real nodes and checks both
// job records and the WatchJob stream.
func TestPingEndToEnd(t *testing.T) {
	bank, partner, agrID := startPair(t, pingAgreement)
	ctx := t.Context()

	js, err := bank.analyst.SubmitJob(ctx, &tandemv1.SubmitJobRequest{Kind: "ping", Peer: partner.name, Ping: &tandemv1.PingParams{Rounds: 5}})
	if err != nil {
		t.Fatalf("SubmitJob(ping): %v", err)
	}
	if js.State != stateAccepted {
		t.Errorf("SubmitJob state: got %q, want %q", js.State, stateAccepted)
	}

	// WatchJob streams until the final state and then ends.
	ws, err := bank.analyst.WatchJob(ctx, &tandemv1.GetJobRequest{Id: js.Id})
	if err != nil {
		t.Fatalf("WatchJob: %v", err)
	}
	var last *tandemv1.JobState
	for {
		s, err := ws.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("WatchJob Recv: %v", err)
		}
		last = s
	}
	if last == nil || last.State != stateSucceeded {
		t.Fatalf("WatchJob last state: got %v, want %s", last, stateSucceeded)
	}

	for _, tc := range []struct {
		node *testNode
		role string
		peer string
	}{
		{bank, "initiator", partner.name},
		{partner, "responder", bank.name},
	} {
		t.Run(tc.node.name, func(t *testing.T) {
			got := finalJob(t, tc.node.analyst, js.Id, 10*time.Second)
			if got.State != stateSucceeded {
				t.Fatalf("state: got %q (reason %q), want succeeded", got.State, got.Reason)
			}
			if got.Kind != "ping" || got.Role != tc.role || got.Peer != tc.peer || got.AgreementId != agrID {
				t.Errorf("record: got kind=%q role=%q peer=%q agreement=%q, want ping %s %s %s", got.Kind, got.Role, got.Peer, got.AgreementId, tc.role, tc.peer, agrID)
			}
			if got.Progress != 1 {
				t.Errorf("progress: got %v, want 1", got.Progress)
			}
			var res protocol.PingResult
			if err := json.Unmarshal(got.ResultJson, &res); err != nil {
				t.Fatalf("result %q: %v", got.ResultJson, err)
			}
			if res.Rounds != 5 || res.RTT <= 0 {
				t.Errorf("result: got rounds=%d rtt=%v, want 5 rounds and a positive rtt", res.Rounds, res.RTT)
			}
		})
	}

	// Both nodes list the job exactly once.
	for _, tn := range []*testNode{bank, partner} {
		l, err := tn.analyst.ListJobs(ctx, &tandemv1.ListJobsRequest{})
		if err != nil {
			t.Fatalf("%s: ListJobs: %v", tn.name, err)
		}
		if len(l.Jobs) != 1 || l.Jobs[0].Id != js.Id {
			t.Errorf("%s: ListJobs: got %d jobs, want just %s", tn.name, len(l.Jobs), js.Id)
		}
	}
}
