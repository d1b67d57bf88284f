package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tandem-dev/tandem/audit"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

// trainKind trains a vertical logistic regression (issue 6) over the
// alignment of an earlier PSI job between the same nodes: the bank
// (initiator of both jobs) holds the label and its features, the partner
// its features. Each node stores only its own part of the model with a
// model card under "model/<id>"; every gradient release is approved by the
// releasing node's policy and is an audit record there.
type trainKind struct{}

// ModelPart is one node's part of a split model: its features, weights in
// standardised units and the standardisation. The partner's part of a
// partner-only model also carries the intercept: it is then a whole model
// the partner can score its own users with (`model score`). Scoring a row on this side:
// s = Σ_j w_j·(x_j − mean_j)/sd_j (+ intercept on the bank), a missing
// value counting as the mean (standardised 0); the partner's part is
// clipped to ±clip_range before it is added to the bank's.
type ModelPart struct {
	Format    string    `json:"format"` // tandem.vlr.part/v1
	ModelID   string    `json:"model_id"`
	Side      string    `json:"side"` // bank or partner
	Features  []string  `json:"features"`
	Weights   []float64 `json:"weights"`
	Intercept *float64  `json:"intercept,omitempty"`
	Mean      []float64 `json:"mean"`
	SD        []float64 `json:"sd"`
	// Missing is "mean" (a missing value is the feature's mean) or "drop"
	// (a row with a missing value gets no score, as in training).
	Missing   string  `json:"missing"`
	ClipRange float64 `json:"clip_range,omitempty"`
	// RawWeights are the coefficients on the raw scale (w_j/sd_j) and
	// RawOffset the constant they imply (intercept − Σ w_j·mean_j/sd_j).
	RawWeights []float64 `json:"raw_weights"`
	RawOffset  float64   `json:"raw_offset"`
}

// ModelMetric is one epoch of training as seen by this node: the bank's
// validation loss (bank only) and this node's own gradient norm.
type ModelMetric struct {
	Epoch   int      `json:"epoch"`
	ValLoss *float64 `json:"validation_loss,omitempty"`
	// TrainLoss replaces ValLoss when no rows are held out: the mean
	// log-loss over the training rows (bank only).
	TrainLoss *float64 `json:"training_loss,omitempty"`
	ValAUC    *float64 `json:"validation_auc,omitempty"` // spec validation_auc
	GradNorm  float64  `json:"grad_norm"`
	// Seconds is the epoch's wall time on this node (the first epoch's
	// includes the job's set-up: keys, standardisation, step caps).
	Seconds float64 `json:"seconds"`
}

// epochMetric is the metric of the epoch a step ends, timed from the end
// of the previous epoch (prev).
func epochMetric(s protocol.TrainEpoch, prev time.Duration) ModelMetric {
	return ModelMetric{Epoch: s.Epoch + 1, GradNorm: s.GradNorm, Seconds: (s.Elapsed - prev).Seconds()}
}

// ModelCard documents a split model on each node.
type ModelCard struct {
	ModelID         string              `json:"model_id"`
	Model           string              `json:"model"` // vertical_logistic_regression
	JobID           string              `json:"job_id"`
	AgreementID     string              `json:"agreement_id"`
	Created         string              `json:"created"`
	Side            string              `json:"side"`
	Peer            string              `json:"peer"`
	Label           string              `json:"label"`
	BankFeatures    []string            `json:"bank_features"`
	PartnerFeatures []string            `json:"partner_features"`
	Hyperparameters *protocol.TrainSpec `json:"hyperparameters"`
	SpecDigest      string              `json:"spec_digest"`
	Training        ModelTrainingData   `json:"training_data"`
	Epochs          int                 `json:"epochs"`
	Stopped         string              `json:"stopped,omitempty"`
	Metrics         []ModelMetric       `json:"metrics"`
	Notes           []string            `json:"notes,omitempty"`
}

