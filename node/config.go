package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is a node's configuration, read from DIR/tandem.yaml. Its zero
// value works: validate fills every default named in the field comments.
type Config struct {
	// Name is the node's name as peers pin it, e.g. "bank". Required.
	Name string `yaml:"name"`
	// PeerListen is the node-to-node mTLS listener. Default 127.0.0.1:7400.
	PeerListen string `yaml:"peer_listen"`
	// PeerAdvertise is the address peers dial; default PeerListen.
	PeerAdvertise string `yaml:"peer_advertise"`
	// ControlListen is the operator gRPC listener. Default 127.0.0.1:7401.
	// It refuses a non-loopback address unless ControlAllowRemote is set.
	ControlListen string `yaml:"control_listen"`
	// ControlAllowRemote permits a non-loopback ControlListen.
	ControlAllowRemote bool `yaml:"control_allow_remote"`
	// HTTPListen serves /metrics and /healthz. Default 127.0.0.1:7402;
	// "off" disables it.
	HTTPListen string `yaml:"http_listen"`
	// DataDir holds Badger state and job files. Default "data" (relative to
	// the home directory).
	DataDir string `yaml:"data_dir"`
	// KeyFile is the Ed25519 identity key (PEM, PKCS#8). Default "node.key".
	KeyFile string `yaml:"key_file"`
	// CertFile is the self-signed TLS certificate. Default "node.crt".
	CertFile string `yaml:"cert_file"`
	// Tokens maps role → SHA-256 (hex) of that role's bearer token. The
	// tokens themselves live in DIR/tokens/<role>.token, readable by the
	// operator only.
	Tokens map[string]string `yaml:"tokens"`
	// Peers are the nodes this node trusts, pinned by key fingerprint.
	Peers []PeerConfig `yaml:"peers"`
	// ProposalTTLSeconds bounds how long a job proposal stays valid.
	// Default 300.
	ProposalTTLSeconds int `yaml:"proposal_ttl_seconds"`
	// MaxMessageBytes caps every gRPC message in either direction.
	// Default 4 MiB; frames carry at most 1 MiB of payload.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// MinFreeBytes is the free-space watermark of the data directory:
	// below it the node refuses new jobs (exports and audit still work).
	// Default 134217728 (128 MiB).
	MinFreeBytes int64 `yaml:"min_free_bytes"`

	home string // directory the config was read from
}

// PeerConfig pins one peer node.
type PeerConfig struct {
	Name        string `yaml:"name"`
	Addr        string `yaml:"addr"`
	Fingerprint string `yaml:"fingerprint"`
}

// Roles of operator tokens, from most to least privileged.
var Roles = []string{"admin", "analyst", "compliance", "marketing"}

var (
	nameRE        = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	fingerprintRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ConfigFile is the config file name inside a node home.
const ConfigFile = "tandem.yaml"

// LoadConfig reads and validates DIR/tandem.yaml. Unknown fields and bad
// values are errors naming the field.
func LoadConfig(home string) (*Config, error) {
	path := filepath.Join(home, ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node: read config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // empty file: all defaults
		return nil, fmt.Errorf("node: config %s: %s", path, yamlErrorWithField(b, err))
	}
	c.home = home
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("node: config %s: %w", path, err)
	}
	return &c, nil
}

// Home is the directory the config belongs to.
func (c *Config) Home() string { return c.home }

