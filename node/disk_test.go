package node

import (
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// TestDiskWatermark: below the free-space watermark a node refuses new jobs
// (its own and its peers') with a clear error, and stays able to export its
// audit log; after the pressure is gone jobs run again.
func TestDiskWatermark(t *testing.T) {
	bank, partner, _ := startPair(t, pingAgreement)
	ctx := t.Context()

	bank.n.cfg.MinFreeBytes = 1 << 62
	_, err := bank.analyst.SubmitJob(ctx, &tandemv1.SubmitJobRequest{Kind: "ping", Peer: partner.name})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "watermark") {
		t.Fatalf("SubmitJob under disk pressure: got %v, want ResourceExhausted naming the watermark", err)
	}
	compliance := bank.dialRole("compliance")
	defer compliance.Close()
	if _, err := compliance.AuditExport(ctx, &tandemv1.AuditExportRequest{Out: filepath.Join(t.TempDir(), "bundle")}); err != nil {
		t.Fatalf("audit export under disk pressure: %v", err)
	}
	bank.n.cfg.MinFreeBytes = 1

	// The responder refuses too, with a signed rejection naming the cause.
	partner.n.cfg.MinFreeBytes = 1 << 62
	j, err := bank.analyst.SubmitJob(ctx, &tandemv1.SubmitJobRequest{Kind: "ping", Peer: partner.name})
	if err != nil {
		t.Fatal(err)
	}
	if j.State != "rejected" || !strings.Contains(j.Reason, "watermark") {
		t.Fatalf("job proposed to a node under disk pressure: got %s (%s), want rejected naming the watermark", j.State, j.Reason)
	}
	partner.n.cfg.MinFreeBytes = 1
	runPing(t, bank, partner)
}
