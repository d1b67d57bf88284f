package node

import (
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
