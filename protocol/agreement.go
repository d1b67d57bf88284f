package protocol

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// Job kinds known to this version.
var JobKinds = []string{"ping", "psi", "stats", "train", "score"}

// PSI output modes (DESIGN §2).
var RevealModes = []string{"initiator", "both", "count"}

// Sentinel errors of agreement checks. Callers map them to PermissionDenied.
var (
	// ErrNoAgreement: no active agreement with the peer allows the job.
	ErrNoAgreement = errors.New("protocol: no active agreement allows this job")
	// ErrAgreementExpired: the agreement's expiry has passed.
	ErrAgreementExpired = errors.New("protocol: agreement expired")
	// ErrNotAllowed: the agreement exists but does not allow this use.
	ErrNotAllowed = errors.New("protocol: not allowed by the agreement")
	// ErrProposalExpired: a job proposal arrived after its expiry.
	ErrProposalExpired = errors.New("protocol: job proposal expired")
	// ErrReplay: a job proposal's nonce or id was seen before.
	ErrReplay = errors.New("protocol: replayed job proposal")
)

// ScoreReleases are the agreement's score_release values: "" and
// "scores" let score jobs give the bank scores, "bands" only bands.
var ScoreReleases = []string{"", "scores", "bands"}

// agreementFile is the operator-facing YAML form of an agreement.
type agreementFile struct {
	Purpose  string   `yaml:"purpose"`
	JobKinds []string `yaml:"job_kinds"`
	Datasets []struct {
		Party   string   `yaml:"party"`
		Dataset string   `yaml:"dataset"`
		Columns []string `yaml:"columns"`
	} `yaml:"datasets"`
	PSIReveal       []string  `yaml:"psi_reveal"`
	MinCellSize     int64     `yaml:"min_cell_size"`
	DPEpsilonBudget float64   `yaml:"dp_epsilon_budget"`
	ScoreRelease    string    `yaml:"score_release"`
	Expires         time.Time `yaml:"expires"`
	ValidDays       int       `yaml:"valid_days"`
}

// ParseAgreementYAML builds an unsigned agreement between proposer and
// responder from an operator's file. Errors name the field.
func ParseAgreementYAML(b []byte, proposer, responder string, now time.Time) (*tandemv1.Agreement, error) {
	var f agreementFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("protocol: agreement file: %v", err)
	}
	if f.Purpose == "" {
		return nil, errors.New("protocol: agreement field purpose: required")
	}
	if len(f.JobKinds) == 0 {
		return nil, errors.New("protocol: agreement field job_kinds: at least one kind required")
	}
	for _, k := range f.JobKinds {
		if !slices.Contains(JobKinds, k) && k != "stats" && k != "train" && k != "score" {
			return nil, fmt.Errorf("protocol: agreement field job_kinds: unknown kind %q", k)
		}
	}
	if len(f.PSIReveal) == 0 {
		f.PSIReveal = []string{"initiator"}
	}
	for _, r := range f.PSIReveal {
		if !slices.Contains(RevealModes, r) {
			return nil, fmt.Errorf("protocol: agreement field psi_reveal: unknown mode %q (want initiator, both or count)", r)
		}
	}
	if f.MinCellSize < 0 {
		return nil, errors.New("protocol: agreement field min_cell_size: must be ≥ 0")
	}
	if !slices.Contains(ScoreReleases, f.ScoreRelease) {
		return nil, fmt.Errorf("protocol: agreement field score_release: unknown %q (want scores or bands)", f.ScoreRelease)
	}
	if f.DPEpsilonBudget < 0 {
		return nil, errors.New("protocol: agreement field dp_epsilon_budget: must be ≥ 0")
	}
	exp := f.Expires
	switch {
	case !exp.IsZero() && f.ValidDays != 0:
		return nil, errors.New("protocol: agreement fields expires and valid_days: give one, not both")
	case exp.IsZero() && f.ValidDays > 0:
		exp = now.AddDate(0, 0, f.ValidDays)
	case exp.IsZero():
		return nil, errors.New("protocol: agreement field expires: required (or valid_days)")
	}
	if !exp.After(now) {
		return nil, errors.New("protocol: agreement field expires: already in the past")
	}
	a := &tandemv1.Agreement{
		Proposer:        proposer,
		Responder:       responder,
		Purpose:         f.Purpose,
		JobKinds:        f.JobKinds,
		PsiReveal:       f.PSIReveal,
		MinCellSize:     f.MinCellSize,
		DpEpsilonBudget: f.DPEpsilonBudget,
		ScoreRelease:    f.ScoreRelease,
		CreatedUnix:     now.Unix(),
		ExpiresUnix:     exp.Unix(),
		Nonce:           make([]byte, 16),
	}
	for i, d := range f.Datasets {
		if d.Party != proposer && d.Party != responder {
			return nil, fmt.Errorf("protocol: agreement field datasets[%d].party: %q is neither %s nor %s", i, d.Party, proposer, responder)
		}
		if d.Dataset == "" {
			return nil, fmt.Errorf("protocol: agreement field datasets[%d].dataset: required", i)
		}
		a.Datasets = append(a.Datasets, &tandemv1.DatasetGrant{Party: d.Party, Dataset: d.Dataset, Columns: d.Columns})
	}
	if _, err := rand.Read(a.Nonce); err != nil {
		return nil, fmt.Errorf("protocol: agreement nonce: %w", err)
	}
	a.Id = agreementID(a)
	return a, nil
}

