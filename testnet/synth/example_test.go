package synth_test

import (
	"fmt"
	"os"

	"github.com/tandem-dev/tandem/testnet/synth"
)

func ExampleGenerate() {
	dir, _ := os.MkdirTemp("", "synth-example")
	defer os.RemoveAll(dir)
	truth, err := synth.Generate(dir, synth.Config{
		Seed:     42,
		BankRows: 1000,
		Partners: []synth.PartnerConfig{{Name: "shop", Rows: 500, Overlap: 0.5, Kind: "ecommerce"}},
	})
	if err != nil {
		panic(err)
	}
	p := truth.Partners[0]
	fmt.Println(p.Name, p.Rows, p.Shared, p.ByEither <= p.Shared, p.ByPhone <= p.ByEither)
	// Output: shop 500 250 true true
}
