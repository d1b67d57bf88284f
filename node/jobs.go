package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

// Job states (DESIGN §5).
const (
	stateProposed  = "proposed"
	stateAccepted  = "accepted"
	stateRejected  = "rejected"
	stateRunning   = "running"
	stateSucceeded = "succeeded"
	stateFailed    = "failed"
	stateCancelled = "cancelled"
)

func finalState(s string) bool {
	return s == stateRejected || s == stateSucceeded || s == stateFailed || s == stateCancelled
}

// jobRecord is a job as persisted in Badger under "job/<id>".
type jobRecord struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"`
	Peer        string          `json:"peer"`
	Role        string          `json:"role"` // initiator or responder
	State       string          `json:"state"`
	Reason      string          `json:"reason,omitempty"`
	Phase       string          `json:"phase,omitempty"`
	Progress    float64         `json:"progress"`
	AgreementID string          `json:"agreement_id"`
	Created     int64           `json:"created_unix"`
	Updated     int64           `json:"updated_unix"`
	Attempt     int             `json:"attempt"`
	Proposal    []byte          `json:"proposal"` // marshaled tandemv1.Signed proposal, as received/sent
	Result      json.RawMessage `json:"result,omitempty"`
}

func (r *jobRecord) proposal() (*tandemv1.JobProposal, error) {
	var s tandemv1.Signed
	if err := proto.Unmarshal(r.Proposal, &s); err != nil {
		return nil, fmt.Errorf("node: job %s: stored proposal: %w", r.ID, err)
	}
	var p tandemv1.JobProposal
	if err := proto.Unmarshal(s.Body, &p); err != nil {
		return nil, fmt.Errorf("node: job %s: stored proposal: %w", r.ID, err)
	}
	return &p, nil
}

// proposalBody is the exact signed proposal body (what the spec digest of
// the receipt covers).
func (r *jobRecord) proposalBody() []byte {
	var s tandemv1.Signed
	if proto.Unmarshal(r.Proposal, &s) != nil {
		return nil
	}
	return s.Body
}

func (r *jobRecord) toProto() *tandemv1.JobState {
	return &tandemv1.JobState{
		Id: r.ID, Kind: r.Kind, Peer: r.Peer, Role: r.Role, State: r.State, Reason: r.Reason,
		Progress: r.Progress, Phase: r.Phase, CreatedUnix: r.Created, UpdatedUnix: r.Updated,
		AgreementId: r.AgreementID, ResultJson: r.Result,
	}
}

// jobKind runs one kind of job on either side. Implementations get a
// transcript-recording transport and report progress; they return the
// kind's result summary (stored as JSON and shown by `job result`).
type jobKind interface {
	initiate(ctx context.Context, j *jobRun) (any, error)
	respond(ctx context.Context, j *jobRun) (any, error)
}

// jobRun is what a running job's kind code sees.
type jobRun struct {
	n        *Node
	rec      *jobRecord
	prop     *tandemv1.JobProposal
	t        *protocol.Transcript
	peerKey  []byte
	progress func(phase string, p float64)
}

// jobManager owns job records, their runners and watchers.
type jobManager struct {
	n       *Node
	mu      sync.Mutex
	cancels map[string]context.CancelFunc
	changed map[string]chan struct{} // closed and replaced on every update
	wg      sync.WaitGroup
	closing bool
	kinds   map[string]jobKind
}

func newJobManager(n *Node) *jobManager {
	return &jobManager{
		n: n, cancels: map[string]context.CancelFunc{}, changed: map[string]chan struct{}{},
		kinds: map[string]jobKind{"ping": pingKind{}, "psi": psiKind{}, "stats": statsKind{}, "train": trainKind{}, "score": scoreKind{}},
	}
}

func newJobID() string {
	var b [8]byte
	rand.Read(b[:])
	return "job-" + hex.EncodeToString(b[:])
}

func (m *jobManager) get(id string) (*jobRecord, error) {
	var r jobRecord
	if err := m.n.st.getJSON("job/"+id, &r); err != nil {
		if errors.Is(err, errNotFound) {
			return nil, fmt.Errorf("%w: job %s", errNotFound, id)
		}
		return nil, err
	}
	return &r, nil
}

func (m *jobManager) list() ([]*jobRecord, error) {
	var out []*jobRecord
	err := m.n.st.scan("job/", func(_ string, b []byte) error {
		var r jobRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		out = append(out, &r)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created < out[j].Created })
	return out, err
}

