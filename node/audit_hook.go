package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tandem-dev/tandem/audit"
	"github.com/tandem-dev/tandem/audit/merkle"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// Audit logs (issue 4): one log per counterparty relationship
// ("peer/<name>") holds every event involving that peer, so a partner's
// view of our checkpoints reveals nothing about our work with others; the
// "root" log holds local events (start/stop, datasets, keys).
const rootLog = "root"

func peerLog(peer string) string { return "peer/" + peer }

// event is one thing the node records in its audit log.
type event struct {
	Kind        string
	JobID       string
	AgreementID string
	Peer        string
	Actor       string // "operator:<role>", "peer:<name>" or "" for the node itself
	Detail      string // free text without secrets or identifiers
	Attempt     uint32 // job attempt, for idempotent retries
	Once        string // idempotency key for non-job events recorded at most once
	Datasets    []string
	Release     *audit.Release
}

func openAudit(n *Node) (*audit.Store, error) {
	signer, err := audit.NewEd25519Signer(n.cfg.Name, n.id.priv)
	if err != nil {
		return nil, err
	}
	return audit.OpenStore(n.cfg.path(filepath.Join(n.cfg.DataDir, "audit")), audit.StoreOptions{Signer: signer, Origin: "tandem/" + n.cfg.Name})
}

// record appends an event to the audit log durably (synchronous Badger
// write, group-committed). A job event's (job, kind, attempt) is its
// idempotency key, so a retried append never duplicates an entry. Callers on
// the fail-closed path (before protocol data moves) must check the error.
func (n *Node) record(ctx context.Context, ev event) error {
	if n.audit == nil {
		return fmt.Errorf("node: audit log not open")
	}
	e := audit.Entry{Kind: audit.Kind(ev.Kind), JobID: ev.JobID, AgreementID: ev.AgreementID, Peer: ev.Peer,
		DatasetDigests: ev.Datasets, Release: ev.Release, Actor: audit.Actor{Kind: audit.ActorNode, Name: n.cfg.Name}}
	if role, ok := strings.CutPrefix(ev.Actor, "operator:"); ok {
		e.Actor = audit.Actor{Kind: audit.ActorOperator, Role: role, Name: role + "-token"}
	} else if p, ok := strings.CutPrefix(ev.Actor, "peer:"); ok {
		e.Actor = audit.Actor{Kind: audit.ActorPeer, Name: p}
	}
	if ev.Detail != "" {
		e.Detail = map[string]string{"detail": ev.Detail}
	}
	log := rootLog
	if ev.Peer != "" {
		log = peerLog(ev.Peer)
	}
	var key audit.IdemKey
	switch {
	case ev.Once != "":
		key = audit.IdemKey{Job: ev.Once, Event: ev.Kind}
	case ev.JobID != "":
		key = audit.IdemKey{Job: ev.JobID, Event: ev.Kind, Attempt: ev.Attempt}
	}
	if _, _, err := n.audit.Append(context.WithoutCancel(ctx), log, key, e); err != nil {
		n.log.ErrorContext(ctx, "audit append failed", "kind", ev.Kind, "job", ev.JobID, "err", err)
		return fmt.Errorf("node: audit: %w", err)
	}
	return nil
}

func (s *controlServer) AuditTail(ctx context.Context, req *tandemv1.AuditTailRequest) (*tandemv1.AuditTailResponse, error) {
	st := s.n.audit
	logs := []string{req.Log}
	if req.Log == "" {
		var err error
		if logs, err = st.Logs(); err != nil {
			return nil, toStatus(err)
		}
	}
	limit := uint64(req.Limit)
	if limit == 0 {
		limit = 50
	}
	out := &tandemv1.AuditTailResponse{}
	for _, l := range logs {
		size, err := st.Size(l)
		if err != nil {
			return nil, toStatus(fmt.Errorf("%w: log %s", errNotFound, l))
		}
		from := req.Since
		if req.JobId == "" && size > limit && size-limit > from {
			from = size - limit
		}
		if from >= size {
			continue
		}
		es, err := st.Entries(l, from, size)
		if err != nil {
			return nil, toStatus(err)
		}
		for _, e := range es {
			if req.JobId != "" && e.JobID != req.JobId {
				continue
			}
			b, _ := json.Marshal(e)
			out.Entries = append(out.Entries, &tandemv1.AuditEntry{Log: l, Seq: e.Seq, EntryJson: b})
		}
	}
	return out, nil
}

