package node

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// InitOptions are the inputs of Init.
type InitOptions struct {
	Name          string
	Dir           string
	PeerListen    string // default 127.0.0.1:7400
	ControlListen string // default 127.0.0.1:7401
	HTTPListen    string // default 127.0.0.1:7402
}

// Card is what a node operator hands to the other side to pin.
type Card struct {
	Name        string `json:"name"`
	PeerAddr    string `json:"peer_addr"`
	Fingerprint string `json:"fingerprint"`
}

func (c Card) String() string {
	return fmt.Sprintf("node %s\n  peer address: %s\n  fingerprint:  %s\n", c.Name, c.PeerAddr, c.Fingerprint)
}

// Init creates a node home: identity key and certificate, one bearer token
// per role, and a commented config. It refuses a directory that already
// holds a config or key.
func Init(o InitOptions) (Card, error) {
	if o.Dir == "" {
		return Card{}, fmt.Errorf("node: init: --dir is required")
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "tokens"), 0o700); err != nil {
		return Card{}, fmt.Errorf("node: init: %w", err)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, ConfigFile)); err == nil {
		return Card{}, fmt.Errorf("node: init: %s already holds a node (%s exists)", o.Dir, ConfigFile)
	}
	c := &Config{Name: o.Name, PeerListen: o.PeerListen, ControlListen: o.ControlListen, HTTPListen: o.HTTPListen, home: o.Dir}
	if err := c.validate(); err != nil {
		return Card{}, fmt.Errorf("node: init: %w", err)
	}
	id, err := generateIdentity(c.path(c.KeyFile), c.path(c.CertFile), c.Name)
	if err != nil {
		return Card{}, err
	}
	c.Tokens = map[string]string{}
	for _, role := range Roles {
		tok, err := newToken()
		if err != nil {
			return Card{}, err
		}
		if err := writeFileAtomic(TokenPath(o.Dir, role), []byte(tok+"\n"), 0o600); err != nil {
			return Card{}, err
		}
		c.Tokens[role] = hashToken(tok)
	}
	if err := c.Save(); err != nil {
		return Card{}, err
	}
	return Card{Name: c.Name, PeerAddr: c.PeerAdvertise, Fingerprint: id.Fingerprint}, nil
}

// ReadCard returns the identity card of an initialised home without
// starting the node.
func ReadCard(home string) (Card, error) {
	c, err := LoadConfig(home)
	if err != nil {
		return Card{}, err
	}
	id, err := loadIdentity(c.path(c.KeyFile), c.path(c.CertFile))
	if err != nil {
		return Card{}, err
	}
	return Card{Name: c.Name, PeerAddr: c.PeerAdvertise, Fingerprint: id.Fingerprint}, nil
}

// TokenPath is where Init stores a role's bearer token.
func TokenPath(home, role string) string { return filepath.Join(home, "tokens", role+".token") }

// ReadToken reads a role's token from a node home.
func ReadToken(home, role string) (string, error) {
	b, err := os.ReadFile(TokenPath(home, role))
	if err != nil {
		return "", fmt.Errorf("node: read %s token: %w", role, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("node: token: %w", err)
	}
	return "tdm_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}