func agreementID(a *tandemv1.Agreement) string {
	return fmt.Sprintf("agr-%x", a.Nonce[:6])
}

// CheckJob decides whether an active agreement allows a proposed job at
// time now. It is the single policy gate both nodes apply before any
// protocol data moves.
func CheckJob(rec *tandemv1.AgreementRecord, p *tandemv1.JobProposal, now time.Time) error {
	if rec == nil || rec.Agreement == nil || len(rec.ProposerSignature) == 0 || len(rec.ResponderSignature) == 0 {
		return ErrNoAgreement
	}
	a := rec.Agreement
	if rec.State == "expired" || now.Unix() >= a.ExpiresUnix {
		return fmt.Errorf("%w: %s expired at %s", ErrAgreementExpired, a.Id, time.Unix(a.ExpiresUnix, 0).UTC().Format(time.RFC3339))
	}
	if rec.State != "active" {
		return fmt.Errorf("%w: agreement %s is %s", ErrNoAgreement, a.Id, rec.State)
	}
	if p.AgreementId != a.Id {
		return fmt.Errorf("%w: proposal names agreement %s", ErrNoAgreement, p.AgreementId)
	}
	parties := []string{a.Proposer, a.Responder}
	if !slices.Contains(parties, p.Initiator) || !slices.Contains(parties, p.Responder) || p.Initiator == p.Responder {
		return fmt.Errorf("%w: parties %s and %s are not the agreement's", ErrNotAllowed, p.Initiator, p.Responder)
	}
	if !slices.Contains(a.JobKinds, p.Kind) {
		return fmt.Errorf("%w: job kind %s", ErrNotAllowed, p.Kind)
	}
	if p.Kind == "psi" {
		ps := p.Psi
		if ps == nil {
			return fmt.Errorf("%w: psi job without parameters", ErrNotAllowed)
		}
		if !slices.Contains(a.PsiReveal, ps.Reveal) {
			return fmt.Errorf("%w: psi reveal mode %s", ErrNotAllowed, ps.Reveal)
		}
		if !datasetGranted(a, p.Initiator, ps.Dataset) {
			return fmt.Errorf("%w: dataset %s of %s", ErrNotAllowed, ps.Dataset, p.Initiator)
		}
		if !datasetGranted(a, p.Responder, ps.PeerDataset) {
			return fmt.Errorf("%w: dataset %s of %s", ErrNotAllowed, ps.PeerDataset, p.Responder)
		}
	}
	if p.Kind == "stats" {
		// The node checks that the PSI job ran between the same parties
		// (it has the job records); columns are checked by the partner's
		// policy engine before any release.
		st := p.Stats
		if st == nil || st.PsiJobId == "" {
			return fmt.Errorf("%w: stats job without a psi job", ErrNotAllowed)
		}
		if _, err := ParseStatsSpec(st.SpecYaml); err != nil {
			return err
		}
	}
	if p.Kind == "train" {
		// The node checks the PSI job and that the agreement grants the
		// label and features on the PSI job's datasets (it has the job
		// records); here: parameters and a well-formed spec.
		tr := p.Train
		if tr == nil || tr.PsiJobId == "" {
			return fmt.Errorf("%w: train job without a psi job", ErrNotAllowed)
		}
		if _, err := ParseTrainSpec(tr.SpecYaml); err != nil {
			return err
		}
	}
	return nil
}

// datasetGranted: an agreement without dataset grants allows any dataset
// (useful for ping-only agreements); otherwise the dataset must be listed.
func datasetGranted(a *tandemv1.Agreement, party, dataset string) bool {
	if len(a.Datasets) == 0 {
		return true
	}
	for _, d := range a.Datasets {
		if d.Party == party && d.Dataset == dataset {
			return true
		}
	}
	return false
}

// CheckProposalFresh checks a proposal's validity window against now.
func CheckProposalFresh(p *tandemv1.JobProposal, now time.Time, maxTTL time.Duration) error {
	if now.Unix() > p.ExpiresUnix {
		return ErrProposalExpired
	}
	if p.ExpiresUnix-p.CreatedUnix > int64(maxTTL/time.Second) {
		return fmt.Errorf("%w: validity window longer than %s", ErrProposalExpired, maxTTL)
	}
	if p.CreatedUnix > now.Add(2*time.Minute).Unix() {
		return fmt.Errorf("%w: created in the future", ErrProposalExpired)
	}
	if len(p.Nonce) != 16 {
		return fmt.Errorf("protocol: proposal nonce must be 16 bytes")
	}
	return nil
}
