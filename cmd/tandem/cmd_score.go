package main

import (
	"context"
	"flag"
	"fmt"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// cmdScore scores the bank's matched rows of a PSI job with a split model:
//
//	tandem score --model ID --psi-job ID [--bands N] [--peer N] [--agreement A] [--wait] [--json]
//
// The scores (row, the dataset's id columns, score, band) are written to
// scores.csv in the job's directory; `job result ID` shows the path, the
// band table and, when the model's held-out rows were scored, their AUC.
func cmdScore(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	model := fs.String("model", "", "model ID (this node's part of a split model; see model list)")
	psiJob := fs.String("psi-job", "", "the PSI job whose matched rows to score")
	bands := fs.Int("bands", 0, "also assign N equal-count score bands (band 1 = highest scores); 0 = none")
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
		Score: &tandemv1.ScoreParams{PsiJobId: *psiJob, ModelId: *model, Bands: int32(*bands)}}, *wait)
}
