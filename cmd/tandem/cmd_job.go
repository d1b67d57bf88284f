package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tandem-dev/tandem/node"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

func cmdJob(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("job: want list, status, result, cancel or watch")
	}
	sub := args[0]
	fs := flag.NewFlagSet("job "+sub, flag.ContinueOnError)
	fs.BoolVar(&g.json, "json", g.json, "JSON output")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if sub == "list" {
		resp, err := c.ListJobs(ctx, &tandemv1.ListJobsRequest{})
		if err != nil {
			return rpcErr(err)
		}
		return g.emit(resp.Jobs, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tPEER\tROLE\tSTATE\tPROGRESS\tCREATED")
			for _, j := range resp.Jobs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%3.0f%%\t%s\n", j.Id, j.Kind, j.Peer, j.Role, j.State, 100*j.Progress, time.Unix(j.CreatedUnix, 0).UTC().Format(time.RFC3339))
			}
			tw.Flush()
		})
	}
	if len(pos) != 1 {
		return fmt.Errorf("job %s: want one job ID", sub)
	}
	id := pos[0]
	switch sub {
	case "status":
		j, err := c.GetJob(ctx, &tandemv1.GetJobRequest{Id: id})
		if err != nil {
			return rpcErr(err)
		}
		return g.emit(jobJSON(j), func(w io.Writer) { printJob(w, j) })
	case "result":
		j, err := c.GetJob(ctx, &tandemv1.GetJobRequest{Id: id})
		if err != nil {
			return rpcErr(err)
		}
		if j.State != "succeeded" {
			return fmt.Errorf("job %s is %s%s; no result", id, j.State, reasonSuffix(j))
		}
		return g.emit(json.RawMessage(orEmpty(j.ResultJson)), func(w io.Writer) { printResult(w, j) })
	case "cancel":
		j, err := c.CancelJob(ctx, &tandemv1.GetJobRequest{Id: id})
		if err != nil {
			return rpcErr(err)
		}
		return g.emit(jobJSON(j), func(w io.Writer) { fmt.Fprintf(w, "job %s is %s\n", j.Id, j.State) })
	case "watch":
		return watchJob(ctx, g, c, id)
	}
	return fmt.Errorf("job: unknown subcommand %q", sub)
}

func orEmpty(b []byte) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

func reasonSuffix(j *tandemv1.JobState) string {
	if j.Reason == "" {
		return ""
	}
	return " (" + j.Reason + ")"
}

// jobJSON is the --json form of a job state: the result inlined as JSON.
func jobJSON(j *tandemv1.JobState) map[string]any {
	m := map[string]any{"id": j.Id, "kind": j.Kind, "peer": j.Peer, "role": j.Role, "state": j.State, "progress": j.Progress,
		"phase": j.Phase, "reason": j.Reason, "agreement_id": j.AgreementId, "created_unix": j.CreatedUnix, "updated_unix": j.UpdatedUnix}
	if len(j.ResultJson) > 0 {
		m["result"] = json.RawMessage(j.ResultJson)
	}
	return m
}

func printJob(w io.Writer, j *tandemv1.JobState) {
	fmt.Fprintf(w, "job %s\n  kind:      %s\n  peer:      %s (%s is %s)\n  state:     %s%s\n  progress:  %.0f%% %s\n  agreement: %s\n  created:   %s\n",
		j.Id, j.Kind, j.Peer, "this node", j.Role, j.State, reasonSuffix(j), 100*j.Progress, j.Phase, j.AgreementId, time.Unix(j.CreatedUnix, 0).UTC().Format(time.RFC3339))
	if len(j.ResultJson) > 0 {
		printResult(w, j)
	}
}

func printResult(w io.Writer, j *tandemv1.JobState) {
	var m map[string]any
	if json.Unmarshal(j.ResultJson, &m) != nil {
		fmt.Fprintf(w, "  result: %s\n", j.ResultJson)
		return
	}
	fmt.Fprintln(w, "  result:")
	for _, k := range sortedKeys(m) {
		if obj, ok := m[k].(map[string]any); ok {
			// Small objects (receipt, invalid ids per column): key=value.
			fmt.Fprintf(w, "    %-22s %s\n", k+":", keyValues(obj))
			continue
		}
		rows, ok := m[k].([]any)
		if !ok || len(rows) == 0 {
			fmt.Fprintf(w, "    %-22s %v\n", k+":", m[k])
			continue
		}
		// Lists of records (bands, metrics, cells): one line each.
		fmt.Fprintf(w, "    %s:\n", k)
		for _, r := range rows {
			rec, ok := r.(map[string]any)
			if !ok {
				fmt.Fprintf(w, "      %v\n", r)
				continue
			}
			fmt.Fprintf(w, "      %s\n", keyValues(rec))
		}
	}
}

