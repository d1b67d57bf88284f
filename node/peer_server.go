package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

// peerServer implements PeerService. The caller's identity is always the
// pinned name of its TLS key, never a field of the request.
type peerServer struct {
	tandemv1.UnimplementedPeerServiceServer
	n *Node
}

// callerPeer returns the pinned name and fingerprint of the TLS client.
func (n *Node) callerPeer(ctx context.Context) (name, fp string, err error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", "", status.Error(codes.Unauthenticated, "no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return "", "", status.Error(codes.Unauthenticated, "no client certificate")
	}
	pub, ok := ti.State.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return "", "", status.Error(codes.Unauthenticated, "client key is not Ed25519")
	}
	fp = Fingerprint(pub)
	name, ok = n.pinnedByFingerprint(fp)
	if !ok {
		// The handshake already refuses unpinned keys; a pin removed since
		// the connection was made lands here.
		n.metrics.badInput.WithLabelValues("unpinned_peer").Inc()
		return "", "", status.Error(codes.PermissionDenied, ErrUnpinnedPeer.Error())
	}
	return name, fp, nil
}

// openFrom verifies a signed message from a pinned peer and remembers the
// peer's public key for later signature checks.
func (n *Node) openFrom(peerName, fp string, sig *tandemv1.Signed, m proto.Message) error {
	if err := protocol.Open(sig, fp, m); err != nil {
		n.metrics.badInput.WithLabelValues("bad_signature").Inc()
		n.log.Warn("refused signed message", "peer", peerName, "err", err)
		return err
	}
	if err := n.st.putJSON("peerkey/"+peerName, []byte(sig.PublicKey)); err != nil {
		return err
	}
	return nil
}

func (n *Node) peerPublicKey(name string) (ed25519.PublicKey, error) {
	var b []byte
	if err := n.st.getJSON("peerkey/"+name, &b); err != nil {
		return nil, err
	}
	pc, ok := n.peerConfig(name)
	if !ok || !fingerprintEqual(Fingerprint(b), pc.Fingerprint) {
		return nil, fmt.Errorf("node: stored key of %s no longer matches its pin", name)
	}
	return b, nil
}

func (s *peerServer) Hello(ctx context.Context, _ *tandemv1.HelloRequest) (*tandemv1.HelloResponse, error) {
	if _, _, err := s.n.callerPeer(ctx); err != nil {
		return nil, err
	}
	return &tandemv1.HelloResponse{Name: s.n.cfg.Name, Fingerprint: s.n.id.Fingerprint, Version: Version, TimeUnix: time.Now().Unix()}, nil
}

func (s *peerServer) ProposeAgreement(ctx context.Context, sig *tandemv1.Signed) (*tandemv1.Ack, error) {
	name, fp, err := s.n.callerPeer(ctx)
	if err != nil {
		return nil, err
	}
	var a tandemv1.Agreement
	if err := s.n.openFrom(name, fp, sig, &a); err != nil {
		return nil, toStatus(err)
	}
	if err := s.n.receiveAgreement(ctx, name, sig, &a); err != nil {
		return nil, toStatus(err)
	}
	return &tandemv1.Ack{}, nil
}

func (s *peerServer) DecideAgreement(ctx context.Context, sig *tandemv1.Signed) (*tandemv1.Ack, error) {
	name, fp, err := s.n.callerPeer(ctx)
	if err != nil {
		return nil, err
	}
	var d tandemv1.AgreementDecision
	if err := s.n.openFrom(name, fp, sig, &d); err != nil {
		return nil, toStatus(err)
	}
	if err := s.n.receiveDecision(ctx, name, sig.PublicKey, &d); err != nil {
		return nil, toStatus(err)
	}
	return &tandemv1.Ack{}, nil
}

