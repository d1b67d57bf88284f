package psi_test

import (
	"bytes"
	"crypto/rand"
	"fmt"

	"github.com/tandem-dev/tandem/psi"
)

// Two parties find their common identifiers: each masks its own set with
// its key, sends it, and raises the peer's masked set to its key.
func ExampleSuite() {
	suite, err := psi.SuiteByName("ristretto255")
	if err != nil {
		panic(err)
	}
	bankKey, _ := psi.GenerateKey(rand.Reader)
	partnerKey, _ := psi.GenerateKey(rand.Reader)
	defer bankKey.Zero()
	defer partnerKey.Zero()

	domain := []byte("job-0001/mobile")
	bank := [][]byte{[]byte("+8613800000001"), []byte("+8613800000002")}
	partner := [][]byte{[]byte("+8613800000002"), []byte("+8613800000003")}
	n := suite.ElementSize()

	// Each party: H(x)^own for its own identifiers.
	bankMasked := make([]byte, len(bank)*n)
	suite.HashMask(bankKey, domain, bank, bankMasked, 0)
	partnerMasked := make([]byte, len(partner)*n)
	suite.HashMask(partnerKey, domain, partner, partnerMasked, 0)

	// Each party raises what the peer sent: H(x)^{ab}.
	bankDouble := make([]byte, len(bankMasked))
	if err := suite.Remask(partnerKey, bankMasked, bankDouble, 0); err != nil {
		panic(err)
	}
	partnerDouble := make([]byte, len(partnerMasked))
	if err := suite.Remask(bankKey, partnerMasked, partnerDouble, 0); err != nil {
		panic(err)
	}

	for i := range bank {
		for j := range partner {
			if bytes.Equal(bankDouble[i*n:(i+1)*n], partnerDouble[j*n:(j+1)*n]) {
				fmt.Printf("bank row %d is shared\n", i)
			}
		}
	}
	fmt.Println(bankKey)
	// Output:
	// bank row 1 is shared
	// psi.Key{REDACTED}
}
