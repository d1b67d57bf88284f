package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"google.golang.org/grpc/status"

	"github.com/tandem-dev/tandem/node"
)

func cmdInit(g *globals, args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	var o node.InitOptions
	fs.StringVar(&o.Name, "name", "", "node name (required)")
	fs.StringVar(&o.Dir, "dir", "", "node home to create (required)")
	fs.StringVar(&o.PeerListen, "peer-listen", "", "peer listener (default 127.0.0.1:7400)")
	fs.StringVar(&o.ControlListen, "control-listen", "", "control listener (default 127.0.0.1:7401)")
	fs.StringVar(&o.HTTPListen, "http-listen", "", "metrics listener (default 127.0.0.1:7402)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	card, err := node.Init(o)
	if err != nil {
		return err
	}
	return g.emit(card, func(w io.Writer) {
		fmt.Fprintf(w, "initialised %s\n\nGive this identity card to each peer's operator:\n\n%s\nThey pin it with:\n  tandem --home DIR peer add --name %s --addr %s --key %s\n",
			o.Dir, card, card.Name, card.PeerAddr, card.Fingerprint)
	})
}

func cmdNode(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	home := fs.String("home", g.home, "node home")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *home == "" {
		return errors.New("node: --home is required")
	}
	cfg, err := node.LoadConfig(*home)
	if err != nil {
		return err
	}
	var lvl slog.Level
	lvl.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	n, err := node.New(cfg, log)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

func cmdCard(g *globals) error {
	if g.home == "" {
		return errors.New("card: --home is required")
	}
	card, err := node.ReadCard(g.home)
	if err != nil {
		return err
	}
	return g.emit(card, func(w io.Writer) { fmt.Fprint(w, card) })
}

// rpcErr turns a gRPC status into "message (code)" for operators.
func rpcErr(err error) error {
	if s, ok := status.FromError(err); ok {
		msg := s.Message()
		msg = strings.TrimPrefix(msg, "node: ")
		return fmt.Errorf("%s (%s)", msg, s.Code())
	}
	return err
}