// put stores a new record.
func (m *jobManager) put(r *jobRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.Updated = time.Now().Unix()
	if err := m.n.st.putJSON("job/"+r.ID, r); err != nil {
		return err
	}
	m.broadcastLocked(r.ID)
	return nil
}

// update applies fn to the stored record under the manager lock and
// persists it. A final state is never left again.
func (m *jobManager) update(id string, fn func(r *jobRecord)) (*jobRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.get(id)
	if err != nil {
		return nil, err
	}
	before := r.State
	fn(r)
	if finalState(before) && r.State != before {
		return r, fmt.Errorf("node: job %s is already %s", id, before)
	}
	r.Updated = time.Now().Unix()
	if err := m.n.st.putJSON("job/"+id, r); err != nil {
		return nil, err
	}
	if !finalState(before) && finalState(r.State) {
		m.n.metrics.jobs.WithLabelValues(r.Kind, r.State).Inc()
		// The job's checkpoint state holds secrets (PSI key seeds): gone
		// with the job, whatever its outcome.
		os.RemoveAll(filepath.Join(m.n.cfg.path(m.n.cfg.DataDir), "jobs", id, "state"))
	}
	m.broadcastLocked(id)
	return r, nil
}

func (m *jobManager) broadcastLocked(id string) {
	if ch, ok := m.changed[id]; ok {
		close(ch)
	}
	m.changed[id] = make(chan struct{})
}

// watch returns a channel closed at the next change of job id.
func (m *jobManager) watch(id string) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch, ok := m.changed[id]
	if !ok {
		ch = make(chan struct{})
		m.changed[id] = ch
	}
	return ch
}

// track registers a running job's cancel function; false if shutting down
// or the job already runs here.
func (m *jobManager) track(id string, cancel context.CancelFunc) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return false
	}
	if _, ok := m.cancels[id]; ok {
		return false
	}
	m.cancels[id] = cancel
	m.wg.Add(1)
	return true
}

func (m *jobManager) untrack(id string) {
	m.mu.Lock()
	delete(m.cancels, id)
	m.mu.Unlock()
	m.wg.Done()
}

func (m *jobManager) cancelRunning(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.cancels[id]; ok {
		c()
	}
}

func (m *jobManager) isClosing() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closing
}

// stopAll interrupts every runner for shutdown; jobs stay "running" in the
// store and resume when the node starts again.
func (m *jobManager) stopAll() {
	m.mu.Lock()
	m.closing = true
	for _, c := range m.cancels {
		c()
	}
	m.mu.Unlock()
}

func (m *jobManager) wait() { m.wg.Wait() }

// resume restarts the initiator side of every job a previous run left
// accepted or running. Responders wait for their initiator to reconnect.
func (m *jobManager) resume(ctx context.Context) {
	jobs, err := m.list()
	if err != nil {
		m.n.log.ErrorContext(ctx, "list jobs for resume", "err", err)
		return
	}
	for _, r := range jobs {
		if r.Role == "initiator" && (r.State == stateAccepted || r.State == stateRunning) {
			m.n.log.InfoContext(ctx, "resuming job", "job", r.ID, "kind", r.Kind, "attempt", r.Attempt+1)
			m.startInitiator(r.ID)
		}
	}
}

// startInitiator runs the initiator side of an accepted job in the
// background.
func (m *jobManager) startInitiator(id string) {
	ctx, cancel := context.WithCancel(context.Background())
	if !m.track(id, cancel) {
		cancel()
		return
	}
	go func() {
		defer m.untrack(id)
		defer cancel()
		m.runInitiator(ctx, id)
	}()
}

