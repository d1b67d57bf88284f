package node

import (
	"context"
	"fmt"
	"sort"
	"time"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// controlServer implements ControlService for operators. Authentication
// and role checks happen in the interceptor (auth.go).
type controlServer struct {
	tandemv1.UnimplementedControlServiceServer
	n *Node
}

func (s *controlServer) Status(ctx context.Context, _ *tandemv1.StatusRequest) (*tandemv1.StatusResponse, error) {
	n := s.n
	p, c, h := n.Addrs()
	return &tandemv1.StatusResponse{Name: n.cfg.Name, Fingerprint: n.id.Fingerprint, PeerAddr: p, ControlAddr: c, HttpAddr: h,
		Version: Version, StartedUnix: n.started.Unix(), Role: callerRole(ctx)}, nil
}

func (s *controlServer) AddPeer(ctx context.Context, req *tandemv1.AddPeerRequest) (*tandemv1.PeerInfo, error) {
	p := PeerConfig{Name: req.Name, Addr: req.Addr, Fingerprint: req.Fingerprint}
	if err := s.n.addPeer(p); err != nil {
		return nil, toStatus(fmt.Errorf("%w: %v", errInvalid, err))
	}
	s.n.record(ctx, event{Kind: "peer_pinned", Peer: p.Name, Actor: "operator:" + callerRole(ctx), Detail: p.Addr + " " + p.Fingerprint})
	s.n.recordConfigChange(ctx) // the pin rewrote the config; keep the digest current
	return &tandemv1.PeerInfo{Name: p.Name, Addr: p.Addr, Fingerprint: p.Fingerprint}, nil
}

func (s *controlServer) ListPeers(ctx context.Context, req *tandemv1.ListPeersRequest) (*tandemv1.ListPeersResponse, error) {
	s.n.mu.Lock()
	peers := append([]PeerConfig(nil), s.n.cfg.Peers...)
	s.n.mu.Unlock()
	out := &tandemv1.ListPeersResponse{}
	for _, p := range peers {
		info := &tandemv1.PeerInfo{Name: p.Name, Addr: p.Addr, Fingerprint: p.Fingerprint}
		if req.Check {
			info.Reachable, info.Error = s.n.checkPeer(ctx, p.Name)
		}
		out.Peers = append(out.Peers, info)
	}
	return out, nil
}

// checkPeer dials a peer's Hello with a short deadline.
func (n *Node) checkPeer(ctx context.Context, name string) (bool, string) {
	client, err := n.dial(name)
	if err != nil {
		return false, err.Error()
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	h, err := client.Hello(cctx, &tandemv1.HelloRequest{})
	if err != nil {
		return false, err.Error()
	}
	if h.Name != name {
		return false, fmt.Sprintf("peer calls itself %q", h.Name)
	}
	return true, ""
}

func (s *controlServer) ProposeAgreement(ctx context.Context, req *tandemv1.ProposeAgreementRequest) (*tandemv1.AgreementRecord, error) {
	rec, err := s.n.proposeAgreement(ctx, req.Peer, req.Yaml)
	return rec, toStatus(err)
}

func (s *controlServer) DecideAgreement(ctx context.Context, req *tandemv1.DecideAgreementRequest) (*tandemv1.AgreementRecord, error) {
	rec, err := s.n.decideAgreement(ctx, req.Id, req.Accept, req.Reason, callerRole(ctx))
	return rec, toStatus(err)
}

func (s *controlServer) ListAgreements(ctx context.Context, _ *tandemv1.ListAgreementsRequest) (*tandemv1.ListAgreementsResponse, error) {
	all, err := s.n.agreements()
	if err != nil {
		return nil, toStatus(err)
	}
	return &tandemv1.ListAgreementsResponse{Agreements: all}, nil
}

func (s *controlServer) GetAgreement(ctx context.Context, req *tandemv1.GetAgreementRequest) (*tandemv1.AgreementRecord, error) {
	rec, err := s.n.agreement(req.Id)
	return rec, toStatus(err)
}

func (s *controlServer) SubmitJob(ctx context.Context, req *tandemv1.SubmitJobRequest) (*tandemv1.JobState, error) {
	rec, err := s.n.submitJob(ctx, req, callerRole(ctx))
	if err != nil {
		return nil, toStatus(err)
	}
	return rec.toProto(), nil
}

func (s *controlServer) ListJobs(ctx context.Context, _ *tandemv1.ListJobsRequest) (*tandemv1.ListJobsResponse, error) {
	jobs, err := s.n.jobs.list()
	if err != nil {
		return nil, toStatus(err)
	}
	out := &tandemv1.ListJobsResponse{}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, j.toProto())
	}
	sort.SliceStable(out.Jobs, func(i, j int) bool { return out.Jobs[i].CreatedUnix < out.Jobs[j].CreatedUnix })
	return out, nil
}

func (s *controlServer) GetJob(ctx context.Context, req *tandemv1.GetJobRequest) (*tandemv1.JobState, error) {
	rec, err := s.n.jobs.get(req.Id)
	if err != nil {
		return nil, toStatus(err)
	}
	return rec.toProto(), nil
}

func (s *controlServer) CancelJob(ctx context.Context, req *tandemv1.GetJobRequest) (*tandemv1.JobState, error) {
	n := s.n
	rec, err := n.jobs.get(req.Id)
	if err != nil {
		return nil, toStatus(err)
	}
	if finalState(rec.State) {
		return rec.toProto(), nil
	}
	n.jobs.cancelRunning(rec.ID)
	rec, err = n.jobs.update(rec.ID, func(r *jobRecord) {
		if !finalState(r.State) {
			r.State, r.Reason = stateCancelled, "cancelled by operator"
		}
	})
	if err != nil {
		return nil, toStatus(err)
	}
	n.record(ctx, event{Kind: "job_finished", JobID: rec.ID, Peer: rec.Peer, Actor: "operator:" + callerRole(ctx), Detail: "cancelled"})
	n.notifyPeer(rec.Peer, rec.ID, "cancel", "cancelled by "+n.cfg.Name+" operator")
	return rec.toProto(), nil
}

func (s *controlServer) WatchJob(req *tandemv1.GetJobRequest, stream tandemv1.ControlService_WatchJobServer) error {
	n := s.n
	for {
		ch := n.jobs.watch(req.Id)
		rec, err := n.jobs.get(req.Id)
		if err != nil {
			return toStatus(err)
		}
		if err := stream.Send(rec.toProto()); err != nil {
			return err
		}
		if finalState(rec.State) {
			return nil
		}
		select {
		case <-ch:
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-time.After(5 * time.Second): // heartbeat
		}
	}
}