// ModelTrainingData names the data a model was trained on.
type ModelTrainingData struct {
	PSIJob          string   `json:"psi_job"`
	Dataset         string   `json:"dataset"`
	DatasetDigests  []string `json:"dataset_digests"`
	AlignmentLength int      `json:"alignment_length"`
	// Bank only: matched rows used and the split; with missing: drop, the
	// matched rows left out for a missing label or bank feature, and for a
	// missing partner feature.
	MatchedRows       int `json:"matched_rows,omitempty"`
	TrainRows         int `json:"train_rows,omitempty"`
	ValidationRows    int `json:"validation_rows,omitempty"`
	IncompleteBank    int `json:"incomplete_bank_rows,omitempty"`
	IncompletePartner int `json:"incomplete_partner_rows,omitempty"`
}

// storedModel is "model/<id>" on each node.
type storedModel struct {
	ID      string    `json:"id"`
	JobID   string    `json:"job_id"`
	Side    string    `json:"side"`
	Created int64     `json:"created_unix"`
	Part    ModelPart `json:"part"`
	Card    ModelCard `json:"card"`
	// Bank only: its own dataset rows held out for validation (sorted),
	// so a later scoring job can report validation metrics.
	ValidationRows []int64 `json:"validation_rows,omitempty"`
}

// TrainJobResult is what `job result` shows for a train job.
type TrainJobResult struct {
	ModelID    string        `json:"model_id"`
	PSIJob     string        `json:"psi_job"`
	Side       string        `json:"side"`
	Dataset    string        `json:"dataset"`
	SpecDigest string        `json:"spec_digest"`
	Epochs     int           `json:"epochs"`
	Stopped    string        `json:"stopped,omitempty"`
	Metrics    []ModelMetric `json:"metrics"`
	Releases   int           `json:"gradient_releases"`
	// Missing values of this side's features (missing: mean): the bank's
	// matched rows used, the partner's aligned positions, with a value
	// imputed. Nonzero means R's glm on the same data (na.omit) would fit
	// fewer rows; missing: drop does what glm does.
	ImputedRows int    `json:"imputed_rows,omitempty"`
	BytesSent   int64  `json:"bytes_sent"`
	Transcript  string `json:"transcript_digest"`
}

func modelIDFor(jobID string) string { return "mdl-" + strings.TrimPrefix(jobID, "job-") }

func (n *Node) prepareTrain(p *tandemv1.JobProposal) error {
	if p.Train == nil || p.Train.PsiJobId == "" {
		return fmt.Errorf("%w: train needs --psi-job", errInvalid)
	}
	spec, err := protocol.ParseTrainSpec(p.Train.SpecYaml)
	if err != nil {
		return fmt.Errorf("%w: %v", errInvalid, err)
	}
	_, pp, err := n.trainPSIJob(p, "initiator", p.Responder)
	if err != nil {
		return fmt.Errorf("%w: %v", errInvalid, err)
	}
	agr, err := n.agreement(p.AgreementId)
	if err != nil {
		return err
	}
	if err := checkTrainColumns(agr.Agreement, p, pp, spec); err != nil {
		return fmt.Errorf("%w: %v", protocol.ErrNotAllowed, err)
	}
	return nil
}

func (n *Node) checkTrainResponder(p *tandemv1.JobProposal) error {
	if p.Train == nil {
		return errors.New("train parameters missing")
	}
	spec, err := protocol.ParseTrainSpec(p.Train.SpecYaml)
	if err != nil {
		return err
	}
	_, pp, err := n.trainPSIJob(p, "responder", p.Initiator)
	if err != nil {
		return err
	}
	agr, err := n.agreement(p.AgreementId)
	if err != nil {
		return err
	}
	return checkTrainColumns(agr.Agreement, p, pp, spec)
}

// checkTrainColumns: the bank's label and features must be granted on the
// bank's dataset of the PSI job, the partner's features on the partner's.
func checkTrainColumns(a *tandemv1.Agreement, p, psiP *tandemv1.JobProposal, spec *protocol.TrainSpec) error {
	bank, partner := spec.Columns()
	for _, side := range []struct {
		party, ds string
		cols      []string
	}{{p.Initiator, psiP.Psi.Dataset, bank}, {p.Responder, psiP.Psi.PeerDataset, partner}} {
		granted, ok := grantColumns(a, side.party, side.ds)
		if !ok {
			return fmt.Errorf("dataset %s of %s is not granted by agreement %s", side.ds, side.party, a.Id)
		}
		for _, c := range side.cols {
			if !columnGranted(granted, c) {
				return fmt.Errorf("column %s of dataset %s (%s) is not granted by agreement %s", c, side.ds, side.party, a.Id)
			}
		}
	}
	return nil
}

