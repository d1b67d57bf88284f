package testnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tandem-dev/tandem/internal/loopback"
	"github.com/tandem-dev/tandem/node"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/testnet/synth"
)

// Options configure Up.
type Options struct {
	Dir   string   // testnet directory; node homes are Dir/<name>
	Nodes []string // first is the bank, the rest partners; default bank,partner-a,partner-b
	Rows  int      // bank customers (default 2000)
	// PartnerRows is each partner's user count (default 80% of Rows).
	PartnerRows int
	Binary      string // tandem executable; default the running one
	Seed        int64
	Log         func(format string, args ...any) // progress lines; nil = silent
}

// Node is one running testnet node.
type Node struct {
	Name        string `json:"name"`
	Home        string `json:"home"`
	PID         int    `json:"pid"`
	PeerAddr    string `json:"peer_addr"`
	ControlAddr string `json:"control_addr"`
	HTTPAddr    string `json:"http_addr"`
	Fingerprint string `json:"fingerprint"`
	Dataset     string `json:"dataset"`
	Healthy     bool   `json:"healthy"`
	Error       string `json:"error,omitempty"`
}

// State is what DIR/testnet.json records.
type State struct {
	Nodes      []Node            `json:"nodes"`
	Agreements map[string]string `json:"agreements"` // partner → agreement id
	Truth      *synth.Truth      `json:"truth"`
}

const stateFile = "testnet.json"

