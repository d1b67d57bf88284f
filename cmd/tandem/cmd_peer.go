package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

func cmdPeer(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("peer: want add or list")
	}
	switch args[0] {
	case "add":
		fs := flag.NewFlagSet("peer add", flag.ContinueOnError)
		var req tandemv1.AddPeerRequest
		fs.StringVar(&req.Name, "name", "", "peer name")
		fs.StringVar(&req.Addr, "addr", "", "peer address HOST:PORT")
		fs.StringVar(&req.Fingerprint, "key", "", "peer key fingerprint")
		if _, err := parse(fs, args[1:]); err != nil {
			return err
		}
		c, err := g.client()
		if err != nil {
			return err
		}
		defer c.Close()
		p, err := c.AddPeer(ctx, &req)
		if err != nil {
			return rpcErr(err)
		}
		return g.emit(p, func(w io.Writer) { fmt.Fprintf(w, "pinned %s at %s (%s)\n", p.Name, p.Addr, p.Fingerprint) })
	case "list":
		c, err := g.client()
		if err != nil {
			return err
		}
		defer c.Close()
		resp, err := c.ListPeers(ctx, &tandemv1.ListPeersRequest{Check: true})
		if err != nil {
			return rpcErr(err)
		}
		return g.emit(resp.Peers, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tADDR\tREACHABLE\tFINGERPRINT")
			for _, p := range resp.Peers {
				r := "yes"
				if !p.Reachable {
					r = "no: " + p.Error
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Addr, r, p.Fingerprint[:16]+"…")
			}
			tw.Flush()
		})
	}
	return fmt.Errorf("peer: unknown subcommand %q", args[0])
}
