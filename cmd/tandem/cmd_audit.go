package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-dev/tandem/audit"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

func cmdAudit(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("audit: want tail, export or verify")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "tail":
		fs := flag.NewFlagSet("audit tail", flag.ContinueOnError)
		log := fs.String("log", "", "log name (root, peer/<name>); default all")
		job := fs.String("job", "", "only this job's entries")
		follow := fs.Bool("follow", false, "keep printing new entries")
		fs.BoolVar(&g.json, "json", g.json, "JSON lines")
		if _, err := parse(fs, args); err != nil {
			return err
		}
		g.role = "compliance"
		c, err := g.client()
		if err != nil {
			return err
		}
		defer c.Close()
		next := map[string]uint64{}
		for first := true; ; first = false {
			req := &tandemv1.AuditTailRequest{Log: *log, JobId: *job}
			resp, err := c.AuditTail(ctx, req)
			if err != nil {
				return rpcErr(err)
			}
			for _, e := range resp.Entries {
				if !first && e.Seq < next[e.Log] {
					continue
				}
				next[e.Log] = e.Seq + 1
				printEntry(g, e)
			}
			if !*follow {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	case "export":
		fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
		out := fs.String("out", "", "bundle directory")
		since := fs.Uint64("since", 0, "first entry to include")
		if _, err := parse(fs, args); err != nil {
			return err
		}
		abs, err := filepath.Abs(*out)
		if err != nil || *out == "" {
			return fmt.Errorf("audit export: --out DIR is required")
		}
		g.role = "compliance"
		c, err := g.client()
		if err != nil {
			return err
		}
		defer c.Close()
		resp, err := c.AuditExport(ctx, &tandemv1.AuditExportRequest{Out: abs, Since: *since})
		if err != nil {
			return rpcErr(err)
		}
		if err := os.WriteFile(filepath.Join(abs, "verifier.key"), []byte(resp.VerifierKey+"\n"), 0o644); err != nil {
			return err
		}
		return g.emit(resp, func(w io.Writer) {
			fmt.Fprintf(w, "exported %d logs to %s\nverify offline with: tandem audit verify --dir %s --pubkey '%s'\n", len(resp.Dirs), abs, abs, resp.VerifierKey)
		})
	case "verify":
		return auditVerify(g, args)
	case "show":
		fs := flag.NewFlagSet("audit show", flag.ContinueOnError)
		log := fs.String("log", "root", "log name (root, peer/<name>)")
		fs.BoolVar(&g.json, "json", g.json, "JSON output")
		pos, err := parse(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return fmt.Errorf("audit show: want one SEQ")
		}
		seq, err := strconv.ParseUint(pos[0], 10, 64)
		if err != nil {
			return fmt.Errorf("audit show: SEQ %q is not a number", pos[0])
		}
		g.role = "compliance"
		c, err := g.client()
		if err != nil {
			return err
		}
		defer c.Close()
		resp, err := c.AuditShow(ctx, &tandemv1.AuditShowRequest{Log: *log, Seq: seq})
		if err != nil {
			return rpcErr(err)
		}
		return g.emit(resp, func(w io.Writer) {
			var pretty bytes.Buffer
			json.Indent(&pretty, resp.EntryJson, "  ", "  ")
			fmt.Fprintf(w, "log %s entry %d\n  %s\n\ninclusion proof (%d hashes, verified against the checkpoint: %v):\n", resp.Log, resp.Seq, pretty.String(), len(resp.Proof), resp.Verified)
			for _, h := range resp.Proof {
				fmt.Fprintf(w, "  %x\n", h)
			}
			fmt.Fprintf(w, "\ncheckpoint:\n%s", resp.Checkpoint)
		})
	}
	return fmt.Errorf("audit: unknown subcommand %q", sub)
}

func printEntry(g *globals, e *tandemv1.AuditEntry) {
	if g.json {
		fmt.Fprintf(g.stdout, "{\"log\":%q,\"entry\":%s}\n", e.Log, e.EntryJson)
		return
	}
	var m struct {
		Kind, JobID, AgreementID string
		Actor                    struct{ Role, Name string }
		Detail                   map[string]string
	}
	json.Unmarshal(e.EntryJson, &m)
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s %5d %-20s", e.Log, e.Seq, m.Kind)
	for _, kv := range [][2]string{{"job", m.JobID}, {"agreement", m.AgreementID}, {"by", strings.Trim(m.Actor.Role+"/"+m.Actor.Name, "/")}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	for _, k := range sortedKeys(m.Detail) {
		if v := m.Detail[k]; v != "" {
			fmt.Fprintf(&b, " %s=%q", k, v)
		}
	}
	fmt.Fprintln(g.stdout, b.String())
}

// auditVerify checks exported bundles offline with public keys only. A
// directory holding one sub-directory per log is verified log by log. On
// failure the exit code names the tamper class (see audit.Class).
func auditVerify(g *globals, args []string) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	dir := fs.String("dir", "", "exported bundle (or a directory of bundles)")
	pub := fs.String("pubkey", "", "the node's note verifier key (default: verifier.key beside the bundle — trust on first use)")
	trusted := fs.String("trusted-checkpoint", "", "checkpoint file from an earlier verification")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("audit verify: --dir is required")
	}
	bundles := []string{*dir}
	if _, err := os.Stat(filepath.Join(*dir, audit.BundleCheckpoint)); err != nil {
		ents, err := os.ReadDir(*dir)
		if err != nil {
			return err
		}
		bundles = nil
		for _, e := range ents {
			if e.IsDir() {
				bundles = append(bundles, filepath.Join(*dir, e.Name()))
			}
		}
	}
	key := *pub
	if key == "" {
		b, err := os.ReadFile(filepath.Join(*dir, "verifier.key"))
		if err != nil {
			return fmt.Errorf("audit verify: --pubkey is required (no verifier.key in %s)", *dir)
		}
		key = strings.TrimSpace(string(b))
		fmt.Fprintln(g.stderr, "warning: using verifier.key from the bundle directory; pass --pubkey from a trusted source")
	}
	v, err := audit.ParseVerifierKey(key)
	if err != nil {
		return fmt.Errorf("audit verify: --pubkey: %w", err)
	}
	opts := audit.VerifyOptions{PubKey: v}
	if *trusted != "" {
		if opts.TrustedCheckpoint, err = os.ReadFile(*trusted); err != nil {
			return err
		}
	}
	var reports []*audit.BundleReport
	for _, b := range bundles {
		rep, err := audit.VerifyBundle(b, opts)
		if err != nil {
			var ve *audit.VerifyError
			if errors.As(err, &ve) {
				return &exitError{code: ve.Class.ExitCode(), err: fmt.Errorf("%s: %w", b, err)}
			}
			return fmt.Errorf("%s: %w", b, err)
		}
		reports = append(reports, rep)
	}
	return g.emit(reports, func(w io.Writer) {
		for _, r := range reports {
			fmt.Fprintf(w, "OK %-18s entries [%d,%d) root %x receipts=%d\n", r.Log, r.Since, r.Size, r.Root[:8], r.Receipts)
		}
	})
}
