package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/tandem-dev/tandem/node/dataset"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/psi"
)

// Jobs that compute over the alignment of an earlier PSI job (stats,
// train) share how they find and check that job and load their inputs.

// alignedInputs is what both sides of such a job load: the PSI job, this
// node's dataset (unchanged since the PSI job), its alignment and the
// job's agreement.
type alignedInputs struct {
	psiRec *jobRecord
	psiP   *tandemv1.JobProposal
	ds     *datasetRecord
	dspec  dataset.Spec
	al     *psi.Alignment
	agr    *tandemv1.AgreementRecord
}

// alignmentJob finds the PSI job psiJobID that a proposal of kind runs
// over and checks it: succeeded, run with the same peer, this node in the
// same role (the bank initiated both), an alignment kept (initiator or both
// mode), under an agreement between the same two parties.
func (n *Node) alignmentJob(p *tandemv1.JobProposal, kind, psiJobID, role, peer string) (*jobRecord, *tandemv1.JobProposal, error) {
	id := psiJobID
	rec, err := n.jobs.get(id)
	if err != nil {
		return nil, nil, fmt.Errorf("psi job %s is not known on %s", id, n.cfg.Name)
	}
	if rec.Kind != "psi" || rec.State != stateSucceeded {
		return nil, nil, fmt.Errorf("job %s is a %s job in state %s; a %s job needs a succeeded psi job", id, rec.Kind, rec.State, kind)
	}
	if rec.Peer != peer || rec.Role != role {
		return nil, nil, fmt.Errorf("psi job %s ran with %s as %s; this %s job needs %s as %s", id, rec.Peer, rec.Role, kind, peer, role)
	}
	pp, err := rec.proposal()
	if err != nil {
		return nil, nil, err
	}
	if pp.Psi == nil || (pp.Psi.Reveal != "initiator" && pp.Psi.Reveal != "both") {
		return nil, nil, fmt.Errorf("psi job %s keeps no alignment (reveal count); a %s job needs initiator or both", id, kind)
	}
	if pp.Initiator != p.Initiator || pp.Responder != p.Responder {
		return nil, nil, fmt.Errorf("psi job %s ran %s→%s, not %s→%s", id, pp.Initiator, pp.Responder, p.Initiator, p.Responder)
	}
	a1, err := n.agreement(rec.AgreementID)
	if err != nil {
		return nil, nil, fmt.Errorf("psi job %s: agreement %s: %v", id, rec.AgreementID, err)
	}
	a2, err := n.agreement(p.AgreementId)
	if err != nil {
		return nil, nil, err
	}
	pa, pb := []string{a1.Agreement.Proposer, a1.Agreement.Responder}, []string{a2.Agreement.Proposer, a2.Agreement.Responder}
	slices.Sort(pa)
	slices.Sort(pb)
	if !slices.Equal(pa, pb) {
		return nil, nil, fmt.Errorf("psi job %s ran under an agreement between other parties", id)
	}
	return rec, pp, nil
}

// loadAligned loads the inputs of job j of kind over PSI job psiJobID.
func (n *Node) loadAligned(j *jobRun, kind, psiJobID string) (alignedInputs, error) {
	var in alignedInputs
	var err error
	peer := j.prop.Responder
	if j.rec.Role == "responder" {
		peer = j.prop.Initiator
	}
	if in.psiRec, in.psiP, err = n.alignmentJob(j.prop, kind, psiJobID, j.rec.Role, peer); err != nil {
		return in, fmt.Errorf("node: %s: %w", kind, err)
	}
	if in.agr, err = n.agreement(j.rec.AgreementID); err != nil {
		return in, err
	}
	name := in.psiP.Psi.Dataset
	if j.rec.Role == "responder" {
		name = in.psiP.Psi.PeerDataset
	}
	if in.ds, err = n.dataset(name); err != nil {
		return in, err
	}
	var pr PSIJobResult
	if err := json.Unmarshal(in.psiRec.Result, &pr); err != nil || pr.DatasetDigest != in.ds.Profile.Digest {
		return in, fmt.Errorf("node: %s: dataset %s was registered again since psi job %s; run a new psi job", kind, name, in.psiRec.ID)
	}
	if in.dspec, err = in.ds.Spec.spec(); err != nil {
		return in, err
	}
	dir, err := n.jobDir(in.psiRec.ID)
	if err != nil {
		return in, err
	}
	f, err := os.Open(filepath.Join(dir, "alignment.bin"))
	if err != nil {
		return in, fmt.Errorf("node: %s: psi job %s keeps no alignment", kind, in.psiRec.ID)
	}
	defer f.Close()
	if in.al, err = psi.ReadAlignment(f); err != nil {
		return in, err
	}
	if in.al.Length == 0 || in.al.Length > 1<<24 {
		return in, fmt.Errorf("node: %s: alignment of %d positions (want 1..2^24)", kind, in.al.Length)
	}
	return in, nil
}
