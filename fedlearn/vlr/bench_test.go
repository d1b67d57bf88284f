package vlr

import (
	"fmt"
	"math"
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

// BenchmarkTrainToConvergence: full-batch training of 1e5 aligned rows ×
// (15 + 15) features until early stopping (validation loss improving by
// less than 1e-5 relative for 2 epochs), both parties in one process with
// real HE. Metrics: seconds to convergence, epochs, MB/epoch.
func BenchmarkTrainToConvergence(b *testing.B) {
	const rows, pb, pp = 100_000, 15, 15
	data := genSynth(rows, pb, pp, 0.7, 11)
	var epochs, wire int
	var bank *Bank
	var partner *Partner
	cpu0 := cpuSeconds()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		bs, ps := sessions(b)
		cfg := Config{L2: 1e-3, MaxEpochs: 100, Patience: 2, Tol: 1e-5, Seed: 5}
		var err error
		if bank, err = NewBank(bs, cfg, data.bank, data.label, data.match, pp); err != nil {
			b.Fatal(err)
		}
		if partner, err = NewPartner(ps, cfg, data.partner, pb); err != nil {
			b.Fatal(err)
		}
		for !bank.Done() {
			_, n := step(b, bank, partner)
			wire += n
			epochs++
		}
	}
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/convergence")
	b.ReportMetric(float64(epochs)/float64(b.N), "epochs")
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s")
	b.ReportMetric(float64(wire)/1e6/float64(epochs), "MB/epoch")
	// How close the stopped model is to the plaintext optimum (Newton,
	// exact sigmoid, same rows, standardisation and λ): validation AUC gap
	// and worst relative coefficient error (|w| > 0.05).
	wBase, wHE := baseline(bank, partner, data.label, 1e-3), heWeights(bank, partner)
	worst := 0.0
	for j := range wHE {
		if math.Abs(wBase[j]) > 0.05 {
			worst = math.Max(worst, math.Abs(wHE[j]-wBase[j])/math.Abs(wBase[j]))
		}
	}
	aHE, aBase := valAUCs(bank, partner, data.label, wHE, wBase)
	b.ReportMetric(math.Abs(aHE-aBase), "auc-gap")
	b.ReportMetric(worst, "worst-coef-rel-err")
}
