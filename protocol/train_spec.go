package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tandem-dev/tandem/fedlearn/vlr"
)

// TrainSpec is a parsed model.yaml (issue 6): a vertical logistic
// regression over the aligned rows of a PSI job, the bank holding the
// label and some features, the partner other features.
//
//	label: has_card                       # bank 0/1 column
//	bank_features: [income, age, tenure_months]
//	partner_features: [monthly_spend, orders_90d]
//	epochs: 30                            # maximum epochs (default 30)
//	learning_rate: 1.5                    # default 1.5 (heavy-ball momentum 0.6); each side caps
//	                                      # its own step for strongly correlated features (vlr step.go)
//	momentum: 0.6
//	l2: 0.001                             # λ of (λ/2)‖w‖², intercept unpenalised
//	validation_fraction: 0                # matched rows held out by the bank (default 0: none, as glm)
//	batch: 0                              # 0 = full batch, else rows per step
//	seed: 7                               # validation split and batch order
//	early_stopping: {patience: 3, tolerance: 1e-6}   # on the validation loss, or the training loss without hold-out
//	degree: 9                             # residual polynomial (advanced; 7 is faster, less exact)
//	clip_range: 4                         # partner clips |u_P| ≤ R (advanced)
//	partner_only: false                   # true: no bank features (see below)
//	validation_auc: false                 # true: AUC on the held-out rows every epoch
//	missing: mean                         # mean: impute; drop: complete rows only (R's na.omit)
//
// A feature "column=level" is the indicator of one level of a categorical
// column (1 where the cell equals level, 0 where it holds another value);
// a categorical column named plainly is expanded by its owner into the
// indicators of its levels but the most frequent (the node layer does it;
// each side announces its concrete features, CheckExpansion). The label
// may be an indicator too (label: class=bad).
//
// Features are standardised by their owner (bank: over its matched rows;
// partner: over all aligned positions). Missing values (missing: mean, the
// default) are imputed with the owner's mean (standardised 0), which
// discloses nothing. missing: drop trains on complete rows only, as R's glm
// does by default (na.action = na.omit): the bank leaves out its rows with
// a missing label or bank feature, and learns from the partner, by a
// masked release its policy approves, which of its matched rows lack a
// partner feature (one bit per matched row; nothing at other positions).
// Scoring a drop model gives no score to such rows, as R's predict gives
// NA.
//
// A partner-only model (partner_only: true, bank_features empty or
// omitted) is a model over the partner's features alone, trained with the
// bank's label through the same protocol: the bank contributes the label,
// the match indicator and the intercept. Zero bank features must be asked
// for explicitly so that a spec that merely forgot its bank features is
// still an error.
type TrainSpec struct {
	Label              string        `yaml:"label" json:"label"`
	BankFeatures       []string      `yaml:"bank_features" json:"bank_features"`
	PartnerFeatures    []string      `yaml:"partner_features" json:"partner_features"`
	Epochs             int           `yaml:"epochs" json:"epochs"`
	LearningRate       float64       `yaml:"learning_rate" json:"learning_rate"`
	Momentum           float64       `yaml:"momentum" json:"momentum"`
	L2                 float64       `yaml:"l2" json:"l2"`
	ValidationFraction float64       `yaml:"validation_fraction" json:"validation_fraction"`
	Batch              int           `yaml:"batch" json:"batch"`
	Seed               uint64        `yaml:"seed" json:"seed"`
	EarlyStopping      EarlyStopping `yaml:"early_stopping" json:"early_stopping"`
	Degree             int           `yaml:"degree" json:"degree"`
	ClipRange          float64       `yaml:"clip_range" json:"clip_range"`
	// PartnerOnly enters the digest only when true (omitempty): the digest
	// of every spec written before the field existed stays the same (model
	// cards store it, and a node of the previous version still agrees on
	// such specs), while true and false never collide.
	PartnerOnly bool `yaml:"partner_only" json:"partner_only,omitempty"`
	// ValidationAUC asks for the validation AUC after every epoch: the
	// partner releases its current partial predictor at the bank's
	// held-out positions only (a masked release, as in scoring; the
	// partner's policy requires an agreement that allows score jobs).
	// omitempty for the same digest reason as PartnerOnly.
	ValidationAUC bool `yaml:"validation_auc" json:"validation_auc,omitempty"`
	// Missing is MissingDrop or "" (mean imputation, the default; "mean"
	// in the file is stored as ""): omitempty for the same digest reason.
	Missing string `yaml:"missing" json:"missing,omitempty"`
}

// MissingDrop is TrainSpec.Missing for complete-row training (R's na.omit).
const MissingDrop = "drop"

// DropsIncomplete reports whether the model leaves rows with a missing
// value out of training and scoring.
func (s *TrainSpec) DropsIncomplete() bool { return s.Missing == MissingDrop }

