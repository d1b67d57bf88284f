package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/tandem-dev/tandem/audit"
	"github.com/tandem-dev/tandem/node/dataset"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
	"github.com/tandem-dev/tandem/psi"
)

// statsKind runs federated statistics jobs (issue 5) over the alignment of
// an earlier PSI job between the same nodes: the bank (initiator of both
// jobs) holds the group and label columns, the partner its features and
// the policy engine that approves every release.
type statsKind struct{}

// defaultStatsEpsilon is the ε per release when the agreement has a DP
// budget and the spec asks for none.
const defaultStatsEpsilon = 1.0

// epsMu serialises the ε accounting of all jobs of this process.
var epsMu sync.Mutex

// epsAccount is the ε spent under an agreement, stored at "eps/<id>".
type epsAccount struct {
	Spent    float64 `json:"spent"`
	Releases int     `json:"releases"`
}

// StatsJobResult is what `job result` shows for a stats job. The bank's
// side has the statistics; the partner's only what it released (no value,
// no match count).
type StatsJobResult struct {
	PSIJob        string                       `json:"psi_job"`
	Dataset       string                       `json:"dataset"`
	DatasetDigest string                       `json:"dataset_digest"`
	SpecDigest    string                       `json:"spec_digest"`
	Statistics    *protocol.StatsResult        `json:"statistics,omitempty"`
	Released      *protocol.StatsPartnerResult `json:"released,omitempty"`
	BytesSent     int64                        `json:"bytes_sent"`
	Transcript    string                       `json:"transcript_digest"`
}

func (n *Node) prepareStats(p *tandemv1.JobProposal) error {
	if p.Stats == nil || p.Stats.PsiJobId == "" {
		return fmt.Errorf("%w: stats needs --psi-job", errInvalid)
	}
	if _, err := protocol.ParseStatsSpec(p.Stats.SpecYaml); err != nil {
		return fmt.Errorf("%w: %v", errInvalid, err)
	}
	if _, _, err := n.statsPSIJob(p, "initiator", p.Responder); err != nil {
		return fmt.Errorf("%w: %v", errInvalid, err)
	}
	return nil
}

func (n *Node) checkStatsResponder(p *tandemv1.JobProposal) error {
	if p.Stats == nil {
		return errors.New("stats parameters missing")
	}
	_, _, err := n.statsPSIJob(p, "responder", p.Initiator)
	return err
}

// statsPSIJob finds and checks the PSI job a stats proposal runs over.
func (n *Node) statsPSIJob(p *tandemv1.JobProposal, role, peer string) (*jobRecord, *tandemv1.JobProposal, error) {
	return n.alignmentJob(p, "stats", p.Stats.PsiJobId, role, peer)
}

// statsInputs is what both sides of a stats job load.
type statsInputs struct {
	alignedInputs
	spec *protocol.StatsSpec
}

func (n *Node) loadStatsInputs(j *jobRun) (*statsInputs, error) {
	if j.prop.Stats == nil {
		return nil, errors.New("node: stats job without parameters")
	}
	spec, err := protocol.ParseStatsSpec(j.prop.Stats.SpecYaml)
	if err != nil {
		return nil, err
	}
	al, err := n.loadAligned(j, "stats", j.prop.Stats.PsiJobId)
	if err != nil {
		return nil, err
	}
	return &statsInputs{alignedInputs: al, spec: spec}, nil
}

