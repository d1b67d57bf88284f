package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

// cmdStats submits a statistics job over a PSI job's alignment:
//
//	tandem stats --psi-job ID --spec stats.yaml [--peer N] [--wait] [--json]
//	tandem stats show JOB   (the result as a table)
func cmdStats(ctx context.Context, g *globals, args []string) error {
	if len(args) > 0 && args[0] == "show" {
		fs := flag.NewFlagSet("stats show", flag.ContinueOnError)
		fs.BoolVar(&g.json, "json", g.json, "JSON output")
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return fmt.Errorf("stats show: want JOB")
		}
		return showStats(ctx, g, pos[0])
	}
	a, err := parseAlignedJob(ctx, g, "stats", "stats.yaml: group_by, statistics (see tandem help)",
		"wait for the job to end and print the statistics", args, func(b []byte) error {
			_, err := protocol.ParseStatsSpec(b)
			return err
		}, nil)
	if err != nil {
		return err
	}
	req := &tandemv1.SubmitJobRequest{Kind: "stats", Peer: a.peer, AgreementId: a.agreement,
		Stats: &tandemv1.StatsParams{PsiJobId: a.psiJob, SpecYaml: a.spec}}
	if !a.wait || g.json {
		return submit(ctx, g, req, a.wait)
	}
	// Human output with --wait: progress lines from submit, then the table.
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	j, err := propose(ctx, c, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "job %s %s\n", j.Id, j.State)
	quiet := *g
	quiet.stdout = io.Discard
	werr := watchJob(ctx, &quiet, c, j.Id)
	if err := showStats(ctx, g, j.Id); err != nil {
		return err
	}
	return werr
}

// showStats prints a stats job's result: the table on the bank, the
// release summary on the partner.
func showStats(ctx context.Context, g *globals, id string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	j, err := c.GetJob(ctx, &tandemv1.GetJobRequest{Id: id})
	if err != nil {
		return rpcErr(err)
	}
	if g.json {
		return g.emit(jobJSON(j), nil)
	}
	fmt.Fprintf(g.stdout, "job %s (%s, %s): %s%s\n", j.Id, j.Kind, j.Role, j.State, reasonSuffix(j))
	if len(j.ResultJson) == 0 {
		return nil
	}
	var res struct {
		PSIJob     string                       `json:"psi_job"`
		Statistics *protocol.StatsResult        `json:"statistics"`
		Released   *protocol.StatsPartnerResult `json:"released"`
	}
	if err := json.Unmarshal(j.ResultJson, &res); err != nil {
		return err
	}
	printStatsTable(g.stdout, res.Statistics, res.Released)
	return nil
}

func printStatsTable(w io.Writer, st *protocol.StatsResult, rel *protocol.StatsPartnerResult) {
	if rel != nil {
		fmt.Fprintf(w, "released to the bank: %d releases over %d aligned positions, ε spent %g\n", len(rel.Releases), rel.Length, rel.Epsilon)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "COLUMN\tSTATISTICS\tVALUES\tε")
		for _, r := range rel.Releases {
			col := r.Column
			if len(r.Columns) > 1 {
				col = strings.Join(r.Columns, ",")
			}
			kinds := fmt.Sprint(r.Kinds)
			if r.Round > 0 {
				kinds += fmt.Sprintf(" round %d", r.Round)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%g\n", col, kinds, r.Values, r.Epsilon)
		}
		tw.Flush()
	}
	if st == nil {
		return
	}
	fmt.Fprintf(w, "matched rows %d of %d aligned; group_by %q; k = %d; ε spent %g\n", st.Matched, st.Length, st.GroupBy, st.MinCellSize, st.Epsilon)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COLUMN\tSTATISTIC\tGROUP\tBIN\tVALUE\tROWS\tNOISE")
	for _, c := range st.Cells {
		v := "n/a"
		switch {
		case c.Suppressed:
			v = "suppressed"
		case c.Value != nil:
			v = strconv.FormatFloat(*c.Value, 'g', 8, 64)
		}
		noise := "-"
		if c.Noise != nil {
			noise = c.Noise.Mechanism
			if c.Noise.Scale > 0 {
				noise += fmt.Sprintf(" b=%.3g", c.Noise.Scale)
			}
			if c.Noise.Epsilon > 0 {
				noise += fmt.Sprintf(" ε=%g", c.Noise.Epsilon)
			}
		}
		rows := strconv.FormatInt(c.Rows, 10)
		if c.Suppressed {
			rows = "<k"
		}
		stat := c.Statistic
		if c.Probability > 0 {
			stat += fmt.Sprintf(" p=%g", c.Probability)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Column, stat, c.Group, c.Bin, v, rows, noise)
	}
	tw.Flush()
}