// EarlyStopping stops training after Patience epochs without a relative
// validation-loss improvement of Tolerance (0 patience: off).
type EarlyStopping struct {
	Patience  int     `yaml:"patience" json:"patience"`
	Tolerance float64 `yaml:"tolerance" json:"tolerance"`
}

// Limits of a model spec (peer input: both nodes parse the signed spec).
const (
	maxTrainFeatures = 256
	maxTrainEpochs   = 1000
)

// ParseTrainSpec parses and checks a model.yaml, filling defaults. Unknown
// fields are refused; errors name the field.
func ParseTrainSpec(b []byte) (*TrainSpec, error) {
	if err := checkNonEmpty(b); err != nil {
		return nil, err
	}
	var s TrainSpec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("protocol: model spec: %v", err)
	}
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("protocol: model spec field %s: %s", field, fmt.Sprintf(format, args...))
	}
	if s.Label = strings.TrimSpace(s.Label); s.Label == "" {
		return nil, bad("label", "required (the bank's 0/1 column)")
	}
	bankMin := 1
	switch {
	case s.PartnerOnly && len(s.BankFeatures) != 0:
		return nil, bad("bank_features", "must be empty when partner_only is true (a partner-only model has no bank features), got %d columns", len(s.BankFeatures))
	case s.PartnerOnly:
		bankMin = 0
		// Canonical form: omitted, null and [] give the same digest.
		s.BankFeatures = []string{}
	case len(s.BankFeatures) == 0:
		return nil, bad("bank_features", "want 1..%d columns, got 0 (partner_only: true trains a model over the partner's features only)", maxTrainFeatures)
	}
	seen := map[string]string{s.Label: "label"}
	for _, f := range []struct {
		name string
		cols []string
		min  int
	}{{"bank_features", s.BankFeatures, bankMin}, {"partner_features", s.PartnerFeatures, 1}} {
		if len(f.cols) < f.min || len(f.cols) > maxTrainFeatures {
			return nil, bad(f.name, "want %d..%d columns, got %d", f.min, maxTrainFeatures, len(f.cols))
		}
		for _, c := range f.cols {
			if strings.TrimSpace(c) != c || c == "" {
				return nil, bad(f.name, "column name %q is empty or padded", c)
			}
			if col, level, ok := strings.Cut(c, "="); ok && (col == "" || level == "" || strings.TrimSpace(col) != col || strings.TrimSpace(level) != level) {
				return nil, bad(f.name, "indicator %q must be column=level with neither part empty or padded", c)
			}
			if prev, dup := seen[c]; dup {
				return nil, bad(f.name, "column %s is also in %s", c, prev)
			}
			seen[c] = f.name
		}
	}
	if s.Epochs == 0 {
		s.Epochs = 30
	}
	if s.Epochs < 1 || s.Epochs > maxTrainEpochs {
		return nil, bad("epochs", "want 1..%d, got %d", maxTrainEpochs, s.Epochs)
	}
	if s.LearningRate == 0 {
		s.LearningRate = 1.5
	}
	if !(s.LearningRate > 0 && s.LearningRate <= 100) {
		return nil, bad("learning_rate", "want > 0 and ≤ 100, got %g", s.LearningRate)
	}
	if s.Momentum == 0 {
		s.Momentum = 0.6
	}
	if !(s.Momentum > 0 && s.Momentum < 1) {
		return nil, bad("momentum", "want in (0, 1), got %g", s.Momentum)
	}
	if !(s.L2 >= 0 && s.L2 <= 100) {
		return nil, bad("l2", "want 0..100, got %g", s.L2)
	}
	// The default 0 trains on every matched row, as glm fits all the data
	// it is given: the model to compare with glm on the joined plaintext.
	// The per-epoch loss (and early stopping, a convergence test then) is
	// the training loss; a hold-out is asked for explicitly.
	switch {
	case s.ValidationFraction == 0 && s.ValidationAUC:
		return nil, bad("validation_auc", "needs held-out rows; validation_fraction is 0 (the default): hold some out, e.g. validation_fraction: 0.2")
	case s.ValidationFraction == 0:
	case !(s.ValidationFraction > 0 && s.ValidationFraction < 0.9):
		return nil, bad("validation_fraction", "want 0 (no hold-out) or in (0, 0.9), got %g", s.ValidationFraction)
	}
	if s.Batch < 0 || s.Batch > 1<<24 {
		return nil, bad("batch", "want 0 (full batch) or a row count, got %d", s.Batch)
	}
	if s.EarlyStopping.Patience < 0 || s.EarlyStopping.Patience > maxTrainEpochs {
		return nil, bad("early_stopping.patience", "want 0..%d, got %d", maxTrainEpochs, s.EarlyStopping.Patience)
	}
	if s.EarlyStopping.Tolerance == 0 {
		s.EarlyStopping.Tolerance = 1e-6
	}
	if !(s.EarlyStopping.Tolerance > 0 && s.EarlyStopping.Tolerance < 1) {
		return nil, bad("early_stopping.tolerance", "want in (0, 1), got %g", s.EarlyStopping.Tolerance)
	}
	if s.Degree == 0 {
		s.Degree = 9
	}
	if s.Degree < 1 || s.Degree > 9 {
		return nil, bad("degree", "want 1..9, got %d", s.Degree)
	}
	switch s.Missing {
	case "", "mean":
		s.Missing = ""
	case MissingDrop:
	default:
		return nil, bad("missing", "want mean (impute with the owner's mean) or drop (complete rows only, as R's glm), got %q", s.Missing)
	}
	if s.ClipRange == 0 {
		s.ClipRange = 4
	}
	if !(s.ClipRange > 0 && s.ClipRange <= 16) || math.IsInf(s.ClipRange, 0) {
		return nil, bad("clip_range", "want in (0, 16], got %g", s.ClipRange)
	}
	return &s, nil
}