func (statsKind) initiate(ctx context.Context, j *jobRun) (any, error) {
	n := j.n
	j.progress("loading", 0)
	in, err := n.loadStatsInputs(j)
	if err != nil {
		return nil, err
	}
	L := int(in.al.Length)
	cfg := protocol.StatsBankConfig{JobID: j.rec.ID, Spec: in.spec, Match: make([]bool, L), MinCellSize: in.agr.Agreement.MinCellSize}
	rows := make([]int64, 0, len(in.al.Rows))
	posOf := map[int64]int{}
	for i, pos := range in.al.Positions {
		cfg.Match[pos] = true
		r := int64(in.al.Rows[i])
		rows = append(rows, r)
		posOf[r] = int(pos)
	}
	slices.Sort(rows)
	if in.spec.GroupBy != "" {
		vals := make([]string, L)
		err := dataset.Rows(ctx, in.dspec, rows, func(row int64, rec map[string]string) error {
			v, ok := rec[in.spec.GroupBy]
			if !ok {
				return fmt.Errorf("node: stats: group_by column %q is not in dataset %s", in.spec.GroupBy, in.ds.Spec.Name)
			}
			if v = strings.TrimSpace(v); v == "" {
				v = "(missing)"
			}
			vals[posOf[row]] = v
			return nil
		})
		if err != nil {
			return nil, err
		}
		idx := map[string]int{}
		for i, v := range vals {
			if cfg.Match[i] {
				idx[v] = 0
			}
		}
		for v := range idx {
			cfg.GroupNames = append(cfg.GroupNames, v)
		}
		sort.Strings(cfg.GroupNames)
		if len(cfg.GroupNames) > protocol.MaxStatsGroups {
			return nil, fmt.Errorf("node: stats: group_by column %s has %d values among the matched rows (at most %d)", in.spec.GroupBy, len(cfg.GroupNames), protocol.MaxStatsGroups)
		}
		if len(cfg.GroupNames) == 0 {
			return nil, errors.New("node: stats: no matched rows to group")
		}
		for i, g := range cfg.GroupNames {
			idx[g] = i
		}
		cfg.Group = make([]int, L)
		for i, v := range vals {
			cfg.Group[i] = -1
			if cfg.Match[i] {
				cfg.Group[i] = idx[v]
			}
		}
	}
	if in.spec.NeedsLabel() {
		vals, present, err := dataset.LabelColumn(ctx, in.dspec, in.spec.Label)
		if err != nil {
			return nil, fmt.Errorf("node: stats: label column %s: %w", in.spec.Label, err)
		}
		cfg.Label = make([]int8, L)
		for i := range cfg.Label {
			cfg.Label[i] = -1
		}
		for i, pos := range in.al.Positions {
			r := in.al.Rows[i]
			if r >= uint64(len(vals)) || !present[r] {
				continue
			}
			switch vals[r] {
			case 0, 1:
				cfg.Label[pos] = int8(vals[r])
			default:
				return nil, fmt.Errorf("node: stats: label column %s must hold 0/1 values", in.spec.Label)
			}
		}
	}
	res, err := protocol.RunStatsBank(ctx, j.t, cfg, j.progress)
	if err != nil {
		return nil, err
	}
	return &StatsJobResult{PSIJob: in.psiRec.ID, Dataset: in.ds.Spec.Name, DatasetDigest: in.ds.Profile.Digest, SpecDigest: hex.EncodeToString(in.spec.Digest()),
		Statistics: res, BytesSent: j.t.BytesSent(), Transcript: fmt.Sprintf("%x", j.t.Digest())}, nil
}

func (statsKind) respond(ctx context.Context, j *jobRun) (any, error) {
	n := j.n
	j.progress("loading", 0)
	in, err := n.loadStatsInputs(j)
	if err != nil {
		return nil, err
	}
	L := int(in.al.Length)
	if uint64(len(in.al.Positions)) != in.al.Length {
		return nil, fmt.Errorf("node: stats: alignment maps %d of %d positions", len(in.al.Positions), in.al.Length)
	}
	data := &alignedData{ds: in.dspec, al: in.al, L: L, num: map[string][2]any{}, cat: map[string][]string{}}
	cfg := protocol.StatsPartnerConfig{JobID: j.rec.ID, Spec: in.spec, Length: L, Data: data,
		Policy: n.statsPolicy(j, in), OnRelease: n.statsRelease(j, in)}
	res, err := protocol.RunStatsPartner(ctx, j.t, cfg, j.progress)
	if err != nil {
		return nil, err
	}
	return &StatsJobResult{PSIJob: in.psiRec.ID, Dataset: in.ds.Spec.Name, DatasetDigest: in.ds.Profile.Digest, SpecDigest: hex.EncodeToString(in.spec.Digest()),
		Released: res, BytesSent: j.t.BytesSent(), Transcript: fmt.Sprintf("%x", j.t.Digest())}, nil
}

