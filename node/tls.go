package node

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ErrUnpinnedPeer is returned (inside the TLS handshake) when the other
// side's key is not pinned in this node's config. The connection is
// refused; the operator must `peer add` the key first.
var ErrUnpinnedPeer = errors.New("node: peer key is not pinned")

// certFingerprint extracts the Ed25519 key fingerprint from a raw leaf cert.
func certFingerprint(raw [][]byte) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("node: peer sent no certificate")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return "", fmt.Errorf("node: peer certificate: %w", err)
	}
	pub, ok := leaf.PublicKey.(ed25519.PublicKey)
	if !ok {
		return "", errors.New("node: peer certificate key is not Ed25519")
	}
	return Fingerprint(pub), nil
}

// serverTLS accepts a client only if its certificate key is pinned. The
// certificate chain is not checked against any CA: the pin is the trust.
// The self-signature is verified by the TLS handshake's CertificateVerify,
// which proves possession of the pinned key.
func serverTLS(id *Identity, pinned func(fp string) (string, bool)) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.cert},
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			fp, err := certFingerprint(raw)
			if err != nil {
				return err
			}
			if _, ok := pinned(fp); !ok {
				return ErrUnpinnedPeer
			}
			return nil
		},
	}
}

// clientTLS dials a peer and accepts it only if its key has the expected
// fingerprint.
func clientTLS(id *Identity, want string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{id.cert},
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			fp, err := certFingerprint(raw)
			if err != nil {
				return err
			}
			if !fingerprintEqual(fp, want) {
				return fmt.Errorf("node: peer key fingerprint mismatch: %w", ErrUnpinnedPeer)
			}
			return nil
		},
	}
}