// validate fills defaults and rejects nonsense, naming the field.
func (c *Config) validate() error {
	if c.Name == "" {
		return errors.New("field name: required")
	}
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("field name: %q must match %s", c.Name, nameRE)
	}
	if c.PeerListen == "" {
		c.PeerListen = "127.0.0.1:7400"
	}
	if c.ControlListen == "" {
		c.ControlListen = "127.0.0.1:7401"
	}
	if c.HTTPListen == "" {
		c.HTTPListen = "127.0.0.1:7402"
	}
	if c.PeerAdvertise == "" {
		c.PeerAdvertise = c.PeerListen
	}
	for field, addr := range map[string]string{"peer_listen": c.PeerListen, "control_listen": c.ControlListen, "peer_advertise": c.PeerAdvertise} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("field %s: %q is not host:port", field, addr)
		}
	}
	if c.HTTPListen != "off" {
		if _, _, err := net.SplitHostPort(c.HTTPListen); err != nil {
			return fmt.Errorf("field http_listen: %q is not host:port or off", c.HTTPListen)
		}
	}
	if !c.ControlAllowRemote {
		host, _, _ := net.SplitHostPort(c.ControlListen)
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("field control_listen: %q is not loopback (set control_allow_remote to allow)", c.ControlListen)
		}
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.KeyFile == "" {
		c.KeyFile = "node.key"
	}
	if c.CertFile == "" {
		c.CertFile = "node.crt"
	}
	if c.ProposalTTLSeconds == 0 {
		c.ProposalTTLSeconds = 300
	}
	if c.ProposalTTLSeconds < 0 {
		return errors.New("field proposal_ttl_seconds: must be positive")
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 4 << 20
	}
	if c.MaxMessageBytes < 2<<20 || c.MaxMessageBytes > 64<<20 {
		return errors.New("field max_message_bytes: must be between 2 MiB and 64 MiB")
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = 128 << 20
	}
	if c.MinFreeBytes < 0 {
		return errors.New("field min_free_bytes: must be ≥ 0")
	}
	switch c.LogLevel {
	case "":
		c.LogLevel = "info"
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("field log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	for role, h := range c.Tokens {
		if !isRole(role) {
			return fmt.Errorf("field tokens: unknown role %q (want one of %s)", role, strings.Join(Roles, ", "))
		}
		if !fingerprintRE.MatchString(h) {
			return fmt.Errorf("field tokens.%s: want the SHA-256 of the token in hex", role)
		}
	}
	seen := map[string]bool{}
	for i, p := range c.Peers {
		if err := p.validate(); err != nil {
			return fmt.Errorf("field peers[%d]: %w", i, err)
		}
		if p.Name == c.Name {
			return fmt.Errorf("field peers[%d].name: %q is this node's own name", i, p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("field peers[%d].name: duplicate peer %q", i, p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

func (p PeerConfig) validate() error {
	if !nameRE.MatchString(p.Name) {
		return fmt.Errorf("name: %q must match %s", p.Name, nameRE)
	}
	if _, _, err := net.SplitHostPort(p.Addr); err != nil {
		return fmt.Errorf("addr: %q is not host:port", p.Addr)
	}
	if !fingerprintRE.MatchString(p.Fingerprint) {
		return errors.New("fingerprint: want 64 hex digits (SHA-256 of the peer's public key)")
	}
	return nil
}

func isRole(r string) bool {
	for _, x := range Roles {
		if x == r {
			return true
		}
	}
	return false
}

func (c *Config) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.home, p)
}

// peer returns the pinned peer by name.
func (c *Config) peer(name string) (PeerConfig, bool) {
	for _, p := range c.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return PeerConfig{}, false
}

// yamlErrorWithField prefixes yaml.v3 type errors ("line 2: cannot
// unmarshal …") with the name of the field at that line.
func yamlErrorWithField(src []byte, err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil {
		return err.Error()
	}
	fields := map[int]string{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				name := prefix + k.Value
				fields[k.Line] = name
				fields[v.Line] = name
				walk(v, name+".")
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d].", strings.TrimSuffix(prefix, "."), i))
			}
		}
	}
	walk(&doc, "")
	var parts []string
	for _, msg := range te.Errors {
		var line int
		if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
			if f, ok := fields[line]; ok {
				msg = "field " + f + ": " + msg
			}
		}
		parts = append(parts, msg)
	}
	return strings.Join(parts, "; ")
}
