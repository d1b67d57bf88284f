package node

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/tandem-dev/tandem/audit"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// TestReceipts: a finished job has the same doubly signed receipt on both
// nodes, each node witnessed the other's checkpoint, and a peer that does
// not countersign leaves a recorded unilateral receipt marked disputed,
// which an offline verification reports as such.
func TestReceipts(t *testing.T) {
	bank, partner, _ := startPair(t, pingAgreement)
	ctx := t.Context()

	id := runPing(t, bank, partner)
	var rb, rp struct{ Receipt ReceiptInfo }
	bj, _ := bank.analyst.GetJob(ctx, &tandemv1.GetJobRequest{Id: id})
	pj, _ := partner.analyst.GetJob(ctx, &tandemv1.GetJobRequest{Id: id})
	json.Unmarshal(bj.ResultJson, &rb)
	json.Unmarshal(pj.ResultJson, &rp)
	if rb.Receipt.Digest == "" || rb.Receipt != rp.Receipt || rb.Receipt.Signatures != 2 || rb.Receipt.Disputed {
		t.Fatalf("receipts: bank %+v, partner %+v; want the same co-signed receipt", rb.Receipt, rp.Receipt)
	}
	for _, pair := range [][2]*testNode{{bank, partner}, {partner, bank}} {
		r, err := pair[0].n.audit.Receipt(id)
		if err != nil {
			t.Fatal(err)
		}
		pv, _ := audit.NewEd25519Verifier(pair[1].name, pair[1].n.id.Public())
		if uni, err := r.Verify([]audit.Verifier{pair[0].n.signer().Verifier(), pv}); err != nil || uni {
			t.Fatalf("%s: stored receipt: unilateral=%v err=%v, want both signatures valid", pair[0].name, uni, err)
		}
		if _, err := pair[0].n.audit.WitnessedCheckpoint(pair[1].name); err != nil {
			t.Fatalf("%s has not witnessed %s's checkpoint: %v", pair[0].name, pair[1].name, err)
		}
	}

	// The partner now never countersigns.
	partner.n.silentPeer.Store(true)
	id2 := runPing(t, bank, partner)
	bj, _ = bank.analyst.GetJob(ctx, &tandemv1.GetJobRequest{Id: id2})
	json.Unmarshal(bj.ResultJson, &rb)
	if !rb.Receipt.Disputed || rb.Receipt.Signatures != 1 {
		t.Fatalf("receipt without a countersignature: got %+v, want disputed with 1 signature", rb.Receipt)
	}
	partner.n.silentPeer.Store(false)

	compliance := bank.dialRole("compliance")
	defer compliance.Close()
	out := filepath.Join(t.TempDir(), "bundle")
	resp, err := compliance.AuditExport(ctx, &tandemv1.AuditExportRequest{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := audit.ParseVerifierKey(resp.VerifierKey)
	rep, err := audit.VerifyBundle(filepath.Join(out, "peer_"+partner.name), audit.VerifyOptions{PubKey: v})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(rep.Unilateral) != 1 || rep.Unilateral[0] != id2 || len(rep.Cosigned) != 1 || rep.Cosigned[0] != id {
		t.Fatalf("bundle report: unilateral %v, cosigned %v; want [%s] and [%s]", rep.Unilateral, rep.Cosigned, id2, id)
	}
}
