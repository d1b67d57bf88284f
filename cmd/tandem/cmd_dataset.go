package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/tandem-dev/tandem/node/dataset"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

func cmdDataset(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("dataset: want add, list or show")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "add":
		fs := flag.NewFlagSet("dataset add", flag.ContinueOnError)
		var req tandemv1.AddDatasetRequest
		var features, attrs string
		fs.StringVar(&req.Name, "name", "", "dataset name")
		fs.StringVar(&req.File, "file", "", "CSV (separated by , ; tab or |, read from the header; .csv or .tsv) or Parquet file")
		fs.StringVar(&req.Ids, "id", "", "identifier columns COL:KIND[,COL:KIND] (kinds: cn_mobile, cn_id, email, raw)")
		fs.StringVar(&req.Label, "label", "", "0/1 label column")
		fs.StringVar(&features, "features", "", "numeric feature columns a,b,c")
		fs.StringVar(&attrs, "attrs", "", "categorical attribute columns x,y")
		fs.StringVar(&req.Consent, "consent", "", "marketing consent column")
		if _, err := parse(fs, args); err != nil {
			return err
		}
		req.Features, req.Attrs = splitList(features), splitList(attrs)
		if req.File != "" {
			abs, err := filepath.Abs(req.File)
			if err != nil {
				return err
			}
			req.File = abs
		}
		c, err := g.client()
		if err != nil {
			return err
		}
		defer c.Close()
		info, err := c.AddDataset(ctx, &req)
		if err != nil {
			return rpcErr(err)
		}
		return showDataset(g, info)
	case "list":
		c, err := g.client()
		if err != nil {
			return err
		}
		defer c.Close()
		resp, err := c.ListDatasets(ctx, &tandemv1.ListDatasetsRequest{})
		if err != nil {
			return rpcErr(err)
		}
		var out []map[string]any
		for _, d := range resp.Datasets {
			out = append(out, map[string]any{"name": d.Name, "file": d.File, "rows": d.Rows, "digest": d.Digest})
		}
		return g.emit(out, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROWS\tDIGEST\tFILE")
			for _, d := range resp.Datasets {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", d.Name, d.Rows, d.Digest[:min(len(d.Digest), 23)]+"…", d.File)
			}
			tw.Flush()
		})
	case "show":
		if len(args) != 1 {
			return fmt.Errorf("dataset show: want one dataset name")
		}
		c, err := g.client()
		if err != nil {
			return err
		}
		defer c.Close()
		info, err := c.GetDataset(ctx, &tandemv1.GetDatasetRequest{Name: args[0]})
		if err != nil {
			return rpcErr(err)
		}
		return showDataset(g, info)
	}
	return fmt.Errorf("dataset: unknown subcommand %q", sub)
}

// showDataset prints a dataset profile: counts and line numbers only,
// never identifier values.
func showDataset(g *globals, info *tandemv1.DatasetInfo) error {
	var p dataset.Profile
	if err := json.Unmarshal(info.ProfileJson, &p); err != nil {
		return err
	}
	return g.emit(p, func(w io.Writer) {
		format := p.Format
		if p.Delimiter != "" {
			format += fmt.Sprintf(", %q-separated", p.Delimiter)
		}
		fmt.Fprintf(w, "dataset %s: %d rows, %s\n  file:   %s (%s)\n", info.Name, p.Rows, p.Digest, p.File, format)
		for _, id := range p.IDs {
			fmt.Fprintf(w, "  id %-10s %-9s valid=%d distinct=%d duplicates=%d nulls=%d", id.Column, id.Kind, id.Valid, id.Distinct, id.Duplicates, id.Nulls)
			if len(id.Invalid) > 0 {
				var parts []string
				for _, r := range sortedKeys(id.Invalid) {
					parts = append(parts, fmt.Sprintf("%s=%d", r, id.Invalid[r]))
				}
				fmt.Fprintf(w, " invalid: %s (first lines %v)", strings.Join(parts, " "), id.FirstInvalidLines)
			}
			fmt.Fprintln(w)
		}
		if p.Label != nil {
			fmt.Fprintf(w, "  label %s: positives=%d negatives=%d nulls=%d bad=%d\n", p.Label.Column, p.Label.Positives, p.Label.Negatives, p.Label.Nulls, p.Label.Bad)
		}
		for _, f := range p.Features {
			fmt.Fprintf(w, "  feature %-16s count=%d nulls=%d bad=%d min=%.4g max=%.4g mean=%.4g\n", f.Column, f.Count, f.Nulls, f.Bad, f.Min, f.Max, f.Mean)
		}
		for _, a := range p.Attrs {
			fmt.Fprintf(w, "  attr %-19s count=%d nulls=%d distinct=%d%s\n", a.Column, a.Count, a.Nulls, a.Distinct, topLevels(a.Top))
		}
		if p.Consent != nil {
			fmt.Fprintf(w, "  consent %s: yes=%d no=%d nulls=%d bad=%d\n", p.Consent.Column, p.Consent.Yes, p.Consent.No, p.Consent.Nulls, p.Consent.Bad)
		}
	})
}

// topLevels lists a categorical column's most frequent levels, the names a
// model spec uses as indicators (column=level).
func topLevels(top []dataset.CategoryCount) string {
	if len(top) == 0 {
		return ""
	}
	parts := make([]string, len(top))
	for i, c := range top {
		parts[i] = fmt.Sprintf("%s:%d", c.Value, c.Count)
	}
	return " levels " + strings.Join(parts, " ")
}