func (s *peerServer) ProposeJob(ctx context.Context, sig *tandemv1.Signed) (*tandemv1.Signed, error) {
	name, fp, err := s.n.callerPeer(ctx)
	if err != nil {
		return nil, err
	}
	var p tandemv1.JobProposal
	if err := s.n.openFrom(name, fp, sig, &p); err != nil {
		return nil, toStatus(err)
	}
	dec, err := s.n.receiveProposal(ctx, name, sig, &p)
	if err != nil {
		return nil, toStatus(err)
	}
	out, err := protocol.Seal(s.n.id, dec)
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

func (s *peerServer) Notify(ctx context.Context, sig *tandemv1.Signed) (*tandemv1.Ack, error) {
	name, fp, err := s.n.callerPeer(ctx)
	if err != nil {
		return nil, err
	}
	var note tandemv1.JobNotice
	if err := s.n.openFrom(name, fp, sig, &note); err != nil {
		return nil, toStatus(err)
	}
	rec, err := s.n.jobs.get(note.JobId)
	if err != nil || rec.Peer != name {
		return nil, status.Errorf(codes.NotFound, "unknown job %s", note.JobId)
	}
	state := stateFailed
	if note.Event == "cancel" || note.Event == stateCancelled {
		state = stateCancelled
	}
	s.n.jobs.cancelRunning(rec.ID)
	s.n.jobs.update(rec.ID, func(r *jobRecord) {
		if !finalState(r.State) {
			r.State, r.Reason = state, "peer: "+note.Reason
		}
	})
	s.n.record(ctx, event{Kind: "job_finished", JobID: rec.ID, Peer: name, Detail: state + " by peer: " + note.Reason})
	return &tandemv1.Ack{}, nil
}

// Exchange runs the responder side of a job over the stream the
// initiator opened.
func (s *peerServer) Exchange(stream tandemv1.PeerService_ExchangeServer) error {
	n := s.n
	ctx := stream.Context()
	name, _, err := n.callerPeer(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.Step != "open" {
		n.metrics.badInput.WithLabelValues("malformed").Inc()
		return status.Error(codes.InvalidArgument, "first frame must open a job")
	}
	rec, err := n.jobs.get(first.JobId)
	if err != nil || rec.Peer != name || rec.Role != "responder" {
		return status.Errorf(codes.NotFound, "unknown job %s", first.JobId)
	}
	if finalState(rec.State) {
		return status.Errorf(codes.FailedPrecondition, "job %s is %s", rec.ID, rec.State)
	}
	if !bytes.Equal(first.Payload, protocol.Digest(rec.proposalBody())) {
		n.metrics.badInput.WithLabelValues("malformed").Inc()
		return status.Errorf(codes.FailedPrecondition, "job %s: spec digest differs from the accepted proposal", rec.ID)
	}
	if err := n.checkInputsUnchanged(rec); err != nil {
		n.jobs.finish(ctx, rec, nil, err)
		return toStatus(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A reconnect after the initiator restarted replaces a stale runner.
	for i := 0; !n.jobs.track(rec.ID, cancel); i++ {
		if i == 50 || n.jobs.isClosing() {
			return status.Error(codes.Unavailable, "job busy or node stopping")
		}
		n.jobs.cancelRunning(rec.ID)
		time.Sleep(100 * time.Millisecond)
	}
	defer n.jobs.untrack(rec.ID)
	resumed := rec.Attempt > 0
	rec, err = n.jobs.update(rec.ID, func(r *jobRecord) { r.State = stateRunning; r.Attempt++ })
	if err != nil {
		return toStatus(err)
	}
	kind := "job_started"
	if resumed {
		kind = "job_resumed"
	}
	if err := n.record(ctx, event{Kind: kind, JobID: rec.ID, AgreementID: rec.AgreementID, Peer: name, Attempt: uint32(rec.Attempt)}); err != nil {
		return toStatus(err) // fail closed: nothing is sent before the start is on record
	}
	prop, err := rec.proposal()
	if err != nil {
		return toStatus(err)
	}
	tr := newStreamTransport(stream, rec.ID, n.metrics)
	defer tr.close()
	run := &jobRun{n: n, rec: rec, prop: prop, t: protocol.NewTranscript(tr, rec.ID, false), progress: n.jobs.progressFunc(rec.ID)}
	run.peerKey, _ = n.peerPublicKey(name)
	result, err := runSide(rctx, n.log, rec.ID, func() (any, error) { return n.jobs.kinds[rec.Kind].respond(rctx, run) })
	if err == nil && !n.silentPeer.Load() {
		result, err = n.withReceipt(rctx, run, result)
	}
	if err != nil && (rctx.Err() != nil || isStreamBreak(err)) {
		// The initiator went away or we are stopping: the job stays
		// running and resumes when the initiator reconnects.
		return status.Error(codes.Aborted, "job interrupted")
	}
	n.jobs.finish(ctx, rec, result, err)
	if err != nil {
		return toStatus(err)
	}
	return nil
}

// isStreamBreak tells transport loss from protocol failure.
func isStreamBreak(err error) bool {
	var st interface{ GRPCStatus() *status.Status }
	if errors.As(err, &st) {
		switch st.GRPCStatus().Code() {
		case codes.Canceled, codes.Unavailable, codes.Aborted:
			return true
		}
	}
	return errors.Is(err, context.Canceled)
}
