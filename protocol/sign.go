package protocol

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// Signer signs with a node's identity key. Implementations must be safe for
// concurrent use.
type Signer interface {
	Sign(msg []byte) []byte
	Public() ed25519.PublicKey
}

// ErrBadSignature is returned by Open when a signed message does not verify
// or was signed by a key other than the pinned one. The message must be
// dropped; the caller should count and report it.
var ErrBadSignature = errors.New("protocol: bad signature")

// signedDomain separates Tandem signatures from any other use of the key.
const signedDomain = "tandem/v1 signed\n"

// SigningInput is the exact byte string a Signed message's signature covers.
func SigningInput(typ string, body []byte) []byte {
	b := make([]byte, 0, len(signedDomain)+len(typ)+1+len(body))
	b = append(b, signedDomain...)
	b = append(b, typ...)
	b = append(b, '\n')
	return append(b, body...)
}

// Seal marshals m deterministically and signs it.
func Seal(s Signer, m proto.Message) (*tandemv1.Signed, error) {
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("protocol: marshal: %w", err)
	}
	typ := string(m.ProtoReflect().Descriptor().FullName())
	pub := s.Public()
	return &tandemv1.Signed{
		Body:      body,
		Type:      typ,
		Signer:    fingerprint(pub),
		Signature: s.Sign(SigningInput(typ, body)),
		PublicKey: pub,
	}, nil
}

// Open verifies that sig was made by the key pinned as wantFingerprint and
// parses its body into m. It checks the type before parsing, so a signature
// over one message type never opens as another.
func Open(sig *tandemv1.Signed, wantFingerprint string, m proto.Message) error {
	if sig == nil {
		return fmt.Errorf("%w: empty", ErrBadSignature)
	}
	typ := string(m.ProtoReflect().Descriptor().FullName())
	if sig.Type != typ {
		return fmt.Errorf("%w: got type %q, want %q", ErrBadSignature, sig.Type, typ)
	}
	if len(sig.PublicKey) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: malformed public key", ErrBadSignature)
	}
	if subtle.ConstantTimeCompare([]byte(fingerprint(sig.PublicKey)), []byte(wantFingerprint)) != 1 {
		return fmt.Errorf("%w: signer is not the pinned key", ErrBadSignature)
	}
	if !ed25519.Verify(sig.PublicKey, SigningInput(sig.Type, sig.Body), sig.Signature) {
		return fmt.Errorf("%w: verification failed", ErrBadSignature)
	}
	if err := proto.Unmarshal(sig.Body, m); err != nil {
		return fmt.Errorf("protocol: parse %s: %w", typ, err)
	}
	return nil
}

// VerifyDetached checks an Ed25519 signature over a Signed-domain input
// made by the key with the given fingerprint.
func VerifyDetached(pub ed25519.PublicKey, wantFingerprint, typ string, body, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize || subtle.ConstantTimeCompare([]byte(fingerprint(pub)), []byte(wantFingerprint)) != 1 {
		return fmt.Errorf("%w: signer is not the pinned key", ErrBadSignature)
	}
	if !ed25519.Verify(pub, SigningInput(typ, body), sig) {
		return fmt.Errorf("%w: verification failed", ErrBadSignature)
	}
	return nil
}

func fingerprint(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:])
}

// Digest is SHA-256 of b.
func Digest(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
