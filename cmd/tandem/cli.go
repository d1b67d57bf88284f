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

	"github.com/tandem-dev/tandem/node"
)

var errUsage = errors.New("usage")

// errHelpShown ends a command after its --help was printed (exit status 0).
var errHelpShown = errors.New("help shown")

// commandUsage is the line of the usage text that documents the command
// ("agreement propose" → "agreement propose --peer N --file agreement.yaml"),
// or the name itself.
func commandUsage(name string) string {
	for _, line := range strings.Split(usage, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, name); ok && (rest == "" || rest[0] == ' ') {
			return line
		}
	}
	return name + " [flags]"
}

const usage = `tandem — privacy-preserving data collaboration node

Usage: tandem [--home DIR] [--node ADDR --token TOKEN] [--role ROLE] [--json] COMMAND ...

Node:
  init --name NAME --dir DIR [--peer-listen A] [--control-listen A] [--http-listen A]
  node --home DIR                     run the daemon
  card                                print this node's identity card
Peers:
  peer add --name N --addr HOST:PORT --key FINGERPRINT
  peer list
Datasets:
  dataset add --name N --file F.csv|.parquet --id COL:KIND[,COL:KIND] [--label C] [--features a,b] [--attrs x,y] [--consent C]
  dataset list | dataset show NAME
Agreements:
  agreement propose --peer N --file agreement.yaml
  agreement accept ID | agreement reject ID [--reason R] | agreement list | agreement show ID
Jobs:
  ping --peer N [--rounds R] [--wait]
  psi --peer N --dataset D --peer-dataset D [--id COL,...] [--reveal initiator|both|count] [--wait]
  psi export JOB --out FILE.csv
  stats --psi-job ID --spec stats.yaml [--peer N] [--wait]   (statistics over a PSI alignment)
  stats show JOB
  train --psi-job ID --spec model.yaml [--partner-only] [--peer N] [--wait] [--json]   (vertical logistic regression)
  score --model ID --psi-job ID [--bands N] [--peer N] [--wait] [--json]   (scores of the matched rows, to scores.csv)
  model score ID --dataset D --out FILE.csv [--bands N]   (local scoring with a whole model: partner-only models on the partner)
  model list | model show ID | model export ID --out FILE [--format json|pmml]   (this node's part of a split model)
  job list | job status ID | job result ID | job cancel ID | job watch ID
Audit:
  audit tail [--follow] [--job ID] [--log L] | audit show SEQ [--log L]
  audit export --out DIR [--since SEQ]
  audit verify --dir DIR [--pubkey KEY] [--trusted-checkpoint FILE]   (offline)
Testnet:
  testnet up --dir D [--nodes bank,partner-a,partner-b] [--rows N]
  testnet status --dir D | testnet down --dir D
  demo [--rows N] [--keep DIR]
`

// globals are the flags before the command.
type globals struct {
	home, addr, token, role string
	json                    bool
	stdout, stderr          io.Writer
}

func dispatch(ctx context.Context, args []string) error {
	g := &globals{stdout: os.Stdout, stderr: os.Stderr}
	fs := flag.NewFlagSet("tandem", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.home, "home", os.Getenv("TANDEM_HOME"), "node home directory")
	fs.StringVar(&g.addr, "node", "", "control address (instead of --home)")
	fs.StringVar(&g.token, "token", os.Getenv("TANDEM_TOKEN"), "bearer token (instead of the home's token file)")
	fs.StringVar(&g.role, "role", "admin", "role whose token to use from the home")
	fs.BoolVar(&g.json, "json", false, "JSON output")
	if err := fs.Parse(args); err != nil {
		fmt.Fprint(os.Stderr, usage)
		return errUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errUsage
	}
	cmd, rest := rest[0], takeJSONFlag(g, rest[1:])
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(g.stdout, usage)
		return nil
	case "version":
		fmt.Fprintln(g.stdout, "tandem", node.Version)
		return nil
	case "init":
		return cmdInit(g, rest)
	case "node":
		return cmdNode(ctx, g, rest)
	case "card":
		return cmdCard(g)
	case "peer":
		return cmdPeer(ctx, g, rest)
	case "dataset":
		return cmdDataset(ctx, g, rest)
	case "agreement":
		return cmdAgreement(ctx, g, rest)
	case "job":
		return cmdJob(ctx, g, rest)
	case "ping":
		return cmdPing(ctx, g, rest)
	case "psi":
		return cmdPSI(ctx, g, rest)
	case "stats":
		return cmdStats(ctx, g, rest)
	case "train":
		return cmdTrain(ctx, g, rest)
	case "model":
		return cmdModel(ctx, g, rest)
	case "score":
		return cmdScore(ctx, g, rest)
	case "testnet":
		return cmdTestnet(ctx, g, rest)
	case "demo":
		return cmdDemo(ctx, g, rest)
	case "audit":
		return cmdAudit(ctx, g, rest)
	}
	fmt.Fprintf(os.Stderr, "tandem: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}

// takeJSONFlag accepts the global --json anywhere after the command
// ("dataset show customers --json"), as every command that prints takes
// it: it sets g.json and removes the flag.
func takeJSONFlag(g *globals, args []string) []string {
	out := args[:0:0]
	for _, a := range args {
		switch a {
		case "--json", "-json", "--json=true", "-json=true":
			g.json = true
		case "--json=false", "-json=false":
			g.json = false
		default:
			out = append(out, a)
		}
	}
	return out
}

// parse parses a subcommand's flags, allowing positional arguments before
// and after flags ("job status ID --json").
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			// "tandem init --help": the command's line of the usage
			// text and its flags, on stdout, exit status 0.
			fmt.Fprintf(os.Stdout, "usage: tandem %s\n\nflags:\n", commandUsage(fs.Name()))
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return nil, errHelpShown
		} else if err != nil {
			return nil, fmt.Errorf("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// client connects to the node named by --home or --node/--token.
func (g *globals) client() (*node.Client, error) {
	if g.addr != "" {
		if g.token == "" {
			return nil, errors.New("--node needs --token (or TANDEM_TOKEN)")
		}
		return node.DialControl(g.addr, g.token)
	}
	if g.home == "" {
		return nil, errors.New("no node: give --home DIR (or --node ADDR --token T)")
	}
	if g.token != "" {
		c, err := node.LoadConfig(g.home)
		if err != nil {
			return nil, err
		}
		return node.DialControl(c.ControlListen, g.token)
	}
	return node.DialHome(g.home, g.role)
}

// emit prints v as JSON with --json, else the text from human().
func (g *globals) emit(v any, human func(w io.Writer)) error {
	if g.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(g.stdout)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
