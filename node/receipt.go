package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tandem-dev/tandem/audit"
	"github.com/tandem-dev/tandem/audit/merkle"
	"github.com/tandem-dev/tandem/protocol"
)

// Co-signed job receipts and checkpoint witnessing (issue 4, DESIGN §5).
//
// After a job's protocol succeeds, on the same stream:
//
//	1. both → receipt.part {own input digests, own outputs, checkpoint of
//	   own relationship log, size of the peer's log last witnessed}
//	2. both build the same Receipt, sign it, and send receipt.sig {signature,
//	   consistency proof of own log from the size the peer witnessed}
//	3. each verifies the peer's signature and checkpoint, witnesses the
//	   checkpoint, and appends the doubly signed receipt to the peer's log.
//
// A peer that does not answer within receiptTimeout leaves a unilateral
// receipt, recorded and reported as disputed. A job is marked succeeded only
// after its receipt is on record.

const receiptTimeout = 30 * time.Second

type receiptPart struct {
	Inputs     map[string]string `json:"inputs"`
	Outputs    []audit.Output    `json:"outputs"`
	Checkpoint []byte            `json:"checkpoint"`
	Witnessed  uint64            `json:"witnessed"`
}

type receiptSig struct {
	Sig   audit.ReceiptSig `json:"sig"`
	Proof []string         `json:"proof"`
}

