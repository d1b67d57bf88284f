package node

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"

	"github.com/tandem-dev/tandem/node/dataset"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// Local scoring (issue 6, use case 2): a partner that holds a whole model
// (its part of a partner-only model carries the intercept) scores its own
// users on its own machine, e.g. to invite them to the bank's offer through
// its own channel with a consent step. Nothing leaves the node; the export
// is an audit record.

// LocalScoreResult is what ScoreLocal reports.
type LocalScoreResult struct {
	ModelID string `json:"model_id"`
	Dataset string `json:"dataset"`
	Out     string `json:"out"`
	Rows    int64  `json:"rows"`
	Clipped int    `json:"clipped"` // rows whose partial predictor hit the model's clip range
	// Unscored rows have a missing feature and the model was trained with
	// missing: drop (score and band left empty, as R's predict gives NA).
	Unscored  int         `json:"unscored,omitempty"`
	MeanScore float64     `json:"mean_score"`
	Bands     []ScoreBand `json:"bands,omitempty"`
}

func (n *Node) scoreLocal(ctx context.Context, req *tandemv1.ScoreLocalRequest, role string) (*LocalScoreResult, error) {
	if !filepath.IsAbs(req.Out) {
		return nil, fmt.Errorf("%w: --out must be an absolute path", errInvalid)
	}
	if req.Bands < 0 || req.Bands > maxScoreBands {
		return nil, fmt.Errorf("%w: --bands must be 0..%d", errInvalid, maxScoreBands)
	}
	m, err := n.model(req.ModelId)
	if err != nil {
		return nil, err
	}
	if m.Part.Intercept == nil || (m.Side == "bank" && len(m.Card.PartnerFeatures) > 0) {
		return nil, fmt.Errorf("%w: model %s: this node holds only its part of a split model; score shared customers with `tandem score` on the bank", errInvalid, m.ID)
	}
	ds, err := n.dataset(req.Dataset)
	if err != nil {
		return nil, err
	}
	spec, err := ds.Spec.spec()
	if err != nil {
		return nil, err
	}
	rows := ds.Profile.Rows
	u := make([]float64, 0, rows)
	_, err = dataset.Read(ctx, spec, dataset.Pass{Columns: m.Part.Features, Each: func(_ int64, vals []float64, present []bool) error {
		u = append(u, m.Part.rowPartial(vals, present))
		return nil
	}}) // one pass over the file, no column kept
	if err != nil {
		return nil, fmt.Errorf("node: model score: features of dataset %s: %w", ds.Spec.Name, err)
	}
	if int64(len(u)) != rows {
		return nil, fmt.Errorf("%w: dataset %s has %d rows, %d when registered: register it again", errInvalid, ds.Spec.Name, len(u), rows)
	}
	res := &LocalScoreResult{ModelID: m.ID, Dataset: ds.Spec.Name, Out: req.Out, Rows: rows}
	keys, scores := make([]int64, rows), make([]float64, rows)
	var sum float64
	for i, x := range u {
		if r := m.Part.ClipRange; r > 0 && math.Abs(x) > r {
			x = math.Copysign(r, x) // as in training
			res.Clipped++
		}
		keys[i], scores[i] = int64(i), 1/(1+math.Exp(-(x+*m.Part.Intercept)))
		if math.IsNaN(scores[i]) { // a missing: drop model and a missing feature
			res.Unscored++
			continue
		}
		sum += scores[i]
	}
	if scored := rows - int64(res.Unscored); scored > 0 {
		res.MeanScore = sum / float64(scored)
	}
	bands, table := assignBands(scores, int(req.Bands))
	res.Bands = table
	ids := idColumns(spec)
	each := func(fn func(int64, []string) error) error { return dataset.RowCells(ctx, spec, keys, ids, fn) }
	if err := writeScores(ids, keys, scores, bands, req.Out, each); err != nil {
		return nil, fmt.Errorf("node: model score: writing %s: %w", req.Out, err)
	}
	n.record(ctx, event{Kind: "export", Actor: "operator:" + role,
		Detail: fmt.Sprintf("local scores model=%s dataset=%s rows=%d to %s", m.ID, ds.Spec.Name, rows, req.Out)})
	return res, nil
}

func (s *controlServer) ScoreLocal(ctx context.Context, req *tandemv1.ScoreLocalRequest) (*tandemv1.ScoreLocalResponse, error) {
	res, err := s.n.scoreLocal(ctx, req, callerRole(ctx))
	if err != nil {
		return nil, toStatus(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, toStatus(err)
	}
	return &tandemv1.ScoreLocalResponse{Out: res.Out, Rows: res.Rows, ResultJson: b}, nil
}