// keyValues prints a JSON object as "k=v k=v" in key order, nulls left out.
func keyValues(rec map[string]any) string {
	var parts []string
	for _, f := range sortedKeys(rec) {
		if rec[f] != nil {
			parts = append(parts, fmt.Sprintf("%s=%v", f, rec[f]))
		}
	}
	return strings.Join(parts, " ")
}

// watchJob follows a job until it ends: a progress bar on a terminal,
// JSON lines with --json, plain lines otherwise. The exit status is 0 only
// if the job succeeded.
func watchJob(ctx context.Context, g *globals, c *node.Client, id string) error {
	stream, err := c.WatchJob(ctx, &tandemv1.GetJobRequest{Id: id})
	if err != nil {
		return rpcErr(err)
	}
	tty := isTerminal(g.stdout) && !g.json
	var last *tandemv1.JobState
	lastLine := ""
	for {
		j, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rpcErr(err)
		}
		last = j
		switch {
		case g.json:
			b, _ := json.Marshal(jobJSON(j))
			fmt.Fprintln(g.stdout, string(b))
		case tty:
			fmt.Fprintf(g.stdout, "\r\033[K%s %s %s", bar(j.Progress, 30), j.State, j.Phase)
		default:
			line := fmt.Sprintf("%s %3.0f%% %s", j.State, 100*j.Progress, j.Phase)
			if line != lastLine {
				fmt.Fprintln(g.stdout, line)
				lastLine = line
			}
		}
	}
	if tty {
		fmt.Fprintln(g.stdout)
	}
	if last == nil {
		return fmt.Errorf("job %s: no state received", id)
	}
	if !g.json {
		printJob(g.stdout, last)
	}
	if last.State != "succeeded" {
		return &exitError{code: 3, err: fmt.Errorf("job %s %s%s", id, last.State, reasonSuffix(last))}
	}
	return nil
}

func bar(p float64, width int) string {
	n := int(p*float64(width) + 0.5)
	n = max(0, min(n, width))
	return "[" + strings.Repeat("█", n) + strings.Repeat("·", width-n) + fmt.Sprintf("] %3.0f%%", 100*p)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func cmdPing(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	peer := fs.String("peer", "", "peer node name")
	rounds := fs.Int("rounds", 3, "signed round trips")
	wait := fs.Bool("wait", false, "wait for the job to end")
	fs.BoolVar(&g.json, "json", g.json, "JSON output")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return submit(ctx, g, &tandemv1.SubmitJobRequest{Kind: "ping", Peer: *peer, Ping: &tandemv1.PingParams{Rounds: int32(*rounds)}}, *wait)
}

// propose submits a job; a rejection is an error with exit status 3.
func propose(ctx context.Context, c *node.Client, req *tandemv1.SubmitJobRequest) (*tandemv1.JobState, error) {
	j, err := c.SubmitJob(ctx, req)
	if err != nil {
		return nil, rpcErr(err)
	}
	if j.State == "rejected" {
		return nil, &exitError{code: 3, err: fmt.Errorf("job %s rejected: %s", j.Id, j.Reason)}
	}
	return j, nil
}

// submit proposes a job and optionally watches it to the end.
func submit(ctx context.Context, g *globals, req *tandemv1.SubmitJobRequest, wait bool) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	j, err := propose(ctx, c, req)
	if err != nil {
		return err
	}
	if !wait {
		return g.emit(jobJSON(j), func(w io.Writer) {
			fmt.Fprintf(w, "job %s %s; follow it with: tandem job watch %s\n", j.Id, j.State, j.Id)
		})
	}
	if !g.json {
		fmt.Fprintf(g.stdout, "job %s %s\n", j.Id, j.State)
	}
	return watchJob(ctx, g, c, j.Id)
}