// trainPSIJob finds and checks the PSI job a train proposal runs over.
func (n *Node) trainPSIJob(p *tandemv1.JobProposal, role, peer string) (*jobRecord, *tandemv1.JobProposal, error) {
	return n.alignmentJob(p, "train", p.Train.PsiJobId, role, peer)
}

// trainInputs is what both sides of a train job load.
type trainInputs struct {
	alignedInputs
	spec *protocol.TrainSpec
}

func (n *Node) loadTrainInputs(j *jobRun) (*trainInputs, error) {
	if j.prop.Train == nil {
		return nil, errors.New("node: train job without parameters")
	}
	spec, err := protocol.ParseTrainSpec(j.prop.Train.SpecYaml)
	if err != nil {
		return nil, err
	}
	al, err := n.loadAligned(j, "train", j.prop.Train.PsiJobId)
	if err != nil {
		return nil, err
	}
	return &trainInputs{alignedInputs: al, spec: spec}, nil
}

func (trainKind) initiate(ctx context.Context, j *jobRun) (any, error) {
	n := j.n
	j.progress("loading", 0)
	in, err := n.loadTrainInputs(j)
	if err != nil {
		return nil, err
	}
	L := int(in.al.Length)
	label, lp, err := alignedLabel(ctx, &in.alignedInputs, in.spec.Label)
	if err != nil {
		return nil, err
	}
	// A matched row takes part when its label is present (0 or 1).
	match := make([]bool, L)
	rowOf := make([]int64, L)
	for i, pos := range in.al.Positions {
		rowOf[pos] = int64(in.al.Rows[i])
		if !lp[pos] {
			continue
		}
		if label[pos] != 0 && label[pos] != 1 {
			return nil, fmt.Errorf("node: train: label column %s must hold 0/1 values", in.spec.Label)
		}
		match[pos] = true
	}
	if !slices.Contains(match, true) {
		return nil, fmt.Errorf("node: train: label column %s has no 0/1 (yes/no, true/false) value on the matched rows; a text label enters as an indicator, label: %s=<positive level>", in.spec.Label, in.spec.Label)
	}
	names, feats, incomplete, err := alignedFeatures(ctx, &in.alignedInputs, in.spec.BankFeatures, match)
	if err != nil {
		return nil, err
	}
	bankDropped := 0
	for pos, m := range match {
		if m && incomplete[pos] {
			bankDropped++ // imputed (missing: mean) or left out (drop)
		}
	}
	if in.spec.DropsIncomplete() {
		for pos, m := range match {
			if m && incomplete[pos] {
				match[pos] = false
			}
		}
		if !slices.Contains(match, true) {
			return nil, fmt.Errorf("node: train: missing: drop leaves no matched row with the label and every bank feature of dataset %s", in.ds.Spec.Name)
		}
	}
	pol, onRel, count := n.trainReleasePolicy(j, in, "partner")
	cfg := protocol.TrainBankConfig{JobID: j.rec.ID, Spec: in.spec, Features: feats, FeatureNames: names, Label: label, Match: match, Policy: pol, OnRelease: onRel}
	res, err := protocol.RunTrainBank(ctx, j.t, cfg, j.progress)
	if err != nil {
		return nil, err
	}
	var metrics []ModelMetric
	var prev time.Duration
	for _, s := range res.Steps {
		if s.EndOfEpoch {
			m := epochMetric(s, prev)
			prev = s.Elapsed
			if v := s.ValLoss; !math.IsNaN(v) && s.OnTraining {
				m.TrainLoss = &v
			} else if !math.IsNaN(v) {
				m.ValLoss = &v
			}
			if !math.IsNaN(s.ValAUC) {
				a := s.ValAUC
				m.ValAUC = &a
			}
			metrics = append(metrics, m)
		}
	}
	var valRows []int64
	for _, pos := range res.ValRows {
		valRows = append(valRows, rowOf[pos])
	}
	slices.Sort(valRows)
	part := newModelPart(j.rec.ID, "bank", res.Part, in.spec, 0)
	card := n.modelCard(j, in, "bank", names, res.PartnerNames, metrics, res.Epochs, res.Stopped)
	card.Training.MatchedRows, card.Training.TrainRows, card.Training.ValidationRows = res.Matched, len(res.TrainRows), len(res.ValRows)
	imputed := bankDropped
	if in.spec.DropsIncomplete() {
		card.Training.IncompleteBank, card.Training.IncompletePartner, imputed = bankDropped, res.PartnerIncomplete, 0
	}
	if err := n.storeModel(j, part, card, valRows); err != nil {
		return nil, err
	}
	return &TrainJobResult{ModelID: part.ModelID, PSIJob: in.psiRec.ID, Side: "bank", Dataset: in.ds.Spec.Name, SpecDigest: hex.EncodeToString(in.spec.Digest()),
		Epochs: res.Epochs, Stopped: res.Stopped, Metrics: metrics, Releases: *count, ImputedRows: imputed, BytesSent: j.t.BytesSent(), Transcript: fmt.Sprintf("%x", j.t.Digest())}, nil
}

