package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

func cmdPSI(ctx context.Context, g *globals, args []string) error {
	if len(args) > 0 && args[0] == "export" {
		fs := flag.NewFlagSet("psi export", flag.ContinueOnError)
		out := fs.String("out", "", "CSV file to write")
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) != 1 || *out == "" {
			return fmt.Errorf("psi export: want JOB --out FILE.csv")
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
		resp, err := c.ExportMatches(ctx, &tandemv1.ExportMatchesRequest{JobId: pos[0], Out: abs})
		if err != nil {
			return rpcErr(err)
		}
		return g.emit(resp, func(w io.Writer) { fmt.Fprintf(w, "wrote %d matched rows to %s\n", resp.Rows, resp.Out) })
	}
	fs := flag.NewFlagSet("psi", flag.ContinueOnError)
	var p tandemv1.PsiParams
	peer := fs.String("peer", "", "peer node name")
	ids := fs.String("id", "", "id columns of your dataset to match (default all)")
	fs.StringVar(&p.Dataset, "dataset", "", "your dataset")
	fs.StringVar(&p.PeerDataset, "peer-dataset", "", "the peer's dataset")
	fs.StringVar(&p.Reveal, "reveal", "initiator", "output: initiator, both or count")
	fs.StringVar(&p.Suite, "suite", "", "group suite: x25519-ell2 (default, fast) or ristretto255 (reference)")
	agreement := fs.String("agreement", "", "agreement ID (default: the newest active one allowing psi)")
	wait := fs.Bool("wait", false, "wait for the job to end, with progress")
	fs.BoolVar(&g.json, "json", g.json, "JSON output")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	p.IdColumns = splitList(*ids)
	return submit(ctx, g, &tandemv1.SubmitJobRequest{Kind: "psi", Peer: *peer, AgreementId: *agreement, Psi: &p}, *wait)
}
