package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tandem-dev/tandem/audit/merkle"
)

// Signer signs C2SP signed-note texts and receipts. Implementations must be
// safe for concurrent use. Sign returns the raw signature bytes (without the
// 4-byte key hash).
type Signer interface {
	// Name is the key name that appears on the note signature line.
	Name() string
	// KeyHash is the 32-bit key hash of the C2SP signed-note spec.
	KeyHash() uint32
	// Sign returns a signature over msg or an error from the key backend.
	Sign(msg []byte) ([]byte, error)
}

// Verifier verifies signatures made by one [Signer]. Implementations must be
// safe for concurrent use.
type Verifier interface {
	Name() string
	KeyHash() uint32
	// Verify reports whether sig is a valid signature over msg.
	Verify(msg, sig []byte) bool
}

// algEd25519 is the signature type byte for Ed25519 in C2SP signed-note.
const algEd25519 = 0x01

// noteKeyHash implements the signed-note key ID rule: the first four bytes
// (big-endian) of SHA-256(name || "\n" || alg || pubkey).
func noteKeyHash(name string, algAndKey []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte("\n"))
	h.Write(algAndKey)
	var sum [32]byte
	h.Sum(sum[:0])
	return binary.BigEndian.Uint32(sum[:4])
}

func validKeyName(name string) bool {
	if name == "" || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r == '+' || unicode.IsSpace(r) || r < 0x20 {
			return false
		}
	}
	return true
}

// Ed25519Signer is the standard [Signer]. It is safe for concurrent use.
type Ed25519Signer struct {
	name string
	hash uint32
	priv ed25519.PrivateKey
}

// NewEd25519Signer returns a signer for the key name and private key. It
// returns [ErrInvalidKey] if the name is not a valid note key name
// (non-empty, no spaces, no '+') or the key has the wrong size.
func NewEd25519Signer(name string, priv ed25519.PrivateKey) (*Ed25519Signer, error) {
	if !validKeyName(name) || len(priv) != ed25519.PrivateKeySize {
		return nil, ErrInvalidKey
	}
	pub := priv.Public().(ed25519.PublicKey)
	return &Ed25519Signer{name: name, hash: noteKeyHash(name, append([]byte{algEd25519}, pub...)), priv: priv}, nil
}

// GenerateEd25519Signer draws a new key from rand (crypto/rand.Reader if
// nil). It returns an error only if rand fails or name is invalid.
func GenerateEd25519Signer(rand io.Reader, name string) (*Ed25519Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("audit: generate key: %w", err)
	}
	return NewEd25519Signer(name, priv)
}

// Name implements [Signer].
func (s *Ed25519Signer) Name() string { return s.name }

// KeyHash implements [Signer].
func (s *Ed25519Signer) KeyHash() uint32 { return s.hash }

// Sign implements [Signer]; it never fails.
func (s *Ed25519Signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

// Verifier returns the matching verifier.
func (s *Ed25519Signer) Verifier() *Ed25519Verifier {
	v, _ := NewEd25519Verifier(s.name, s.priv.Public().(ed25519.PublicKey))
	return v
}

// SignerKey returns the key in the golang.org/x/mod/sumdb/note private-key
// encoding "PRIVATE+KEY+<name>+<hash>+<base64(0x01||seed)>". Treat it as a
// secret.
func (s *Ed25519Signer) SignerKey() string {
	return fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", s.name, s.hash,
		base64.StdEncoding.EncodeToString(append([]byte{algEd25519}, s.priv.Seed()...)))
}