func (trainKind) respond(ctx context.Context, j *jobRun) (any, error) {
	n := j.n
	j.progress("loading", 0)
	in, err := n.loadTrainInputs(j)
	if err != nil {
		return nil, err
	}
	L := int(in.al.Length)
	if uint64(len(in.al.Positions)) != in.al.Length {
		return nil, fmt.Errorf("node: train: alignment maps %d of %d positions", len(in.al.Positions), in.al.Length)
	}
	names, feats, incomplete, err := alignedFeatures(ctx, &in.alignedInputs, in.spec.PartnerFeatures, nil)
	if err != nil {
		return nil, err
	}
	imputed := 0
	if !in.spec.DropsIncomplete() {
		for _, inc := range incomplete {
			if inc {
				imputed++
			}
		}
	}
	pol, onRel, count := n.trainReleasePolicy(j, in, "bank")
	approve := func(ctx context.Context) error {
		if err := checkTrainColumns(in.agr.Agreement, j.prop, in.psiP, in.spec); err != nil {
			return n.releaseRefused(ctx, j, err.Error())
		}
		return nil
	}
	cfg := protocol.TrainPartnerConfig{JobID: j.rec.ID, Spec: in.spec, Length: L, Features: feats, FeatureNames: names, Incomplete: incomplete,
		Approve: approve, Policy: pol, OnRelease: onRel}
	res, err := protocol.RunTrainPartner(ctx, j.t, cfg, j.progress)
	if err != nil {
		return nil, err
	}
	var metrics []ModelMetric
	var prev time.Duration
	for _, s := range res.Steps {
		if s.EndOfEpoch {
			metrics = append(metrics, epochMetric(s, prev))
			prev = s.Elapsed
		}
	}
	part := newModelPart(j.rec.ID, "partner", res.Part, in.spec, in.spec.ClipRange)
	card := n.modelCard(j, in, "partner", res.BankNames, names, metrics, res.Epochs, "")
	if err := n.storeModel(j, part, card, nil); err != nil {
		return nil, err
	}
	return &TrainJobResult{ModelID: part.ModelID, PSIJob: in.psiRec.ID, Side: "partner", Dataset: in.ds.Spec.Name, SpecDigest: hex.EncodeToString(in.spec.Digest()),
		Epochs: res.Epochs, Metrics: metrics, Releases: *count, ImputedRows: imputed, BytesSent: j.t.BytesSent(), Transcript: fmt.Sprintf("%x", j.t.Digest())}, nil
}