// grantColumns returns the columns an agreement grants for party's
// dataset, and whether the dataset is granted at all.
func grantColumns(a *tandemv1.Agreement, party, ds string) ([]string, bool) {
	for _, d := range a.Datasets {
		if d.Party == party && d.Dataset == ds {
			return d.Columns, true
		}
	}
	return nil, false
}

// columnGranted reports whether a feature is among the granted columns; an
// indicator feature "column=level" is granted with its column.
func columnGranted(granted []string, feature string) bool {
	col, _, _ := dataset.SplitIndicator(feature)
	return slices.Contains(granted, col)
}

// statsPolicy is the partner's policy engine for a stats job (DESIGN §2):
// every column must be granted by the agreement (partner features on the
// partner's dataset; group_by and label on the bank's), and under a DP
// budget the job's ε must fit in what is left (accounted durably before
// the approval). A refusal is recorded and refuses every release.
func (n *Node) statsPolicy(j *jobRun, in *statsInputs) func(context.Context, []protocol.StatsRelease) ([]protocol.StatsDecision, error) {
	a := in.agr.Agreement
	return func(ctx context.Context, rels []protocol.StatsRelease) ([]protocol.StatsDecision, error) {
		refuse := func(format string, args ...any) error {
			reason := fmt.Sprintf(format, args...)
			n.log.WarnContext(ctx, "stats release refused", "job", j.rec.ID, "peer", j.rec.Peer, "reason", reason)
			if err := n.record(ctx, event{Kind: "release_refused", JobID: j.rec.ID, AgreementID: a.Id, Peer: j.rec.Peer, Detail: reason, Attempt: uint32(j.rec.Attempt)}); err != nil {
				return err
			}
			return errors.New(reason)
		}
		pcols, ok := grantColumns(a, j.prop.Responder, in.psiP.Psi.PeerDataset)
		if !ok {
			return nil, refuse("dataset %s is not granted by agreement %s", in.psiP.Psi.PeerDataset, a.Id)
		}
		bcols, _ := grantColumns(a, j.prop.Initiator, in.psiP.Psi.Dataset)
		total := 0.0
		eps := make([]float64, len(rels))
		for i, r := range rels {
			for _, col := range r.ColumnList() {
				if !columnGranted(pcols, col) {
					return nil, refuse("column %s of dataset %s is not granted by agreement %s", col, in.psiP.Psi.PeerDataset, a.Id)
				}
			}
			if r.Groups > 0 && r.GroupBy != "" && !columnGranted(bcols, r.GroupBy) {
				return nil, refuse("group_by column %s of the bank's dataset %s is not granted by agreement %s", r.GroupBy, in.psiP.Psi.Dataset, a.Id)
			}
			if r.Label != "" && !columnGranted(bcols, r.Label) {
				return nil, refuse("label column %s of the bank's dataset %s is not granted by agreement %s", r.Label, in.psiP.Psi.Dataset, a.Id)
			}
			eps[i] = r.Epsilon
			if a.DpEpsilonBudget > 0 && eps[i] == 0 {
				eps[i] = defaultStatsEpsilon
			}
			total += eps[i]
		}
		checks := []string{"agreement_columns", fmt.Sprintf("min_cell_k=%d at receiver", a.MinCellSize), "share_guard"}
		if a.DpEpsilonBudget > 0 {
			epsMu.Lock()
			defer epsMu.Unlock()
			var acc epsAccount
			if err := n.st.getJSON("eps/"+a.Id, &acc); err != nil && !errors.Is(err, errNotFound) {
				return nil, err
			}
			if acc.Spent+total > a.DpEpsilonBudget*(1+1e-12) {
				return nil, refuse("differential-privacy budget of agreement %s exhausted: spent %.4g of %.4g, this job needs %.4g", a.Id, acc.Spent, a.DpEpsilonBudget, total)
			}
			acc.Spent += total
			acc.Releases += len(rels)
			if err := n.st.putJSON("eps/"+a.Id, &acc); err != nil {
				return nil, err
			}
			checks = append(checks, fmt.Sprintf("dp_budget=%.4g spent=%.4g", a.DpEpsilonBudget, acc.Spent))
		}
		out := make([]protocol.StatsDecision, len(rels))
		for i := range out {
			out[i] = protocol.StatsDecision{Epsilon: eps[i], Checks: append(slices.Clone(checks), fmt.Sprintf("dp_epsilon=%g", eps[i]))}
		}
		return out, nil
	}
}

