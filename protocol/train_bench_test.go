package protocol

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/fedlearn/vlr"
)

// BenchmarkTrainJob: the train protocol at 1e6 aligned positions × (15 +
// 15) features, 70 % matched, 4 full-batch epochs, both roles in one
// process over an in-memory pipe (what a node runs, without gRPC: the
// pieces, the policy hooks, the releases). Metrics: s/epoch (wall, from
// the second epoch's end to the last's: steady state), setup-s (hello, key
// generation, standardisation, step caps, the first epoch with the
// one-off encoding of the feature columns), wire MB per epoch.
func BenchmarkTrainJob(b *testing.B) {
	const L, p, epochs = 1_000_000, 15, 4
	rng := rand.New(rand.NewPCG(7, 8))
	bank, partner := make([][]float64, p), make([][]float64, p)
	for j := range p {
		bank[j], partner[j] = make([]float64, L), make([]float64, L)
	}
	label, match := make([]float64, L), make([]bool, L)
	for i := range L {
		var z float64
		for j := range p {
			bank[j][i], partner[j][i] = rng.NormFloat64(), rng.NormFloat64()
			z += 0.1 * (bank[j][i] - partner[j][i])
		}
		match[i] = rng.Float64() < 0.7
		if match[i] && rng.Float64() < vlr.Sigmoid(z) {
			label[i] = 1
		}
	}
	names := func(prefix string) string {
		var n []string
		for j := range p {
			n = append(n, fmt.Sprintf("%s%d", prefix, j))
		}
		return "[" + strings.Join(n, ", ") + "]"
	}
	spec, err := ParseTrainSpec(fmt.Appendf(nil, "label: y\nbank_features: %s\npartner_features: %s\nepochs: %d\nl2: 0.001\nvalidation_fraction: 0.2\nseed: 3\n",
		names("b"), names("p"), epochs))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var perEpoch, setup, wire float64
	for range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		pb, pp := newPipe()
		pb.quiet, pp.quiet = true, true
		var ends []time.Time
		t0 := time.Now()
		done := make(chan error, 1)
		go func() {
			_, err := RunTrainPartner(ctx, pp, TrainPartnerConfig{JobID: "job-b", Spec: spec, Length: L, Features: partner}, nil)
			done <- err
		}()
		_, err := RunTrainBank(ctx, pb, TrainBankConfig{JobID: "job-b", Spec: spec, Features: bank, Label: label, Match: match,
			OnStep: func(e TrainEpoch) { ends = append(ends, time.Now()) }}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		cancel()
		if len(ends) != epochs {
			b.Fatalf("%d epochs, want %d", len(ends), epochs)
		}
		perEpoch += ends[epochs-1].Sub(ends[0]).Seconds() / (epochs - 1)
		setup += ends[0].Sub(t0).Seconds()
		wire += float64(pb.bytes+pp.bytes) / epochs
	}
	n := float64(b.N)
	b.ReportMetric(perEpoch/n, "s/epoch")
	b.ReportMetric(setup/n, "setup-s")
	b.ReportMetric(wire/1e6/n, "MB/epoch")
}
