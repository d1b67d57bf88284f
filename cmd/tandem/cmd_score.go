package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tandem-dev/tandem/node"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// cmdScore scores the bank's matched rows of a PSI job with a split model:
//
//	tandem score --model ID --psi-job ID [--bands N [--bands-only [--band-edges P1,P2,…]]]
//	             [--peer N] [--agreement A] [--wait] [--json]
//
// The scores (row, the dataset's id columns, score, band) are written to
// scores.csv in the job's directory; `job result ID` shows the path, the
// band table and, when the model's held-out rows were scored, their AUC.
// With --bands-only the bank learns each row's band and no score (the
// partner's share of the score enters oblivious comparisons with the band
// edges): bands.csv holds row, id columns and band; the edges are
// probabilities, k/N by default.
func cmdScore(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	model := fs.String("model", "", "model ID (this node's part of a split model; see model list)")
	psiJob := fs.String("psi-job", "", "the PSI job whose matched rows to score")
	bands := fs.Int("bands", 0, "also assign N equal-count score bands (band 1 = highest scores); 0 = none")
	bandsOnly := fs.Bool("bands-only", false, "the bank learns each row's band and no score (needs --bands 2..32)")
	edgeList := fs.String("band-edges", "", "with --bands-only: the N-1 band edges, ascending probabilities (default k/N)")
	peer := fs.String("peer", "", "peer node name (default: the PSI job's peer)")
	agreement := fs.String("agreement", "", "agreement ID (default: the newest active one allowing score)")
	wait := fs.Bool("wait", false, "wait for the job to end (progress bar)")
	fs.BoolVar(&g.json, "json", g.json, "JSON output")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *model == "" || *psiJob == "" {
		return fmt.Errorf("score: want --model ID --psi-job ID")
	}
	if *bands < 0 || *bands > 100 {
		return fmt.Errorf("score: --bands must be 0..100")
	}
	edges, err := parseEdges(*edgeList)
	if err != nil {
		return err
	}
	if *bandsOnly && (*bands < 2 || *bands > 32) {
		return fmt.Errorf("score: --bands-only needs --bands 2..32")
	}
	if len(edges) > 0 && (!*bandsOnly || len(edges) != *bands-1) {
		return fmt.Errorf("score: --band-edges needs --bands-only and N-1 = %d edges, got %d", max(*bands-1, 1), len(edges))
	}
	if *peer == "" {
		c, err := g.client()
		if err != nil {
			return err
		}
		j, err := c.GetJob(ctx, &tandemv1.GetJobRequest{Id: *psiJob})
		c.Close()
		if err != nil {
			return rpcErr(err)
		}
		*peer = j.Peer
	}
	return submit(ctx, g, &tandemv1.SubmitJobRequest{Kind: "score", Peer: *peer, AgreementId: *agreement,
		Score: &tandemv1.ScoreParams{PsiJobId: *psiJob, ModelId: *model, Bands: int32(*bands), BandsOnly: *bandsOnly, BandEdges: edges}}, *wait)
}

// parseEdges reads "0.1,0.25,0.5": ascending probabilities in (0, 1).
func parseEdges(s string) ([]float64, error) {
	if s == "" {
		return nil, nil
	}
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(v > 0 && v < 1) || len(out) > 0 && !(v > out[len(out)-1]) {
			return nil, fmt.Errorf("score: --band-edges %q: want ascending probabilities strictly between 0 and 1", s)
		}
		out = append(out, v)
	}
	return out, nil
}

// cmdModelScore scores this node's own dataset with a whole model it holds
// (the partner's part of a partner-only model), locally:
//
//	tandem model score ID --dataset D --out FILE.csv [--bands N] [--json]
func cmdModelScore(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("model score", flag.ContinueOnError)
	ds := fs.String("dataset", "", "this node's dataset to score")
	out := fs.String("out", "", "CSV to write: row, id columns, score[, band]")
	bands := fs.Int("bands", 0, "equal-count score bands (band 1 = highest scores); 0 = none")
	fs.BoolVar(&g.json, "json", g.json, "JSON output")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *ds == "" || *out == "" {
		return fmt.Errorf("model score: want ID --dataset D --out FILE")
	}
	abs, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.ScoreLocal(ctx, &tandemv1.ScoreLocalRequest{ModelId: pos[0], Dataset: *ds, Out: abs, Bands: int32(*bands)})
	if err != nil {
		return rpcErr(err)
	}
	var res node.LocalScoreResult
	if err := json.Unmarshal(resp.ResultJson, &res); err != nil {
		return err
	}
	return g.emit(res, func(w io.Writer) {
		fmt.Fprintf(w, "scored %d rows of %s with model %s (mean score %.4f, %d clipped) → %s\n", res.Rows-int64(res.Unscored), res.Dataset, res.ModelID, res.MeanScore, res.Clipped, res.Out)
		if res.Unscored > 0 {
			fmt.Fprintf(w, "  %d rows without a score: a feature is missing and the model was trained with missing: drop\n", res.Unscored)
		}
		for _, b := range res.Bands {
			fmt.Fprintf(w, "  band %d: %d rows, score %.4f–%.4f\n", b.Band, b.Rows, b.MinScore, b.MaxScore)
		}
	})
}
