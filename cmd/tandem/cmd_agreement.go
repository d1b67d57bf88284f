package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

func cmdAgreement(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("agreement: want propose, accept, reject, list or show")
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	sub, args := args[0], args[1:]
	switch sub {
	case "propose":
		fs := flag.NewFlagSet("agreement propose", flag.ContinueOnError)
		peer := fs.String("peer", "", "peer node name")
		file := fs.String("file", "", "agreement YAML file")
		if _, err := parse(fs, args); err != nil {
			return err
		}
		b, err := os.ReadFile(*file)
		if err != nil {
			return fmt.Errorf("agreement propose: %w", err)
		}
		rec, err := c.ProposeAgreement(ctx, &tandemv1.ProposeAgreementRequest{Peer: *peer, Yaml: b})
		if err != nil {
			return rpcErr(err)
		}
		return g.emit(rec, func(w io.Writer) {
			fmt.Fprintf(w, "proposed %s to %s; pending until its operator runs: tandem agreement accept %s\n", rec.Agreement.Id, *peer, rec.Agreement.Id)
		})
	case "accept", "reject":
		fs := flag.NewFlagSet("agreement "+sub, flag.ContinueOnError)
		reason := fs.String("reason", "", "reason (recorded)")
		pos, err := parse(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return fmt.Errorf("agreement %s: want one agreement ID", sub)
		}
		rec, err := c.DecideAgreement(ctx, &tandemv1.DecideAgreementRequest{Id: pos[0], Accept: sub == "accept", Reason: *reason})
		if err != nil {
			return rpcErr(err)
		}
		return g.emit(rec, func(w io.Writer) { fmt.Fprintf(w, "agreement %s is %s\n", rec.Agreement.Id, rec.State) })
	case "list":
		resp, err := c.ListAgreements(ctx, &tandemv1.ListAgreementsRequest{})
		if err != nil {
			return rpcErr(err)
		}
		return g.emit(resp.Agreements, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tPROPOSER\tRESPONDER\tKINDS\tEXPIRES\tPURPOSE")
			for _, r := range resp.Agreements {
				a := r.Agreement
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Id, r.State, a.Proposer, a.Responder, strings.Join(a.JobKinds, ","),
					time.Unix(a.ExpiresUnix, 0).UTC().Format("2006-01-02"), a.Purpose)
			}
			tw.Flush()
		})
	case "show":
		if len(args) != 1 {
			return fmt.Errorf("agreement show: want one agreement ID")
		}
		r, err := c.GetAgreement(ctx, &tandemv1.GetAgreementRequest{Id: args[0]})
		if err != nil {
			return rpcErr(err)
		}
		return g.emit(r, func(w io.Writer) {
			a := r.Agreement
			fmt.Fprintf(w, "agreement %s (%s)\n  purpose:    %s\n  parties:    %s (proposer), %s (responder)\n  job kinds:  %s\n  psi reveal: %s\n  min cell k: %d\n  DP ε:       %g\n  expires:    %s\n  signed by:  proposer=%v responder=%v\n",
				a.Id, r.State, a.Purpose, a.Proposer, a.Responder, strings.Join(a.JobKinds, ", "), strings.Join(a.PsiReveal, ", "),
				a.MinCellSize, a.DpEpsilonBudget, time.Unix(a.ExpiresUnix, 0).UTC().Format(time.RFC3339), len(r.ProposerSignature) > 0, len(r.ResponderSignature) > 0)
			for _, d := range a.Datasets {
				fmt.Fprintf(w, "  dataset:    %s/%s columns=%s\n", d.Party, d.Dataset, strings.Join(d.Columns, ","))
			}
		})
	}
	return fmt.Errorf("agreement: unknown subcommand %q", sub)
}