// checkShape re-checks the feature-count rule of ParseTrainSpec on a spec
// that may have been built in code: vlr accepts a bank side without
// features, so zero bank features must come from an explicit partner_only
// (what both policies approved), never from an empty list by accident.
func (s *TrainSpec) checkShape() error {
	if s.PartnerOnly != (len(s.BankFeatures) == 0) || len(s.PartnerFeatures) == 0 {
		return fmt.Errorf("protocol: train: model spec has %d bank and %d partner features with partner_only %v", len(s.BankFeatures), len(s.PartnerFeatures), s.PartnerOnly)
	}
	return nil
}

// Digest is the SHA-256 of the canonical spec (defaults filled): both nodes
// compare it at the start of a job.
func (s *TrainSpec) Digest() []byte {
	b, _ := json.Marshal(s)
	d := sha256.Sum256(append([]byte("tandem/v1 train spec\n"), b...))
	return d[:]
}

// maxExpandedFeatures bounds one side's features after its categorical
// columns are expanded into indicators (CheckExpansion).
const maxExpandedFeatures = 2048

// CheckExpansion checks one side's concrete feature names against the
// spec's list for that side: a spec entry that is a number column or an
// indicator (column=level) appears as itself; a plain entry naming a
// categorical column may instead appear as indicators column=level (its
// levels but the reference, as R's glm codes a factor), in spec order.
// Every spec entry is covered, nothing else appears, no name twice. Both
// nodes run it on the names the other announces, so a peer cannot train on
// a column the signed spec does not name.
func CheckExpansion(spec, names []string) error {
	if len(names) > maxExpandedFeatures {
		return fmt.Errorf("protocol: train: %d features after expanding categorical columns, at most %d", len(names), maxExpandedFeatures)
	}
	seen := make(map[string]bool, len(names))
	k := 0
	for _, f := range spec {
		start := k
		for k < len(names) {
			n := names[k]
			col, level, ok := strings.Cut(n, "=")
			if n == f || (ok && col == f && level != "" && !strings.Contains(f, "=")) {
				if seen[n] || (n == f && k > start) {
					return fmt.Errorf("protocol: train: feature %s announced twice", n)
				}
				seen[n] = true
				k++
				if n == f {
					break
				}
				continue
			}
			break
		}
		if k == start {
			return fmt.Errorf("protocol: train: spec feature %s has no announced column or indicator", f)
		}
	}
	if k != len(names) {
		return fmt.Errorf("protocol: train: announced feature %s is not in the signed spec", names[k])
	}
	return nil
}

// Columns returns the columns the job reads on each side: the bank's label
// and features, the partner's features.
func (s *TrainSpec) Columns() (bank, partner []string) {
	return append([]string{s.Label}, s.BankFeatures...), slices.Clone(s.PartnerFeatures)
}

// Config returns the vlr hyperparameters of the spec.
func (s *TrainSpec) Config() vlr.Config {
	return vlr.Config{Degree: s.Degree, Range: s.ClipRange, LearningRate: s.LearningRate, Momentum: s.Momentum, L2: s.L2,
		BatchSize: s.Batch, MaxEpochs: s.Epochs, Patience: s.EarlyStopping.Patience, Tol: s.EarlyStopping.Tolerance,
		ValFraction: valFraction(s.ValidationFraction), Seed: s.Seed}
}

// valFraction maps the spec's 0 (no hold-out) to vlr's negative value (its
// 0 means the default).
func valFraction(f float64) float64 {
	if f == 0 {
		return -1
	}
	return f
}

var errSpecEmpty = errors.New("protocol: model spec is empty")

// checkNonEmpty refuses an empty document (yaml decodes it as EOF).
func checkNonEmpty(b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return errSpecEmpty
	}
	return nil
}
