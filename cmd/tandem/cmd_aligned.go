package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

// alignedJobArgs are the flags shared by jobs that run over a PSI
// alignment (stats, train).
type alignedJobArgs struct {
	psiJob, peer, agreement string
	spec                    []byte
	wait                    bool
}

// parseAlignedJob parses --psi-job, --spec (checked locally with check
// before anything is sent), --peer (default: the PSI job's peer),
// --agreement, --wait and --json; extra, if not nil, registers the kind's
// own flags.
func parseAlignedJob(ctx context.Context, g *globals, kind, specHelp, waitHelp string, args []string, check func([]byte) error, extra func(*flag.FlagSet)) (*alignedJobArgs, error) {
	fs := flag.NewFlagSet(kind, flag.ContinueOnError)
	if extra != nil {
		extra(fs)
	}
	psiJob := fs.String("psi-job", "", "the PSI job whose alignment to use")
	specFile := fs.String("spec", "", specHelp)
	peer := fs.String("peer", "", "peer node name (default: the PSI job's peer)")
	agreement := fs.String("agreement", "", "agreement ID (default: the newest active one allowing "+kind+")")
	wait := fs.Bool("wait", false, waitHelp)
	fs.BoolVar(&g.json, "json", g.json, "JSON output")
	if _, err := parse(fs, args); err != nil {
		return nil, err
	}
	if *psiJob == "" || *specFile == "" {
		return nil, fmt.Errorf("%s: want --psi-job ID --spec FILE", kind)
	}
	spec, err := os.ReadFile(*specFile)
	if err != nil {
		return nil, err
	}
	if kind == "train" && partnerOnlyFlag(fs) {
		// --partner-only is the spec's partner_only: true. A spec that
		// already says so is left alone; one that sets it to false gets
		// a duplicate key, refused with the line named.
		if s, err := protocol.ParseTrainSpec(spec); err != nil || !s.PartnerOnly {
			spec = append(append(spec, '\n'), []byte("partner_only: true\n")...)
		}
	}
	if err := check(spec); err != nil {
		return nil, err
	}
	if *peer == "" {
		c, err := g.client()
		if err != nil {
			return nil, err
		}
		j, err := c.GetJob(ctx, &tandemv1.GetJobRequest{Id: *psiJob})
		c.Close()
		if err != nil {
			return nil, rpcErr(err)
		}
		*peer = j.Peer
	}
	return &alignedJobArgs{psiJob: *psiJob, peer: *peer, agreement: *agreement, spec: spec, wait: *wait}, nil
}

// partnerOnlyFlag reports whether the train flag --partner-only was set.
func partnerOnlyFlag(fs *flag.FlagSet) bool {
	f := fs.Lookup("partner-only")
	return f != nil && f.Value.String() == "true"
}
