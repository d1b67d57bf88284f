package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tandem-dev/tandem/audit"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

// submitJob is the initiator's path: check the agreement locally, sign a
// proposal with a fresh nonce and expiry, persist it, have the peer accept
// it, then run it in the background.
func (n *Node) submitJob(ctx context.Context, req *tandemv1.SubmitJobRequest, role string) (*jobRecord, error) {
	if _, ok := n.jobs.kinds[req.Kind]; !ok {
		return nil, fmt.Errorf("%w: unknown job kind %q", errInvalid, req.Kind)
	}
	if _, ok := n.peerConfig(req.Peer); !ok {
		return nil, fmt.Errorf("%w: unknown peer %q", errInvalid, req.Peer)
	}
	if err := n.checkDisk(); err != nil {
		return nil, err
	}
	var agr *tandemv1.AgreementRecord
	var err error
	if req.AgreementId != "" {
		agr, err = n.agreement(req.AgreementId)
	} else {
		agr, err = n.findAgreement(req.Peer, req.Kind)
	}
	if errors.Is(err, protocol.ErrAgreementExpired) {
		n.recordExpiries(ctx)
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	p := &tandemv1.JobProposal{
		JobId: newJobID(), Kind: req.Kind, Initiator: n.cfg.Name, Responder: req.Peer, AgreementId: agr.Agreement.Id,
		Nonce: make([]byte, 16), CreatedUnix: now.Unix(), ExpiresUnix: now.Add(time.Duration(n.cfg.ProposalTTLSeconds) * time.Second).Unix(),
		Psi: req.Psi, Ping: req.Ping, Stats: req.Stats, Train: req.Train, Score: req.Score,
	}
	if _, err := rand.Read(p.Nonce); err != nil {
		return nil, err
	}
	if err := n.prepareProposal(p); err != nil {
		return nil, err
	}
	if err := protocol.CheckJob(agr, p, now); err != nil {
		if errors.Is(err, protocol.ErrAgreementExpired) {
			n.recordExpiries(ctx)
		}
		return nil, err
	}
	sig, err := protocol.Seal(n.id, p)
	if err != nil {
		return nil, err
	}
	sigBytes, _ := proto.Marshal(sig)
	rec := &jobRecord{ID: p.JobId, Kind: p.Kind, Peer: req.Peer, Role: "initiator", State: stateProposed, AgreementID: agr.Agreement.Id, Created: now.Unix(), Proposal: sigBytes}
	// Fail closed: the intent is durable before anything reaches the peer.
	if err := n.jobs.put(rec); err != nil {
		return nil, err
	}
	if err := n.record(ctx, event{Kind: "job_proposed", JobID: rec.ID, AgreementID: rec.AgreementID, Peer: req.Peer, Actor: "operator:" + role, Detail: p.Kind}); err != nil {
		return n.rejectLocal(ctx, rec, err)
	}
	client, err := n.dial(req.Peer)
	if err != nil {
		return n.rejectLocal(ctx, rec, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := client.ProposeJob(cctx, sig)
	if err != nil {
		return n.rejectLocal(ctx, rec, fmt.Errorf("peer %s refused the proposal: %w", req.Peer, err))
	}
	pc, _ := n.peerConfig(req.Peer)
	var dec tandemv1.JobDecision
	if err := n.openFrom(req.Peer, pc.Fingerprint, resp, &dec); err != nil {
		return n.rejectLocal(ctx, rec, err)
	}
	if dec.JobId != rec.ID || string(dec.ProposalDigest) != string(protocol.Digest(sig.Body)) {
		return n.rejectLocal(ctx, rec, fmt.Errorf("%w: decision does not answer this proposal", protocol.ErrBadSignature))
	}
	if !dec.Accepted {
		return n.rejectLocal(ctx, rec, fmt.Errorf("peer %s rejected the job: %s", req.Peer, dec.Reason))
	}
	rec, err = n.jobs.update(rec.ID, func(r *jobRecord) { r.State = stateAccepted })
	if err != nil {
		return nil, err
	}
	n.record(ctx, event{Kind: "job_accepted", JobID: rec.ID, AgreementID: rec.AgreementID, Peer: req.Peer, Actor: "peer:" + req.Peer})
	n.jobs.startInitiator(rec.ID)
	return rec, nil
}

func (n *Node) rejectLocal(ctx context.Context, rec *jobRecord, cause error) (*jobRecord, error) {
	r, err := n.jobs.update(rec.ID, func(r *jobRecord) { r.State, r.Reason = stateRejected, shortErr(cause) })
	if err != nil {
		return nil, err
	}
	n.record(ctx, event{Kind: "job_rejected", JobID: rec.ID, AgreementID: rec.AgreementID, Peer: rec.Peer, Detail: shortErr(cause)})
	return r, nil
}

// prepareProposal fills kind defaults and checks the initiator's own
// inputs before anything is signed.
func (n *Node) prepareProposal(p *tandemv1.JobProposal) error {
	switch p.Kind {
	case "ping":
		if p.Ping == nil {
			p.Ping = &tandemv1.PingParams{Rounds: 3}
		}
		if p.Ping.Rounds <= 0 || p.Ping.Rounds > 1000 {
			return fmt.Errorf("%w: ping rounds must be 1..1000", errInvalid)
		}
	case "psi":
		return n.preparePSI(p)
	case "stats":
		return n.prepareStats(p)
	case "train":
		return n.prepareTrain(p)
	case "score":
		return n.prepareScore(p)
	}
	return nil
}

// receiveProposal is the responder's gate: freshness, replay, agreement,
// local inputs. A policy refusal is a signed rejection (and recorded); a
// replayed or expired proposal is an error and creates no job.
func (n *Node) receiveProposal(ctx context.Context, from string, sig *tandemv1.Signed, p *tandemv1.JobProposal) (*tandemv1.JobDecision, error) {
	now := time.Now()
	dec := &tandemv1.JobDecision{JobId: p.JobId, ProposalDigest: protocol.Digest(sig.Body)}
	if p.Initiator != from || p.Responder != n.cfg.Name {
		n.metrics.badInput.WithLabelValues("malformed").Inc()
		return nil, fmt.Errorf("%w: proposal parties %s→%s do not match the connection", errInvalid, p.Initiator, p.Responder)
	}
	if err := protocol.CheckProposalFresh(p, now, time.Duration(n.cfg.ProposalTTLSeconds)*time.Second); err != nil {
		n.metrics.badInput.WithLabelValues("expired").Inc()
		n.log.WarnContext(ctx, "refused job proposal", "peer", from, "job", p.JobId, "err", err)
		return nil, err
	}
	if err := n.st.claimNonce(p.Nonce, p.JobId); err != nil {
		if errors.Is(err, errReplayed) {
			n.metrics.badInput.WithLabelValues("replay").Inc()
			n.log.WarnContext(ctx, "refused replayed job proposal", "peer", from, "job", p.JobId)
			return nil, fmt.Errorf("%w: nonce already used", protocol.ErrReplay)
		}
		return nil, err
	}
	if _, err := n.jobs.get(p.JobId); err == nil {
		n.metrics.badInput.WithLabelValues("replay").Inc()
		return nil, fmt.Errorf("%w: job id %s exists", protocol.ErrReplay, p.JobId)
	}
	sigBytes, _ := proto.Marshal(sig)
	rec := &jobRecord{ID: p.JobId, Kind: p.Kind, Peer: from, Role: "responder", AgreementID: p.AgreementId, Created: now.Unix(), Proposal: sigBytes}
	reason := ""
	if _, ok := n.jobs.kinds[p.Kind]; !ok {
		reason = "unknown job kind " + p.Kind
	} else if agr, err := n.agreement(p.AgreementId); err != nil {
		reason = protocol.ErrNoAgreement.Error()
	} else if err := protocol.CheckJob(agr, p, now); err != nil {
		reason = err.Error()
		if errors.Is(err, protocol.ErrAgreementExpired) {
			n.recordExpiries(ctx)
		}
	} else if err := n.checkResponderInputs(p); err != nil {
		reason = err.Error()
	} else if err := n.checkDisk(); err != nil {
		reason = err.Error()
	}
	if reason != "" {
		rec.State, rec.Reason = stateRejected, reason
		n.metrics.proposals.WithLabelValues("rejected").Inc()
	} else {
		rec.State = stateAccepted
		dec.Accepted = true
		n.metrics.proposals.WithLabelValues("accepted").Inc()
	}
	dec.Reason = reason
	if err := n.jobs.put(rec); err != nil {
		return nil, err
	}
	n.record(ctx, event{Kind: "job_proposed", JobID: p.JobId, AgreementID: p.AgreementId, Peer: from, Actor: "peer:" + from, Detail: p.Kind})
	if dec.Accepted {
		// Fail closed: no acceptance leaves this node unless it is on record.
		if err := n.record(ctx, event{Kind: "job_accepted", JobID: p.JobId, AgreementID: p.AgreementId, Peer: from}); err != nil {
			n.jobs.update(p.JobId, func(r *jobRecord) { r.State, r.Reason = stateFailed, "audit log unavailable" })
			return nil, err
		}
	} else {
		n.record(ctx, event{Kind: "job_rejected", JobID: p.JobId, AgreementID: p.AgreementId, Peer: from, Detail: reason})
		n.log.InfoContext(ctx, "rejected job proposal", "peer", from, "job", p.JobId, "reason", reason)
	}
	return dec, nil
}

func (n *Node) checkResponderInputs(p *tandemv1.JobProposal) error {
	if p.Kind == "psi" {
		return n.checkPSIResponder(p)
	}
	if p.Kind == "stats" {
		return n.checkStatsResponder(p)
	}
	if p.Kind == "train" {
		return n.checkTrainResponder(p)
	}
	if p.Kind == "score" {
		return n.checkScoreResponder(p)
	}
	return nil
}

// notifyPeer tells the peer a job ended badly or was cancelled (best
// effort: the peer also notices the closed stream).
func (n *Node) notifyPeer(peerName, jobID, event, reason string) {
	client, err := n.dial(peerName)
	if err != nil {
		return
	}
	sig, err := protocol.Seal(n.id, &tandemv1.JobNotice{JobId: jobID, Event: event, Reason: reason, TimeUnix: time.Now().Unix()})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.Notify(ctx, sig); err != nil {
		n.log.Warn("notify peer", "peer", peerName, "job", jobID, "err", err)
	}
}

// checkDisk refuses new work while the data directory is short of space,
// so a job never starts that could run the disk full mid-write.
func (n *Node) checkDisk() error {
	free, err := audit.FreeBytes(n.cfg.path(n.cfg.DataDir))
	if err != nil {
		return nil // unknown on this platform: do not block work
	}
	if int64(free) < n.cfg.MinFreeBytes {
		n.metrics.badInput.WithLabelValues("disk_low").Inc()
		return fmt.Errorf("%w: %d MiB free in %s, watermark %d MiB", errDiskLow, free>>20, n.cfg.DataDir, n.cfg.MinFreeBytes>>20)
	}
	return nil
}