// releaseRefused records a refusal by this node's policy engine (train
// gradients, validation or score releases) and returns it as an error.
func (n *Node) releaseRefused(ctx context.Context, j *jobRun, reason string) error {
	n.log.WarnContext(ctx, "release refused by policy", "job", j.rec.ID, "kind", j.rec.Kind, "peer", j.rec.Peer, "reason", reason)
	if err := n.record(ctx, event{Kind: "release_refused", JobID: j.rec.ID, AgreementID: j.rec.AgreementID, Peer: j.rec.Peer, Detail: reason, Attempt: uint32(j.rec.Attempt)}); err != nil {
		return err
	}
	return errors.New(reason)
}

// trainReleasePolicy is this node's policy engine for the gradient
// releases it co-signs towards the peer (to = the peer's side): the
// agreement still allows train jobs and grants the job's columns, the
// release holds exactly the peer's gradient as the signed spec defines it,
// and at most epochs × steps-per-epoch releases happen. OnRelease writes
// the audit record (fail closed) before the share exists.
func (n *Node) trainReleasePolicy(j *jobRun, in *trainInputs, to string) (func(context.Context, protocol.TrainRelease) error, func(context.Context, protocol.TrainRelease) error, *int) {
	count := new(int)
	L := int(in.al.Length)
	perEpoch := 1
	if in.spec.Batch > 0 {
		perEpoch = (L + in.spec.Batch - 1) / in.spec.Batch
	}
	maxReleases := in.spec.Epochs * perEpoch
	// The peer's gradient as the signed spec defines it: its features,
	// categorical columns possibly expanded into indicators, and for the
	// bank its intercept and the validation-loss aggregate.
	isGradient := func(stats []string) bool {
		if to == "bank" {
			k := len(stats) - 2
			return k >= 0 && slices.Equal(stats[k:], []string{"(intercept)", "(validation_loss)"}) &&
				protocol.CheckExpansion(in.spec.BankFeatures, stats[:k]) == nil
		}
		return protocol.CheckExpansion(in.spec.PartnerFeatures, stats) == nil
	}
	checks := []string{"agreement_columns", "gradient_of_spec_features", fmt.Sprintf("max_releases=%d", maxReleases), "share_guard"}
	valBatches := 0
	maxValBatches := in.spec.Epochs * ((L+8191)/8192 + 15) / 16     // ≤ one masked query per epoch
	completeBatches, maxCompleteBatches := 0, ((L+8191)/8192+15)/16 // one masked query per job
	policy := func(ctx context.Context, r protocol.TrainRelease) error {
		a := in.agr.Agreement
		if !slices.Contains(a.JobKinds, "train") {
			return n.releaseRefused(ctx, j, fmt.Sprintf("agreement %s does not allow train jobs", a.Id))
		}
		if err := checkTrainColumns(a, j.prop, in.psiP, in.spec); err != nil {
			return n.releaseRefused(ctx, j, err.Error())
		}
		// Masked per-row releases to the bank: per-row information about
		// shared customers, so the signed spec must ask for them and the
		// agreement must allow scoring.
		perRow := func(asked bool, what, field string, batches, maxBatches int) error {
			switch {
			case to != "bank" || r.To != "bank" || !asked:
				return n.releaseRefused(ctx, j, fmt.Sprintf("%s requested without %s in the signed spec", what, field))
			case !slices.Contains(a.JobKinds, "score"):
				return n.releaseRefused(ctx, j, fmt.Sprintf("agreement %s does not allow score jobs, which %s needs", a.Id, field))
			case batches >= maxBatches:
				return n.releaseRefused(ctx, j, fmt.Sprintf("more than %d %s releases", maxBatches, what))
			}
			return nil
		}
		switch {
		case slices.Equal(r.Statistics, []string{protocol.CompleteRows}):
			// One bit per matched row: does this node hold every feature there.
			return perRow(in.spec.DropsIncomplete(), "complete-row indicator", "missing: drop", completeBatches, maxCompleteBatches)
		case slices.Equal(r.Statistics, []string{protocol.ValidationPartial}):
			// Per-row values at the bank's held-out positions: the leakage
			// of scoring those rows, which a bands-only agreement rules out.
			if a.ScoreRelease == "bands" {
				return n.releaseRefused(ctx, j, fmt.Sprintf("agreement %s gives the bank score bands only (score_release: bands): validation_auc needs per-row partial predictors", a.Id))
			}
			return perRow(in.spec.ValidationAUC, "validation partial predictor", "validation_auc", valBatches, maxValBatches)
		}
		if to == "partner" && in.spec.PartnerOnly && slices.Equal(r.Statistics, []string{"(intercept)"}) {
			return nil // the end of a partner-only job: the partner gets the whole model
		}
		if r.To != to || !isGradient(r.Statistics) {
			return n.releaseRefused(ctx, j, fmt.Sprintf("release of %v to %s is not the %s gradient of the spec", r.Statistics, r.To, to))
		}
		if *count >= maxReleases {
			return n.releaseRefused(ctx, j, fmt.Sprintf("more than %d gradient releases", maxReleases))
		}
		return nil
	}
	onRelease := func(ctx context.Context, r protocol.TrainRelease) error {
		e := audit.Entry{Kind: audit.KindRelease, JobID: j.rec.ID, AgreementID: j.rec.AgreementID, Peer: j.rec.Peer,
			Actor: audit.Actor{Kind: audit.ActorNode, Name: n.cfg.Name}, DatasetDigests: []string{in.ds.Profile.Digest},
			Release: &audit.Release{To: j.rec.Peer, Values: uint64(len(r.Statistics)), Digest: hex.EncodeToString(r.Digest), Checks: checks},
			Detail: map[string]string{"release": fmt.Sprint(r.Step), "epoch": fmt.Sprint(r.Epoch + 1), "gradient_of": to,
				"statistics": strings.Join(r.Statistics, ",")}}
		key := audit.IdemKey{Job: j.rec.ID, Event: fmt.Sprintf("release/%d", r.Step), Attempt: uint32(j.rec.Attempt)}
		validation := slices.Equal(r.Statistics, []string{protocol.ValidationPartial})
		complete := slices.Equal(r.Statistics, []string{protocol.CompleteRows})
		switch {
		case validation:
			key.Event = fmt.Sprintf("validation-release/%d/%d", r.Step, r.Batch)
			e.Release.Values = 0 // per-row values at the bank's held-out positions; the count is the bank's
			e.Release.Checks = []string{"agreement_kind=score", "spec_validation_auc", "masked_by_peer", "share_guard"}
			e.Detail["batch"] = fmt.Sprint(r.Batch)
		case complete:
			key.Event = fmt.Sprintf("complete-release/%d", r.Batch)
			e.Release.Values = 0 // one bit per matched row of the bank; the count is the bank's
			e.Release.Checks = []string{"agreement_kind=score", "spec_missing_drop", "masked_by_peer", "share_guard"}
			e.Detail = map[string]string{"statistics": protocol.CompleteRows, "batch": fmt.Sprint(r.Batch)}
		}
		if _, _, err := n.audit.Append(context.WithoutCancel(ctx), peerLog(j.rec.Peer), key, e); err != nil {
			return fmt.Errorf("node: audit: %w", err)
		}
		switch {
		case validation:
			valBatches++
		case complete:
			completeBatches++
		default:
			*count++
		}
		return nil
	}
	return policy, onRelease, count
}