// ParseSignerKey parses the private-key encoding produced by
// [Ed25519Signer.SignerKey] (and by golang.org/x/mod/sumdb/note). It returns
// [ErrInvalidKey] on any malformation or key-hash mismatch.
func ParseSignerKey(skey string) (*Ed25519Signer, error) {
	rest, ok := strings.CutPrefix(skey, "PRIVATE+KEY+")
	if !ok {
		return nil, ErrInvalidKey
	}
	name, hashHex, b64, ok := splitKey(rest)
	if !ok {
		return nil, ErrInvalidKey
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algEd25519 {
		return nil, ErrInvalidKey
	}
	s, err := NewEd25519Signer(name, ed25519.NewKeyFromSeed(raw[1:]))
	if err != nil || fmt.Sprintf("%08x", s.hash) != hashHex {
		return nil, ErrInvalidKey
	}
	return s, nil
}

func splitKey(s string) (name, hash, b64 string, ok bool) {
	name, rest, ok1 := strings.Cut(s, "+")
	hash, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || len(hash) != 8 {
		return "", "", "", false
	}
	return name, hash, b64, true
}

// Ed25519Verifier is the standard [Verifier]. It is safe for concurrent use.
type Ed25519Verifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

// NewEd25519Verifier returns a verifier for the key name and public key, or
// [ErrInvalidKey].
func NewEd25519Verifier(name string, pub ed25519.PublicKey) (*Ed25519Verifier, error) {
	if !validKeyName(name) || len(pub) != ed25519.PublicKeySize {
		return nil, ErrInvalidKey
	}
	return &Ed25519Verifier{name: name, hash: noteKeyHash(name, append([]byte{algEd25519}, pub...)), pub: pub}, nil
}

// ParseVerifierKey parses a note verifier key "<name>+<hash>+<base64>"
// (golang.org/x/mod/sumdb/note format, Ed25519 only). It returns
// [ErrInvalidKey] on malformation or key-hash mismatch.
func ParseVerifierKey(vkey string) (*Ed25519Verifier, error) {
	name, hashHex, b64, ok := splitKey(vkey)
	if !ok {
		return nil, ErrInvalidKey
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != algEd25519 {
		return nil, ErrInvalidKey
	}
	v, err := NewEd25519Verifier(name, ed25519.PublicKey(raw[1:]))
	if err != nil || fmt.Sprintf("%08x", v.hash) != hashHex {
		return nil, ErrInvalidKey
	}
	return v, nil
}

// Name implements [Verifier].
func (v *Ed25519Verifier) Name() string { return v.name }

// KeyHash implements [Verifier].
func (v *Ed25519Verifier) KeyHash() uint32 { return v.hash }

// Verify implements [Verifier].
func (v *Ed25519Verifier) Verify(msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(v.pub, msg, sig)
}

// String returns the verifier key "<name>+<hash>+<base64(0x01||pub)>", the
// line format of keys.txt in export bundles.
func (v *Ed25519Verifier) String() string {
	return fmt.Sprintf("%s+%08x+%s", v.name, v.hash,
		base64.StdEncoding.EncodeToString(append([]byte{algEd25519}, v.pub...)))
}

// maxNoteSize bounds parsing of untrusted notes.
const maxNoteSize = 1 << 20

// SignNote signs text as a C2SP signed note with every signer. The text
// must be UTF-8, end in a newline, contain no blank line and no control
// characters other than newline. It returns [ErrMalformedNote] for invalid
// text, [ErrInvalidKey] for an invalid signer name, or a signer's error.
// Safe for concurrent use.
func SignNote(text string, signers ...Signer) ([]byte, error) {
	if !strings.HasSuffix(text, "\n") || strings.Contains(text, "\n\n") || !utf8.ValidString(text) ||
		len(text) > maxNoteSize {
		return nil, ErrMalformedNote
	}
	for _, r := range text {
		if r < 0x20 && r != '\n' {
			return nil, ErrMalformedNote
		}
	}
	var buf bytes.Buffer
	buf.WriteString(text)
	buf.WriteString("\n")
	for _, s := range signers {
		if !validKeyName(s.Name()) {
			return nil, ErrInvalidKey
		}
		sig, err := s.Sign([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("audit: sign note: %w", err)
		}
		blob := binary.BigEndian.AppendUint32(nil, s.KeyHash())
		blob = append(blob, sig...)
		fmt.Fprintf(&buf, "— %s %s\n", s.Name(), base64.StdEncoding.EncodeToString(blob))
	}
	return buf.Bytes(), nil
}

// NoteSignature is one signature line of a signed note.
type NoteSignature struct {
	Name    string
	KeyHash uint32
	Sig     []byte
}

// ParseNote splits a signed note into its text and signature lines without
// verifying anything. It returns [ErrMalformedNote] on any syntax error.
func ParseNote(msg []byte) (text string, sigs []NoteSignature, err error) {
	if len(msg) > maxNoteSize || !utf8.Valid(msg) {
		return "", nil, ErrMalformedNote
	}
	s := string(msg)
	i := strings.LastIndex(s, "\n\n")
	if i < 0 {
		return "", nil, ErrMalformedNote
	}
	text, block := s[:i+1], s[i+2:]
	if !strings.HasSuffix(block, "\n") {
		return "", nil, ErrMalformedNote
	}
	for _, line := range strings.Split(block[:len(block)-1], "\n") {
		rest, ok := strings.CutPrefix(line, "— ")
		if !ok {
			return "", nil, ErrMalformedNote
		}
		name, b64, ok := strings.Cut(rest, " ")
		if !ok || !validKeyName(name) {
			return "", nil, ErrMalformedNote
		}
		blob, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil || len(blob) < 5 {
			return "", nil, ErrMalformedNote
		}
		sigs = append(sigs, NoteSignature{Name: name, KeyHash: binary.BigEndian.Uint32(blob), Sig: blob[4:]})
	}
	return text, sigs, nil
}

// OpenNote verifies that msg carries a valid signature by v and returns the
// note text. Signatures by other keys are ignored. It returns
// [ErrMalformedNote] for syntax errors and [ErrBadSignature] when no
// signature by v verifies.
func OpenNote(msg []byte, v Verifier) (string, error) {
	text, sigs, err := ParseNote(msg)
	if err != nil {
		return "", err
	}
	for _, s := range sigs {
		if s.Name == v.Name() && s.KeyHash == v.KeyHash() && v.Verify([]byte(text), s.Sig) {
			return text, nil
		}
	}
	return "", ErrBadSignature
}

// Head is an unsigned tree head in the C2SP tlog-checkpoint body format.
type Head struct {
	Origin string
	Size   uint64
	Root   merkle.Hash
}

// Text returns the checkpoint body: origin, decimal size, base64 root, each
// followed by a newline.
func (h Head) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", h.Origin, h.Size, base64.StdEncoding.EncodeToString(h.Root[:]))
}

// ParseHead parses a checkpoint body. Extension lines after the root are
// accepted and ignored, as C2SP tlog-checkpoint allows. It returns
// [ErrMalformedNote] on syntax errors.
func ParseHead(text string) (Head, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" || lines[0] == "" {
		return Head{}, ErrMalformedNote
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return Head{}, ErrMalformedNote
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != merkle.HashSize {
		return Head{}, ErrMalformedNote
	}
	return Head{Origin: lines[0], Size: size, Root: merkle.Hash(root)}, nil
}

// SignHead returns the signed checkpoint note for h.
func SignHead(h Head, signers ...Signer) ([]byte, error) {
	if h.Origin == "" || strings.ContainsAny(h.Origin, "\n") {
		return nil, ErrMalformedNote
	}
	return SignNote(h.Text(), signers...)
}

// OpenCheckpoint verifies a signed checkpoint with v and returns its head. It
// returns [ErrMalformedNote] or [ErrBadSignature].
func OpenCheckpoint(msg []byte, v Verifier) (Head, error) {
	text, err := OpenNote(msg, v)
	if err != nil {
		return Head{}, err
	}
	return ParseHead(text)
}
