package vlr

import (
	"fmt"
	"syscall"
	"testing"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkEpoch: one full-batch training epoch (= one protocol step B1…P4,
// both parties in one process, real HE through two fedlearn Sessions).
// Metrics: s/epoch (wall), cpu-s/epoch (both parties, summed over cores),
// MB/epoch (every message both ways).
func BenchmarkEpoch(b *testing.B) {
	for _, c := range []struct {
		name   string
		rows   int
		pb, pp int
	}{
		{"rows=1e5/features=15+15", 100_000, 15, 15},
		{"rows=1e6/features=15+15", 1_000_000, 15, 15},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			data := genSynth(c.rows, c.pb, c.pp, 0.7, 11)
			bs, ps := sessions(b)
			cfg := Config{L2: 1e-3, MaxEpochs: 1 << 20, Seed: 5}
			bank, err := NewBank(bs, cfg, data.bank, data.label, data.match, c.pp)
			if err != nil {
				b.Fatal(err)
			}
			partner, err := NewPartner(ps, cfg, data.partner, c.pb)
			if err != nil {
				b.Fatal(err)
			}
			step(b, bank, partner) // nonzero weights
			b.ResetTimer()
			cpu0 := cpuSeconds()
			var wire int
			for range b.N {
				_, n := step(b, bank, partner)
				wire += n
			}
			b.StopTimer()
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/epoch")
			b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/epoch")
			b.ReportMetric(float64(wire)/1e6/float64(b.N), "MB/epoch")
			_ = fmt.Sprint()
		})
	}
}
