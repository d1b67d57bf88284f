package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// TestCancelRunningPSI: an operator cancels a running PSI job on the
// initiator; both nodes end it as cancelled (the partner is told), nothing
// is left running, and the next job between the same nodes succeeds.
func TestCancelRunningPSI(t *testing.T) {
	bank, partner, _, pt := startPSIPair(t, 12000, 8000)
	ctx := t.Context()
	id := submitPSI(t, bank, "initiator")
	waitState(t, bank, id, stateRunning)
	time.Sleep(50 * time.Millisecond)
	js, err := bank.analyst.CancelJob(ctx, &tandemv1.GetJobRequest{Id: id})
	if err != nil {
		t.Fatalf("CancelJob: %v", err)
	}
	if js.State != stateCancelled {
		t.Fatalf("bank job after cancel: got %s, want cancelled", js.State)
	}
	waitState(t, partner, id, stateCancelled)
	pj, _ := partner.analyst.GetJob(ctx, &tandemv1.GetJobRequest{Id: id})
	if !strings.Contains(pj.Reason, "cancelled") {
		t.Errorf("partner reason: got %q, want it to say the peer cancelled", pj.Reason)
	}
	// Cancelling again is a no-op, not an error.
	if js, err := bank.analyst.CancelJob(ctx, &tandemv1.GetJobRequest{Id: id}); err != nil || js.State != stateCancelled {
		t.Fatalf("second cancel: got %v, %v", js.GetState(), err)
	}
	// Give the runners a moment to unwind, then run a fresh job.
	time.Sleep(100 * time.Millisecond)
	id2 := submitPSI(t, bank, "count")
	res, _ := psiResult(t, bank, id2)
	if res.Intersection != int64(pt.ByEither) {
		t.Fatalf("job after a cancel: intersection %d, want %d", res.Intersection, pt.ByEither)
	}
}

// TestFirstCause: of two tasks that cancel each other, the error reported
// is the one that caused the other's cancellation.
func TestFirstCause(t *testing.T) {
	fileErr, peerErr := errors.New("file"), errors.New("peer refused")
	cancelled := fmt.Errorf("reading: %w", context.Canceled)
	for _, tc := range []struct{ a, b, want error }{
		{nil, nil, nil},
		{fileErr, nil, fileErr},
		{nil, peerErr, peerErr},
		{fileErr, cancelled, fileErr}, // the file failed, the protocol was cancelled
		{cancelled, peerErr, peerErr}, // the protocol failed, the file pass was cancelled
		{fileErr, peerErr, fileErr},
		{cancelled, cancelled, cancelled}, // the job itself was cancelled
	} {
		if got := firstCause(tc.a, tc.b); got != tc.want {
			t.Errorf("firstCause(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
