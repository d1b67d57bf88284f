package synth_test

import (
	"testing"

	"github.com/tandem-dev/tandem/testnet/synth"
)

func BenchmarkGenerate(b *testing.B) {
	b.Run("bank=1e6/partner=1e6", func(b *testing.B) {
		cfg := synth.Config{Seed: 1, BankRows: 1e6,
			Partners: []synth.PartnerConfig{{Name: "shop", Rows: 1e6, Overlap: 0.3, Kind: "ecommerce"}}}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := synth.Generate(b.TempDir(), cfg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
