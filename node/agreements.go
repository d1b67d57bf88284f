package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

const agreementType = "tandem.v1.Agreement"

// proposeAgreement signs an agreement from the operator's YAML and delivers
// it to the peer, which holds it pending for its operator.
func (n *Node) proposeAgreement(ctx context.Context, peerName string, yml []byte) (*tandemv1.AgreementRecord, error) {
	if _, ok := n.peerConfig(peerName); !ok {
		return nil, fmt.Errorf("%w: unknown peer %q", errInvalid, peerName)
	}
	a, err := protocol.ParseAgreementYAML(yml, n.cfg.Name, peerName, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalid, err)
	}
	sig, err := protocol.Seal(n.id, a)
	if err != nil {
		return nil, err
	}
	rec := &tandemv1.AgreementRecord{Agreement: a, Body: sig.Body, ProposerSignature: sig.Signature, ProposerKey: n.id.Public(), State: "pending"}
	client, err := n.dial(peerName)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := client.ProposeAgreement(cctx, sig); err != nil {
		return nil, fmt.Errorf("node: deliver agreement to %s: %w", peerName, err)
	}
	if err := n.st.putProto("agr/"+a.Id, rec); err != nil {
		return nil, err
	}
	n.record(ctx, event{Kind: "agreement_proposed", AgreementID: a.Id, Peer: peerName, Detail: a.Purpose})
	return rec, nil
}

// receiveAgreement stores a peer's signed proposal as pending.
func (n *Node) receiveAgreement(ctx context.Context, from string, sig *tandemv1.Signed, a *tandemv1.Agreement) error {
	if a.Proposer != from || a.Responder != n.cfg.Name {
		n.metrics.badInput.WithLabelValues("malformed").Inc()
		return fmt.Errorf("%w: agreement parties %s→%s do not match the connection %s→%s", errInvalid, a.Proposer, a.Responder, from, n.cfg.Name)
	}
	if time.Now().Unix() >= a.ExpiresUnix {
		return protocol.ErrAgreementExpired
	}
	if len(a.Nonce) != 16 || a.Id != fmt.Sprintf("agr-%x", a.Nonce[:6]) {
		return fmt.Errorf("%w: malformed agreement id or nonce", errInvalid)
	}
	var old tandemv1.AgreementRecord
	if err := n.st.getProto("agr/"+a.Id, &old); err == nil {
		return fmt.Errorf("%w: agreement %s already received", protocol.ErrReplay, a.Id)
	}
	rec := &tandemv1.AgreementRecord{Agreement: a, Body: sig.Body, ProposerSignature: sig.Signature, ProposerKey: sig.PublicKey, State: "pending"}
	if err := n.st.putProto("agr/"+a.Id, rec); err != nil {
		return err
	}
	n.log.InfoContext(ctx, "agreement received", "agreement", a.Id, "peer", from)
	n.record(ctx, event{Kind: "agreement_proposed", AgreementID: a.Id, Peer: from, Actor: "peer:" + from, Detail: a.Purpose})
	return nil
}

// decideAgreement is the responder operator's accept or reject. Accept
// countersigns the exact agreement body and sends the signature back.
func (n *Node) decideAgreement(ctx context.Context, id string, accept bool, reason, role string) (*tandemv1.AgreementRecord, error) {
	var rec tandemv1.AgreementRecord
	if err := n.st.getProto("agr/"+id, &rec); err != nil {
		return nil, fmt.Errorf("%w: agreement %s", err, id)
	}
	a := rec.Agreement
	if a.Responder != n.cfg.Name {
		return nil, fmt.Errorf("%w: agreement %s was proposed by this node; the peer decides", errInvalid, id)
	}
	if rec.State != "pending" {
		return nil, fmt.Errorf("%w: agreement %s is %s, not pending", errInvalid, id, rec.State)
	}
	if accept && time.Now().Unix() >= a.ExpiresUnix {
		return nil, protocol.ErrAgreementExpired
	}
	d := &tandemv1.AgreementDecision{AgreementId: id, Accepted: accept, Reason: reason, AgreementDigest: protocol.Digest(rec.Body)}
	if accept {
		d.ResponderSignature = n.id.Sign(protocol.SigningInput(agreementType, rec.Body))
	}
	sig, err := protocol.Seal(n.id, d)
	if err != nil {
		return nil, err
	}
	client, err := n.dial(a.Proposer)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := client.DecideAgreement(cctx, sig); err != nil {
		return nil, fmt.Errorf("node: deliver decision to %s: %w", a.Proposer, err)
	}
	if accept {
		rec.State, rec.ResponderSignature, rec.ResponderKey = "active", d.ResponderSignature, n.id.Public()
	} else {
		rec.State, rec.Reason = "rejected", reason
	}
	if err := n.st.putProto("agr/"+id, &rec); err != nil {
		return nil, err
	}
	kind := "agreement_accepted"
	if !accept {
		kind = "agreement_rejected"
	}
	n.record(ctx, event{Kind: kind, AgreementID: id, Peer: a.Proposer, Actor: "operator:" + role, Detail: reason})
	return &rec, nil
}