func newModelPart(jobID, side string, p protocol.TrainModelPart, spec *protocol.TrainSpec, clip float64) ModelPart {
	m := ModelPart{Format: "tandem.vlr.part/v1", ModelID: modelIDFor(jobID), Side: side, Features: p.Features, Weights: p.Weights,
		Intercept: p.Intercept, Mean: p.Mean, SD: p.SD, Missing: "mean", ClipRange: clip}
	if spec.DropsIncomplete() {
		m.Missing = protocol.MissingDrop
	}
	if p.Intercept != nil {
		m.RawOffset = *p.Intercept
	}
	for k, w := range p.Weights {
		m.RawWeights = append(m.RawWeights, w/p.SD[k])
		m.RawOffset -= w * p.Mean[k] / p.SD[k]
	}
	return m
}

// modelCard documents a trained model on one side; bank and partner are
// the concrete features of each side (categorical columns expanded).
func (n *Node) modelCard(j *jobRun, in *trainInputs, side string, bank, partner []string, metrics []ModelMetric, epochs int, stopped string) ModelCard {
	c := ModelCard{ModelID: modelIDFor(j.rec.ID), Model: "vertical_logistic_regression", JobID: j.rec.ID, AgreementID: j.rec.AgreementID,
		Created: time.Now().UTC().Format(time.RFC3339), Side: side, Peer: j.rec.Peer, Label: in.spec.Label,
		BankFeatures: nonNil(bank), PartnerFeatures: nonNil(partner), Hyperparameters: in.spec,
		SpecDigest: hex.EncodeToString(in.spec.Digest()), Epochs: epochs, Stopped: stopped, Metrics: metrics,
		Training: ModelTrainingData{PSIJob: in.psiRec.ID, Dataset: in.ds.Spec.Name, DatasetDigests: []string{in.ds.Profile.Digest}, AlignmentLength: int(in.al.Length)}}
	c.Notes = []string{
		"split model: this node holds only its own part; scoring needs both parts (federated scoring)",
		fmt.Sprintf("residual approximation: degree %d polynomial in the partner's partial predictor, clipped to ±%g", in.spec.Degree, in.spec.ClipRange),
		"features standardised by their owner (bank: matched rows; partner: all aligned positions)",
		"missing values imputed with the owner's mean (missing: mean)",
	}
	if in.spec.DropsIncomplete() {
		c.Notes[2] = "missing: drop: trained on complete rows only (R's na.omit); a row with a missing value gets no score"
	}
	return c
}

