package node

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"text/template"
)

// configTemplate renders a commented tandem.yaml. The node rewrites its
// config only through this template, so operator-facing comments survive
// `peer add`.
var configTemplate = template.Must(template.New("cfg").Parse(`# Tandem node configuration. Every field may be omitted; the default is
# given in the comment above it. Unknown fields are an error.

# Node name, as peers pin it. Required.
name: {{.Name}}

# Node-to-node listener (gRPC, mutual TLS with pinned keys). Default 127.0.0.1:7400.
peer_listen: {{.PeerListen}}
# Address peers dial to reach this node. Default: peer_listen.
peer_advertise: {{.PeerAdvertise}}

# Operator listener (gRPC, bearer tokens). Default 127.0.0.1:7401; loopback
# only unless control_allow_remote is true.
control_listen: {{.ControlListen}}
control_allow_remote: {{.ControlAllowRemote}}

# /metrics (Prometheus) and /healthz. Default 127.0.0.1:7402; "off" disables.
http_listen: {{.HTTPListen}}

# Badger state and job files, relative to this directory. Default data.
data_dir: {{.DataDir}}
# Ed25519 identity key and self-signed TLS certificate. Defaults node.key, node.crt.
key_file: {{.KeyFile}}
cert_file: {{.CertFile}}

# Seconds a job proposal stays valid (replay window). Default 300.
proposal_ttl_seconds: {{.ProposalTTLSeconds}}
# Largest gRPC message in bytes (2–64 MiB). Default 4194304.
max_message_bytes: {{.MaxMessageBytes}}
# debug, info, warn or error. Default info.
log_level: {{.LogLevel}}
# Below this many free bytes in data_dir the node refuses new jobs.
# Default 134217728 (128 MiB).
min_free_bytes: {{.MinFreeBytes}}

# SHA-256 (hex) of each role's bearer token; tokens are in tokens/<role>.token.
tokens:
{{- range .TokenList}}
  {{.Role}}: {{.Hash}}
{{- end}}

# Pinned peers: a peer is accepted only if its TLS key has this fingerprint.
peers:
{{- range .Peers}}
  - name: {{.Name}}
    addr: {{.Addr}}
    fingerprint: {{.Fingerprint}}
{{- else}} []
{{- end}}
`))

type roleHash struct{ Role, Hash string }

// TokenList is the token map in a stable order, for rendering.
func (c *Config) TokenList() []roleHash {
	var out []roleHash
	for r, h := range c.Tokens {
		out = append(out, roleHash{r, h})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Role < out[j].Role })
	return out
}

// Render returns the commented YAML form of c.
func (c *Config) Render() ([]byte, error) {
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, c); err != nil {
		return nil, fmt.Errorf("node: render config: %w", err)
	}
	return b.Bytes(), nil
}

// Save writes c to DIR/tandem.yaml atomically (write temp, fsync, rename).
func (c *Config) Save() error {
	b, err := c.Render()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(c.home, ConfigFile), b, 0o600)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	return nil
}