// receiveDecision completes a proposed agreement with the responder's
// countersignature, after checking it covers the exact body we signed.
func (n *Node) receiveDecision(ctx context.Context, from string, pub ed25519.PublicKey, d *tandemv1.AgreementDecision) error {
	var rec tandemv1.AgreementRecord
	if err := n.st.getProto("agr/"+d.AgreementId, &rec); err != nil {
		return fmt.Errorf("%w: agreement %s", err, d.AgreementId)
	}
	if rec.Agreement.Proposer != n.cfg.Name || rec.Agreement.Responder != from {
		return fmt.Errorf("%w: %s may not decide agreement %s", protocol.ErrNotAllowed, from, d.AgreementId)
	}
	if rec.State != "pending" {
		return fmt.Errorf("%w: agreement %s already %s", protocol.ErrReplay, d.AgreementId, rec.State)
	}
	if !bytes.Equal(d.AgreementDigest, protocol.Digest(rec.Body)) {
		return fmt.Errorf("%w: decision is for a different agreement body", errInvalid)
	}
	kind := "agreement_rejected"
	if d.Accepted {
		pc, _ := n.peerConfig(from)
		if err := protocol.VerifyDetached(pub, pc.Fingerprint, agreementType, rec.Body, d.ResponderSignature); err != nil {
			n.metrics.badInput.WithLabelValues("bad_signature").Inc()
			return err
		}
		rec.State, rec.ResponderSignature, rec.ResponderKey = "active", d.ResponderSignature, pub
		kind = "agreement_accepted"
	} else {
		rec.State, rec.Reason = "rejected", d.Reason
	}
	if err := n.st.putProto("agr/"+d.AgreementId, &rec); err != nil {
		return err
	}
	n.record(ctx, event{Kind: kind, AgreementID: d.AgreementId, Peer: from, Actor: "peer:" + from, Detail: d.Reason})
	return nil
}

// agreements lists stored agreements, marking expired ones.
func (n *Node) agreements() ([]*tandemv1.AgreementRecord, error) {
	var out []*tandemv1.AgreementRecord
	now := time.Now().Unix()
	err := n.st.scan("agr/", func(_ string, b []byte) error {
		var r tandemv1.AgreementRecord
		if err := proto.Unmarshal(b, &r); err != nil {
			return err
		}
		if r.State == "active" && now >= r.Agreement.ExpiresUnix {
			r.State = "expired"
		}
		out = append(out, &r)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Agreement.CreatedUnix < out[j].Agreement.CreatedUnix })
	return out, err
}

func (n *Node) agreement(id string) (*tandemv1.AgreementRecord, error) {
	var r tandemv1.AgreementRecord
	if err := n.st.getProto("agr/"+id, &r); err != nil {
		return nil, fmt.Errorf("%w: agreement %s", err, id)
	}
	if r.State == "active" && time.Now().Unix() >= r.Agreement.ExpiresUnix {
		r.State = "expired"
	}
	return &r, nil
}

// findAgreement picks the newest active agreement with peer allowing kind.
func (n *Node) findAgreement(peerName, kind string) (*tandemv1.AgreementRecord, error) {
	all, err := n.agreements()
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		a := all[i]
		if a.State != "active" {
			continue
		}
		if (a.Agreement.Proposer == peerName || a.Agreement.Responder == peerName) && contains(a.Agreement.JobKinds, kind) {
			return a, nil
		}
	}
	for i := len(all) - 1; i >= 0; i-- { // only expired ones: say so
		a := all[i]
		if a.State == "expired" && (a.Agreement.Proposer == peerName || a.Agreement.Responder == peerName) && contains(a.Agreement.JobKinds, kind) {
			return nil, fmt.Errorf("%w: %s with %s", protocol.ErrAgreementExpired, a.Agreement.Id, peerName)
		}
	}
	return nil, fmt.Errorf("%w with %s for %s", protocol.ErrNoAgreement, peerName, kind)
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// recordExpiries writes one agreement_expired audit entry per agreement
// whose expiry has passed (checked at start and every minute). The entry's
// idempotency key is the agreement id, so it is written once.
func (n *Node) recordExpiries(ctx context.Context) {
	all, err := n.agreements()
	if err != nil {
		return
	}
	for _, a := range all {
		if a.State != "expired" {
			continue
		}
		peer := a.Agreement.Proposer
		if peer == n.cfg.Name {
			peer = a.Agreement.Responder
		}
		n.record(ctx, event{Kind: "agreement_expired", AgreementID: a.Agreement.Id, Peer: peer, Once: a.Agreement.Id,
			Detail: "expired " + time.Unix(a.Agreement.ExpiresUnix, 0).UTC().Format(time.RFC3339)})
	}
}