func (n *Node) storeModel(j *jobRun, part ModelPart, card ModelCard, valRows []int64) error {
	m := storedModel{ID: part.ModelID, JobID: j.rec.ID, Side: part.Side, Created: time.Now().Unix(), Part: part, Card: card, ValidationRows: valRows}
	return n.st.putJSON("model/"+m.ID, &m)
}

// models returns the stored models whose train job succeeded (a model of
// a job that failed after storing, e.g. at the receipt, is not shown).
func (n *Node) models() ([]*storedModel, error) {
	var out []*storedModel
	err := n.st.scan("model/", func(_ string, b []byte) error {
		var m storedModel
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		if rec, err := n.jobs.get(m.JobID); err == nil && rec.State == stateSucceeded {
			out = append(out, &m)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created < out[j].Created })
	return out, err
}

func (n *Node) model(id string) (*storedModel, error) {
	var m storedModel
	if err := n.st.getJSON("model/"+id, &m); err != nil {
		if errors.Is(err, errNotFound) {
			return nil, fmt.Errorf("%w: model %s", errNotFound, id)
		}
		return nil, err
	}
	if rec, err := n.jobs.get(m.JobID); err != nil || rec.State != stateSucceeded {
		return nil, fmt.Errorf("%w: model %s (its train job did not succeed)", errNotFound, id)
	}
	return &m, nil
}

func (m *storedModel) info() (*tandemv1.ModelInfo, error) {
	b, err := json.Marshal(struct {
		Part ModelPart `json:"part"`
		Card ModelCard `json:"card"`
	}{m.Part, m.Card})
	if err != nil {
		return nil, err
	}
	return &tandemv1.ModelInfo{Id: m.ID, JobId: m.JobID, Side: m.Side, CreatedUnix: m.Created, ModelJson: b}, nil
}

func (s *controlServer) ListModels(ctx context.Context, _ *tandemv1.ListModelsRequest) (*tandemv1.ListModelsResponse, error) {
	ms, err := s.n.models()
	if err != nil {
		return nil, toStatus(err)
	}
	out := &tandemv1.ListModelsResponse{}
	for _, m := range ms {
		info, err := m.info()
		if err != nil {
			return nil, toStatus(err)
		}
		out.Models = append(out.Models, info)
	}
	return out, nil
}

func (s *controlServer) GetModel(ctx context.Context, req *tandemv1.GetModelRequest) (*tandemv1.ModelInfo, error) {
	m, err := s.n.model(req.Id)
	if err != nil {
		return nil, toStatus(err)
	}
	info, err := m.info()
	return info, toStatus(err)
}

// nonNil keeps an empty feature list a JSON [] (a partner-only model's
// bank features), not null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