func (s *controlServer) AuditExport(ctx context.Context, req *tandemv1.AuditExportRequest) (*tandemv1.AuditExportResponse, error) {
	n := s.n
	if !filepath.IsAbs(req.Out) {
		return nil, toStatus(fmt.Errorf("%w: --out must be an absolute path", errInvalid))
	}
	logs, err := n.audit.Logs()
	if err != nil {
		return nil, toStatus(err)
	}
	// Record the export first, so the bundle contains its own export entry.
	if err := n.record(ctx, event{Kind: "audit_export", Actor: "operator:" + callerRole(ctx), Detail: req.Out}); err != nil {
		return nil, toStatus(err)
	}
	out := &tandemv1.AuditExportResponse{}
	for _, l := range logs {
		dir := filepath.Join(req.Out, strings.ReplaceAll(l, "/", "_"))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, toStatus(err)
		}
		if err := audit.Export(ctx, n.audit, l, dir, req.Since); err != nil {
			return nil, toStatus(err)
		}
		if peer, ok := strings.CutPrefix(l, "peer/"); ok {
			if err := n.addPeerKey(dir, peer); err != nil {
				return nil, toStatus(err)
			}
		}
		out.Dirs = append(out.Dirs, dir)
	}
	signer, _ := audit.NewEd25519Signer(n.cfg.Name, n.id.priv)
	out.VerifierKey = signer.VerifierKey()
	return out, nil
}

// addPeerKey adds the peer's note verifier key to a relationship log's
// bundle, so an offline verifier can check the peer's co-signatures on
// receipts. The key is the one pinned (by fingerprint) for that peer.
func (n *Node) addPeerKey(dir, peer string) error {
	pub, err := n.peerPublicKey(peer)
	if err != nil {
		return nil // never exchanged a signed message: no co-signatures to check
	}
	v, err := audit.NewEd25519Verifier(peer, pub)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, audit.BundleKeys), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, v.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *controlServer) AuditShow(ctx context.Context, req *tandemv1.AuditShowRequest) (*tandemv1.AuditShowResponse, error) {
	st := s.n.audit
	log := req.Log
	if log == "" {
		log = rootLog
	}
	cp, err := st.Checkpoint(log)
	if err != nil {
		return nil, toStatus(err)
	}
	head, err := audit.OpenCheckpoint(cp, s.n.signer().Verifier())
	if err != nil {
		return nil, toStatus(err)
	}
	if req.Seq >= head.Size {
		return nil, toStatus(fmt.Errorf("%w: entry %d of log %s (size %d)", errNotFound, req.Seq, log, head.Size))
	}
	raw, err := st.EntryBytes(log, req.Seq, req.Seq+1)
	if err != nil {
		return nil, toStatus(err)
	}
	e, err := audit.ParseEntry(raw[0])
	if err != nil {
		return nil, toStatus(err)
	}
	proof, err := st.InclusionProof(log, req.Seq, head.Size)
	if err != nil {
		return nil, toStatus(err)
	}
	ej, _ := json.Marshal(e)
	out := &tandemv1.AuditShowResponse{Log: log, Seq: req.Seq, EntryJson: ej, Raw: raw[0], Checkpoint: cp}
	for _, h := range proof {
		out.Proof = append(out.Proof, append([]byte(nil), h[:]...))
	}
	out.Verified = merkle.VerifyInclusion(req.Seq, head.Size, merkle.HashLeaf(raw[0]), proof, head.Root) == nil
	return out, nil
}

// recordLogHeads folds each relationship log's current head into the root
// log (when it moved), so the node's own log commits to every
// relationship's history while partners only ever see their own log.
func (n *Node) recordLogHeads(ctx context.Context) {
	logs, err := n.audit.Logs()
	if err != nil {
		return
	}
	for _, l := range logs {
		if l == rootLog {
			continue
		}
		h, err := n.audit.Head(l)
		if err != nil {
			continue
		}
		n.mu.Lock()
		seen := n.heads[l]
		n.mu.Unlock()
		if seen == h.Size {
			continue
		}
		if n.record(ctx, event{Kind: "log_checkpoint", Detail: fmt.Sprintf("%s size=%d root=%x", l, h.Size, h.Root[:])}) == nil {
			n.mu.Lock()
			n.heads[l] = h.Size
			n.mu.Unlock()
		}
	}
}