func (m *jobManager) runInitiator(ctx context.Context, id string) {
	n := m.n
	rec, err := m.update(id, func(r *jobRecord) { r.State = stateRunning; r.Attempt++; r.Phase = "connecting" })
	if err != nil {
		n.log.Error("start job", "job", id, "err", err)
		return
	}
	startKind := "job_started"
	if rec.Attempt > 1 {
		startKind = "job_resumed"
	}
	if err := n.record(ctx, event{Kind: startKind, JobID: id, AgreementID: rec.AgreementID, Peer: rec.Peer, Attempt: uint32(rec.Attempt)}); err != nil {
		m.finish(ctx, rec, nil, err) // fail closed
		return
	}
	if err := n.checkInputsUnchanged(rec); err != nil {
		m.finish(ctx, rec, nil, err)
		return
	}
	kind := m.kinds[rec.Kind]
	prop, err := rec.proposal()
	if err != nil {
		m.finish(ctx, rec, nil, err)
		return
	}
	client, err := n.dial(rec.Peer)
	if err != nil {
		m.finish(ctx, rec, nil, err)
		return
	}
	pc, _ := n.peerConfig(rec.Peer)
	var result any
	// A peer that is briefly unreachable (restarting) is retried; the
	// protocol itself restarts from the beginning of the job with the same
	// persisted job seed, so a resumed job gives the same result.
	for attempt := 0; ; attempt++ {
		var stream tandemv1.PeerService_ExchangeClient
		sctx, scancel := context.WithCancel(ctx)
		stream, err = client.Exchange(sctx)
		if err == nil {
			// The open frame carries the spec digest: the responder refuses
			// to (re)start a job whose signed spec differs from its own copy.
			err = stream.Send(&tandemv1.Frame{JobId: id, Step: "open", Payload: protocol.Digest(rec.proposalBody()), Seq: uint64(rec.Attempt)})
		}
		if err == nil {
			tr := newStreamTransport(stream, id, n.metrics)
			run := &jobRun{n: n, rec: rec, prop: prop, t: protocol.NewTranscript(tr, id, true), progress: m.progressFunc(id)}
			run.peerKey, _ = n.peerPublicKey(rec.Peer)
			result, err = runSide(sctx, n.log, id, func() (any, error) { return kind.initiate(sctx, run) })
			if err == nil {
				result, err = n.withReceipt(sctx, run, result)
			}
			if err == nil {
				stream.CloseSend()
			}
			tr.close()
		}
		scancel()
		if err == nil || ctx.Err() != nil || attempt >= 30 || !retryable(err) {
			break
		}
		m.update(id, func(r *jobRecord) { r.Phase = fmt.Sprintf("waiting for %s (%v)", pc.Name, shortErr(err)) })
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if ctx.Err() != nil && m.isClosing() {
		return // shutdown: stays running, resumes on restart
	}
	m.finish(ctx, rec, result, err)
}

// withReceipt runs the receipt exchange and returns the result with the
// receipt summary added under "receipt".
func (n *Node) withReceipt(ctx context.Context, j *jobRun, result any) (any, error) {
	info, err := n.cosign(ctx, j, result)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(result)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["receipt"] = info
	return m, nil
}

// finish moves a job to its final state, records it and tells the peer.
func (m *jobManager) finish(ctx context.Context, rec *jobRecord, result any, err error) {
	n := m.n
	state, reason := stateSucceeded, ""
	var resJSON []byte
	if err != nil {
		state, reason = stateFailed, shortErr(err)
		if errors.Is(err, context.Canceled) {
			state, reason = stateCancelled, "cancelled by operator"
		}
	} else if result != nil {
		resJSON, _ = json.Marshal(result)
	}
	_, uerr := m.update(rec.ID, func(r *jobRecord) {
		if finalState(r.State) {
			return
		}
		r.State, r.Reason, r.Progress, r.Phase = state, reason, 1, ""
		if resJSON != nil {
			r.Result = resJSON
		}
	})
	if uerr != nil {
		return
	}
	n.log.Info("job finished", "job", rec.ID, "kind", rec.Kind, "role", rec.Role, "state", state, "reason", reason)
	n.record(context.WithoutCancel(ctx), event{Kind: "job_finished", JobID: rec.ID, AgreementID: rec.AgreementID, Peer: rec.Peer, Detail: strings.TrimSpace(state + " " + reason), Attempt: uint32(rec.Attempt)})
	if rec.Role == "initiator" && state != stateSucceeded {
		n.notifyPeer(rec.Peer, rec.ID, state, reason)
	}
}

// progressFunc returns a progress reporter for job id; it may be called
// from several goroutines.
func (m *jobManager) progressFunc(id string) func(string, float64) {
	var mu sync.Mutex
	var last time.Time
	return func(phase string, p float64) {
		// Throttle store writes: progress is for humans.
		mu.Lock()
		if time.Since(last) < 200*time.Millisecond && p < 1 {
			mu.Unlock()
			return
		}
		last = time.Now()
		mu.Unlock()
		m.update(id, func(r *jobRecord) { r.Phase, r.Progress = phase, p })
	}
}

// shortErr is an error text for job records: the error chain's message,
// which by house rule never carries secrets or identifiers.
func shortErr(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…" // not half a character
	}
	return s
}
