package psi

import "github.com/cloudflare/circl/dh/x25519"

// x25519ScalarMult sets out = X25519(k, u) (RFC 7748 §5) for an already
// clamped k, using cloudflare/circl's constant-time assembly ladder
// (BMI2/ADX on amd64). circl re-clamps k, which is idempotent.
//
// circl/dh/x25519 imports golang.org/x/crypto/cryptobyte (through
// circl/internal/conv), so this file needs `golang.org/x/crypto` listed in
// go.mod; until the lead adds it, the portable ladder in x25519_ladder.go is
// the default build.
func x25519ScalarMult(out, k, u *[32]byte) {
	x25519.Shared((*x25519.Key)(out), (*x25519.Key)(k), (*x25519.Key)(u))
}

// x25519Backend names the ladder implementation, for benchmarks.
const x25519Backend = "circl"
