package fedlearn_test

import (
	"crypto/rand"
	"fmt"

	"github.com/tandem-dev/tandem/fedlearn"
)

// Count and sum over matched rows, released to the bank.
func Example() {
	var seed [32]byte // agreed per job; random in practice
	rand.Read(seed[:])
	bank, _ := fedlearn.NewSession(fedlearn.Bank, fedlearn.Params{}, seed, nil)
	partner, _ := fedlearn.NewSession(fedlearn.Partner, fedlearn.Params{}, seed, nil)

	// K1/K2: exchange public-key generation shares.
	bs, _ := bank.KeyGenShare()
	ps, _ := partner.KeyGenShare()
	_ = bank.SetPeerKeyGenShare(ps)
	_ = partner.SetPeerKeyGenShare(bs)

	// E1 (bank): encrypt the match indicator over L = 5 aligned positions.
	cts, _ := bank.EncryptVector([]int64{1, 0, 1, 1, 0})

	// C1 (partner): Σ m_i·1 and Σ m_i·x_i.
	x := []int64{10, 20, 30, 40, 50}
	res, _ := partner.InnerProducts([][][]byte{cts}, [][]int64{{1, 1, 1, 1, 1}, x})

	// R1 (partner, after its policy approved): decryption share for the bank.
	share, _ := partner.ReleaseShare(res, fedlearn.Bank)

	// R2 (bank): combine with its own key share.
	out, _ := bank.Decrypt(res, share)
	fmt.Println("count", out[0], "sum", out[1])

	// A second share for the same ciphertext is refused.
	_, err := partner.ReleaseShare(res, fedlearn.Bank)
	fmt.Println(err)
	// Output:
	// count 3 sum 80
	// fedlearn: decryption share already produced for this ciphertext
}