// statsRelease writes the audit record of one release share, before the
// share exists (fail closed). Each release has its own idempotency key.
func (n *Node) statsRelease(j *jobRun, in *statsInputs) func(context.Context, protocol.StatsRelease, protocol.StatsDecision, int, []byte) error {
	return func(ctx context.Context, r protocol.StatsRelease, d protocol.StatsDecision, values int, digest []byte) error {
		e := audit.Entry{Kind: audit.KindRelease, JobID: j.rec.ID, AgreementID: j.rec.AgreementID, Peer: j.rec.Peer,
			Actor: audit.Actor{Kind: audit.ActorNode, Name: n.cfg.Name}, DatasetDigests: []string{in.ds.Profile.Digest},
			Release: &audit.Release{To: j.rec.Peer, Values: uint64(values), Digest: hex.EncodeToString(digest), Checks: d.Checks, Epsilon: d.Epsilon},
			Detail:  map[string]string{"release": fmt.Sprint(r.Index), "column": strings.Join(r.ColumnList(), ","), "statistics": strings.Join(r.Kinds, ",")}}
		if r.Quantile() && len(r.Intervals) > 0 {
			// The bins released (public to both sides): their number and span.
			e.Detail["round"] = fmt.Sprintf("%d/%d", r.Round, r.Rounds)
			e.Detail["bins"] = fmt.Sprint(len(r.Intervals))
			e.Detail["span"] = fmt.Sprintf("[%g,%g)", r.Intervals[0].Lo, r.Intervals[len(r.Intervals)-1].Hi)
		}
		key := audit.IdemKey{Job: j.rec.ID, Event: fmt.Sprintf("release/%d", r.Index), Attempt: uint32(j.rec.Attempt)}
		if _, _, err := n.audit.Append(context.WithoutCancel(ctx), peerLog(j.rec.Peer), key, e); err != nil {
			return fmt.Errorf("node: audit: %w", err)
		}
		return nil
	}
}

// alignedData serves the partner's columns over the alignment positions,
// each loaded once; safe for concurrent use (the protocol encodes ahead).
type alignedData struct {
	mu  sync.Mutex
	ds  dataset.Spec
	al  *psi.Alignment
	L   int
	num map[string][2]any
	cat map[string][]string
}

func (d *alignedData) Numeric(ctx context.Context, col string) ([]float64, []bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.num[col]; ok {
		return c[0].([]float64), c[1].([]bool), nil
	}
	vals, present, err := dataset.Column(ctx, d.ds, col)
	if err != nil {
		return nil, nil, fmt.Errorf("node: stats: column %s: %w", col, err)
	}
	v, p := make([]float64, d.L), make([]bool, d.L)
	for i, pos := range d.al.Positions {
		r := d.al.Rows[i]
		if r < uint64(len(vals)) && present[r] && !math.IsNaN(vals[r]) {
			v[pos], p[pos] = vals[r], true
		}
	}
	d.num[col] = [2]any{v, p}
	return v, p, nil
}

func (d *alignedData) Categorical(ctx context.Context, col string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.cat[col]; ok {
		return c, nil
	}
	rows := make([]int64, len(d.al.Rows))
	posOf := make(map[int64]uint64, len(rows))
	for i, r := range d.al.Rows {
		rows[i] = int64(r)
		posOf[int64(r)] = d.al.Positions[i]
	}
	slices.Sort(rows)
	out := make([]string, d.L)
	err := dataset.Rows(ctx, d.ds, rows, func(row int64, rec map[string]string) error {
		v, ok := rec[col]
		if !ok {
			return fmt.Errorf("node: stats: column %q is not in dataset %s", col, d.ds.Name)
		}
		out[posOf[row]] = strings.TrimSpace(v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.cat[col] = out
	return out, nil
}