// ReceiptInfo is what a job result says about its receipt.
type ReceiptInfo struct {
	Digest     string `json:"digest"`
	Signatures int    `json:"signatures"`
	Disputed   bool   `json:"disputed,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// receipted is implemented by job results that consumed inputs or produced
// outputs worth naming in the receipt.
type receipted interface {
	receiptItems(self string) (inputs map[string]string, outputs []audit.Output)
}

func (r *PSIJobResult) receiptItems(self string) (map[string]string, []audit.Output) {
	in := map[string]string{self: r.DatasetDigest}
	var out []audit.Output
	if r.AlignmentDigest != "" {
		out = append(out, audit.Output{Name: self + "/alignment", Digest: r.AlignmentDigest, Size: uint64(r.AlignmentBytes)})
	}
	return in, out
}

// fileDigest is "sha256:<hex>" of a file.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func (n *Node) signer() *audit.Ed25519Signer {
	s, err := audit.NewEd25519Signer(n.cfg.Name, n.id.priv)
	if err != nil {
		panic("node: identity key is not a valid note signer: " + err.Error()) // broken invariant
	}
	return s
}

// cosign runs the receipt exchange for a finished job and records the
// receipt. It returns an error only if the receipt could not be recorded
// at all; a silent peer yields a disputed, unilateral receipt.
func (n *Node) cosign(ctx context.Context, j *jobRun, result any) (*ReceiptInfo, error) {
	self, peer := n.cfg.Name, j.rec.Peer
	parties := [2]string{j.prop.Initiator, j.prop.Responder}
	spec := protocol.Digest(j.rec.proposalBody())
	r := &audit.Receipt{JobID: j.rec.ID, AgreementID: j.rec.AgreementID, SpecDigest: "sha256:" + hex.EncodeToString(spec),
		InputDigests: map[string]string{}, TranscriptDigest: hex.EncodeToString(j.t.Digest()), Outcome: "succeeded", Parties: parties}
	mine := receiptPart{Inputs: map[string]string{}}
	if rr, ok := result.(receipted); ok {
		mine.Inputs, mine.Outputs = rr.receiptItems(self)
	}
	cp, err := n.audit.Checkpoint(peerLog(peer))
	if err != nil {
		return nil, err
	}
	mine.Checkpoint = cp
	peerKey, err := n.peerPublicKey(peer)
	if err != nil {
		return nil, err
	}
	pv, err := audit.NewEd25519Verifier(peer, peerKey)
	if err != nil {
		return nil, err
	}
	if w, err := n.audit.WitnessedCheckpoint(peer); err == nil {
		if h, err := audit.OpenCheckpoint(w, pv); err == nil {
			mine.Witnessed = h.Size
		}
	}
	own := n.signer()
	idx := slices.Index(parties[:], self)
	cps := [2][]byte{}
	cps[idx] = cp

	rctx, cancel := context.WithTimeout(ctx, receiptTimeout)
	defer cancel()
	theirs, err := exchangeJSON[receiptPart](rctx, j.t, "receipt.part", mine)
	disputed := ""
	if err != nil {
		disputed = "peer sent no receipt part: " + shortErr(err)
	} else {
		cps[1-idx] = theirs.Checkpoint
		for k, v := range theirs.Inputs {
			if k == peer {
				r.InputDigests[k] = v
			}
		}
		r.Outputs = append(r.Outputs, filterOutputs(theirs.Outputs, peer+"/")...)
	}
	for k, v := range mine.Inputs {
		r.InputDigests[k] = v
	}
	r.Outputs = append(r.Outputs, mine.Outputs...)
	slices.SortFunc(r.Outputs, func(a, b audit.Output) int { return strings.Compare(a.Name, b.Name) })
	r.Checkpoints = cps
	if err := r.Sign(own); err != nil {
		return nil, err
	}
	if disputed == "" {
		mySig := r.Sigs[slices.IndexFunc(r.Sigs, func(s audit.ReceiptSig) bool { return s.Party == self })]
		proof, perr := n.ownProof(peer, theirs.Witnessed, cp, own)
		if perr != nil {
			return nil, perr
		}
		got, err := exchangeJSON[receiptSig](rctx, j.t, "receipt.sig", receiptSig{Sig: mySig, Proof: proof})
		switch {
		case err != nil:
			disputed = "peer did not countersign: " + shortErr(err)
		case got.Sig.Party != peer:
			disputed = "countersignature names another party"
		default:
			r.Sigs = append(r.Sigs, got.Sig)
			slices.SortFunc(r.Sigs, func(a, b audit.ReceiptSig) int { return strings.Compare(a.Party, b.Party) })
			if _, err := r.Verify([]audit.Verifier{own.Verifier(), pv}); err != nil {
				r.Sigs = slices.DeleteFunc(r.Sigs, func(s audit.ReceiptSig) bool { return s.Party == peer })
				disputed = "countersignature does not verify"
				n.metrics.badInput.WithLabelValues("bad_signature").Inc()
			} else if err := n.witness(ctx, peer, pv, theirs.Checkpoint, got.Proof); err != nil {
				// The receipt stands; the peer's log history is the dispute.
				n.log.WarnContext(ctx, "peer checkpoint not consistent with what we witnessed", "peer", peer, "job", j.rec.ID, "err", err)
				disputed = "peer checkpoint inconsistent with its earlier checkpoint"
			}
		}
	}
	if _, err := n.audit.AppendReceipt(context.WithoutCancel(ctx), peerLog(peer), audit.Actor{Kind: audit.ActorNode, Name: self}, r); err != nil {
		return nil, fmt.Errorf("node: record receipt: %w", err)
	}
	dg, _ := r.Digest()
	info := &ReceiptInfo{Digest: dg, Signatures: len(r.Sigs), Disputed: disputed != "", Reason: disputed}
	if disputed != "" {
		n.log.WarnContext(ctx, "unilateral receipt recorded", "job", j.rec.ID, "peer", peer, "reason", disputed)
	}
	return info, nil
}

// ownProof is the consistency proof of our relationship log from the size
// the peer last witnessed to the checkpoint we just sent.
func (n *Node) ownProof(peer string, from uint64, cp []byte, own *audit.Ed25519Signer) ([]string, error) {
	h, err := audit.OpenCheckpoint(cp, own.Verifier())
	if err != nil {
		return nil, err
	}
	if from == 0 || from > h.Size {
		return nil, nil
	}
	proof, err := n.audit.ConsistencyProof(peerLog(peer), from, h.Size)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(proof))
	for i, p := range proof {
		out[i] = hex.EncodeToString(p[:])
	}
	return out, nil
}

func (n *Node) witness(ctx context.Context, peer string, v audit.Verifier, cp []byte, proofHex []string) error {
	proof := make([]merkle.Hash, len(proofHex))
	for i, s := range proofHex {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != len(proof[i]) {
			return errors.New("node: malformed consistency proof")
		}
		copy(proof[i][:], b)
	}
	if err := n.audit.WitnessCheckpoint(ctx, peer, v, cp, proof); err != nil {
		return err
	}
	return n.record(ctx, event{Kind: "checkpoint_witnessed", Peer: peer, Detail: fmt.Sprintf("%d bytes", len(cp))})
}

func filterOutputs(outs []audit.Output, prefix string) []audit.Output {
	var keep []audit.Output
	for _, o := range outs {
		if len(o.Name) > len(prefix) && o.Name[:len(prefix)] == prefix {
			keep = append(keep, o)
		}
	}
	return keep
}

// exchangeJSON sends v on step and receives the peer's message of the same
// step (both sides send first, so neither waits on the other).
func exchangeJSON[T any](ctx context.Context, t protocol.Transport, step string, v any) (T, error) {
	var out T
	b, err := json.Marshal(v)
	if err != nil {
		return out, err
	}
	if err := t.Send(ctx, protocol.Msg{Step: step, Payload: b, Last: true}); err != nil {
		return out, err
	}
	m, err := t.Recv(ctx)
	if err != nil {
		return out, err
	}
	if m.Step != step || len(m.Payload) > 1<<20 {
		return out, fmt.Errorf("%w: got %s, want %s", protocol.ErrUnexpected, m.Step, step)
	}
	if err := json.Unmarshal(m.Payload, &out); err != nil {
		return out, fmt.Errorf("%w: %s: %v", protocol.ErrUnexpected, step, err)
	}
	return out, nil
}