// Up creates and starts a testnet. On failure it stops whatever it started.
func Up(ctx context.Context, o Options) (st *State, err error) {
	if o.Dir == "" {
		return nil, errors.New("testnet: --dir is required")
	}
	if len(o.Nodes) == 0 {
		o.Nodes = []string{"bank", "partner-a", "partner-b"}
	}
	if len(o.Nodes) < 2 {
		return nil, errors.New("testnet: need a bank and at least one partner")
	}
	if o.Rows == 0 {
		o.Rows = 2000
	}
	if o.PartnerRows == 0 {
		o.PartnerRows = o.Rows * 4 / 5
	}
	if o.Seed == 0 {
		o.Seed = 20261123
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if o.Binary == "" {
		if o.Binary, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(o.Dir, stateFile)); err == nil {
		return nil, fmt.Errorf("testnet: %s already holds a testnet (run testnet down first)", o.Dir)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	st = &State{Agreements: map[string]string{}}
	defer func() {
		if err != nil {
			Stop(st)
		}
	}()

	logf("creating %d node homes in %s", len(o.Nodes), o.Dir)
	// All nodes' ports in one draw: Addrs holds its ports until it returns,
	// so only one draw makes them distinct across nodes (two nodes once drew
	// the same peer port in separate draws).
	all, err := loopback.Addrs(3 * len(o.Nodes))
	if err != nil {
		return st, err
	}
	for k, name := range o.Nodes {
		ports := all[3*k : 3*k+3]
		home := filepath.Join(o.Dir, name)
		card, err := node.Init(node.InitOptions{Name: name, Dir: home, PeerListen: ports[0], ControlListen: ports[1], HTTPListen: ports[2]})
		if err != nil {
			return st, err
		}
		st.Nodes = append(st.Nodes, Node{Name: name, Home: home, PeerAddr: ports[0], ControlAddr: ports[1], HTTPAddr: ports[2], Fingerprint: card.Fingerprint})
	}
	// The bank pins every partner; each partner pins the bank.
	bank := &st.Nodes[0]
	for i := range st.Nodes[1:] {
		p := &st.Nodes[i+1]
		if err := pin(bank.Home, *p); err != nil {
			return st, err
		}
		if err := pin(p.Home, *bank); err != nil {
			return st, err
		}
	}

	logf("generating synthetic data (%d bank customers)", o.Rows)
	cfg := synth.Config{Seed: o.Seed, BankRows: o.Rows}
	kinds := []string{synth.KindEcommerce, synth.KindUtility, synth.KindTax}
	for i, name := range o.Nodes[1:] {
		cfg.Partners = append(cfg.Partners, synth.PartnerConfig{Name: name, Rows: o.PartnerRows, Overlap: 0.3 + 0.1*float64(i%3), Kind: kinds[i%3]})
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "data"), 0o755); err != nil {
		return st, err
	}
	truth, err := synth.Generate(filepath.Join(o.Dir, "data"), cfg)
	if err != nil {
		return st, err
	}
	st.Truth = truth

	for i := range st.Nodes {
		n := &st.Nodes[i]
		if n.PID, err = start(o.Binary, n.Home); err != nil {
			return st, err
		}
		logf("started %s (pid %d) peer=%s control=%s", n.Name, n.PID, n.PeerAddr, n.ControlAddr)
	}
	if err := save(o.Dir, st); err != nil {
		return st, err
	}
	for i := range st.Nodes {
		if err := waitReady(ctx, st.Nodes[i].Home, 30*time.Second); err != nil {
			log := filepath.Join(st.Nodes[i].Home, "node.log")
			return st, fmt.Errorf("testnet: %s did not come up: %w (see %s%s)", st.Nodes[i].Name, err, log, logTail(log, 3))
		}
	}

	logf("registering datasets")
	if err := register(ctx, bank, "customers", truth.BankFile, "income,age,tenure_months", "city_tier", "has_card", "consent_marketing"); err != nil {
		return st, err
	}
	for i, pt := range truth.Partners {
		features, attrs := partnerColumns(pt.Kind)
		if err := register(ctx, &st.Nodes[i+1], "users", pt.File, features, attrs, "", ""); err != nil {
			return st, err
		}
	}
	for i, p := range st.Nodes[1:] {
		features, attrs := partnerColumns(truth.Partners[i].Kind)
		id, err := agree(ctx, bank, &p, strings.Trim(features+","+attrs, ","))
		if err != nil {
			return st, err
		}
		st.Agreements[p.Name] = id
		logf("agreement %s between %s and %s is active", id, bank.Name, p.Name)
	}
	return st, save(o.Dir, st)
}

func partnerColumns(kind string) (features, attrs string) {
	switch kind {
	case synth.KindUtility:
		return "avg_bill,late_payments", ""
	case synth.KindTax:
		return "filing_years", "annual_income_band"
	}
	return "monthly_spend,orders_90d", "category"
}

// DefaultAgreement is the agreement the testnet signs between the bank and
// each partner: %[1]s is the bank, %[2]s the partner, %[3]s the partner's
// granted feature columns.
const DefaultAgreement = `# Testnet default agreement.
purpose: "Credit-card acquisition and cross-sell sizing on shared customers (testnet)"
job_kinds: [ping, psi, stats, train, score]
datasets:
  - {party: %[1]s, dataset: customers, columns: [phone, id_no, has_card, income, age, tenure_months, city_tier]}
  - {party: %[2]s, dataset: users, columns: [phone, id_no, %[3]s]}
psi_reveal: [initiator, both, count]
min_cell_size: 10
dp_epsilon_budget: 0
valid_days: 30
`

func agree(ctx context.Context, bank, partner *Node, columns string) (string, error) {
	bc, err := node.DialHome(bank.Home, "admin")
	if err != nil {
		return "", err
	}
	defer bc.Close()
	pc, err := node.DialHome(partner.Home, "admin")
	if err != nil {
		return "", err
	}
	defer pc.Close()
	rec, err := bc.ProposeAgreement(ctx, &tandemv1.ProposeAgreementRequest{Peer: partner.Name, Yaml: fmt.Appendf(nil, DefaultAgreement, bank.Name, partner.Name, columns)})
	if err != nil {
		return "", fmt.Errorf("testnet: propose agreement to %s: %w", partner.Name, err)
	}
	if _, err := pc.DecideAgreement(ctx, &tandemv1.DecideAgreementRequest{Id: rec.Agreement.Id, Accept: true}); err != nil {
		return "", fmt.Errorf("testnet: %s accept agreement: %w", partner.Name, err)
	}
	return rec.Agreement.Id, nil
}

func register(ctx context.Context, n *Node, name, file, features, attrs, label, consent string) error {
	c, err := node.DialHome(n.Home, "admin")
	if err != nil {
		return err
	}
	defer c.Close()
	abs, _ := filepath.Abs(file)
	req := &tandemv1.AddDatasetRequest{Name: name, File: abs, Ids: "phone:cn_mobile,id_no:cn_id", Label: label, Consent: consent}
	req.Features = splitComma(features)
	req.Attrs = splitComma(attrs)
	if _, err := c.AddDataset(ctx, req); err != nil {
		return fmt.Errorf("testnet: register %s on %s: %w", name, n.Name, err)
	}
	n.Dataset = name
	return nil
}

func splitComma(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// pin adds peer to the config of the node at home (before it starts).
func pin(home string, peer Node) error {
	cfg, err := node.LoadConfig(home)
	if err != nil {
		return err
	}
	cfg.Peers = append(cfg.Peers, node.PeerConfig{Name: peer.Name, Addr: peer.PeerAddr, Fingerprint: peer.Fingerprint})
	return cfg.Save()
}

// start launches `tandem node --home HOME` in its own process group with
// its log in HOME/node.log.
func start(bin, home string) (int, error) {
	logf, err := os.OpenFile(filepath.Join(home, "node.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "node", "--home", home)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("testnet: start node: %w", err)
	}
	pid := cmd.Process.Pid
	go cmd.Wait() // reap when we are the parent for long enough
	return pid, nil
}

// Restart starts a stopped node of a running testnet again.
func Restart(dir, name, bin string) error {
	st, err := Load(dir)
	if err != nil {
		return err
	}
	for i := range st.Nodes {
		if st.Nodes[i].Name == name {
			if st.Nodes[i].PID, err = start(bin, st.Nodes[i].Home); err != nil {
				return err
			}
			if err := save(dir, st); err != nil {
				return err
			}
			return waitReady(context.Background(), st.Nodes[i].Home, 30*time.Second)
		}
	}
	return fmt.Errorf("testnet: no node %q", name)
}

func waitReady(ctx context.Context, home string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := health(ctx, home)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func health(ctx context.Context, home string) error {
	c, err := node.DialHome(home, "admin")
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.Status(cctx, &tandemv1.StatusRequest{})
	return err
}

// logTail returns the last n lines of a node's log, for an error message
// (a node that failed to start says why there, e.g. a port taken).
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return "; it ends:\n" + strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func save(dir string, st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, stateFile), b, 0o644)
}

// Load reads DIR/testnet.json.
func Load(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("testnet: no testnet in %s: %w", dir, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("testnet: %s: %w", stateFile, err)
	}
	return &st, nil
}

// Status reports each node's process and health.
func Status(ctx context.Context, dir string) (*State, error) {
	st, err := Load(dir)
	if err != nil {
		return nil, err
	}
	for i := range st.Nodes {
		n := &st.Nodes[i]
		if !alive(n.PID) {
			n.Error = "not running"
			continue
		}
		if err := health(ctx, n.Home); err != nil {
			n.Error = err.Error()
			continue
		}
		n.Healthy = true
	}
	return st, nil
}

func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// Down stops every node of the testnet in dir and removes its state file.
func Down(dir string) error {
	st, err := Load(dir)
	if err != nil {
		return err
	}
	if err := Stop(st); err != nil {
		return err
	}
	return os.Remove(filepath.Join(dir, stateFile))
}

// Stop sends SIGTERM to every node, waits up to 15 s for each to exit, then
// SIGKILLs what is left. No process is left behind.
func Stop(st *State) error {
	for _, n := range st.Nodes {
		if alive(n.PID) {
			syscall.Kill(n.PID, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	var left []string
	for _, n := range st.Nodes {
		for alive(n.PID) && !zombie(n.PID) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(n.PID) && !zombie(n.PID) {
			syscall.Kill(-n.PID, syscall.SIGKILL)
			syscall.Kill(n.PID, syscall.SIGKILL)
			left = append(left, n.Name)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("testnet: killed %s after SIGTERM timeout", strings.Join(left, ", "))
	}
	return nil
}

// Kill sends SIGKILL to one node (crash tests).
func Kill(st *State, name string) error {
	for _, n := range st.Nodes {
		if n.Name == name {
			return syscall.Kill(n.PID, syscall.SIGKILL)
		}
	}
	return fmt.Errorf("testnet: no node %q", name)
}

// zombie reports an exited child not yet reaped by its parent.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}
