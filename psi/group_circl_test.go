package psi

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
	"github.com/cloudflare/circl/group"
)

// TestRistrettoMatchesCircl cross-checks hash-to-group against
// cloudflare/circl's group.Ristretto255.HashToElement (independent
// implementation, same RFC 9380 suite and DST). Needs -tags tandem_circl and
// golang.org/x/crypto + github.com/bwesterb/go-ristretto in go.mod.
func TestRistrettoMatchesCircl(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := newXMDExpander()
	for i := range 500 {
		msg := make([]byte, r.IntN(200))
		for j := range msg {
			msg[j] = byte(r.Uint32())
		}
		domain := make([]byte, r.IntN(300)) // some DSTs exceed 255 bytes
		for j := range domain {
			domain[j] = byte(r.Uint32())
		}
		dst := groupDST(r255SuiteID, domain)
		want, err := group.Ristretto255.HashToElement(msg, dst).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var p edwards25519.Point
		r255HashToGroup(&p, x, msg, xmdDSTPrime(dst))
		var got [32]byte
		r255Encode(&got, &p)
		if !bytes.Equal(got[:], want) {
			t.Fatalf("case %d: got %x, circl %x", i, got, want)
		}
	}
}
