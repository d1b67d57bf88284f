package protocol

import (
	"context"
	"math/rand/v2"
	"testing"
)

// BenchmarkScoreJob: the score protocol at 1e6 aligned positions, 30 %
// matched, both roles in one process over an in-memory pipe (key
// generation, bank mask encryption, partner masked release, bank
// decryption). Metrics: scored rows/s and positions/s (wall), wire MB.
func BenchmarkScoreJob(b *testing.B) {
	const L = 1_000_000
	rng := rand.New(rand.NewPCG(1, 2))
	mask := make([]bool, L)
	partial := make([]float64, L)
	scored := 0
	for i := range L {
		mask[i] = rng.IntN(10) < 3
		if mask[i] {
			scored++
		}
		partial[i] = rng.NormFloat64()
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wire int
	for range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		pb, pp := newPipe()
		done := make(chan error, 1)
		go func() {
			_, err := RunScorePartner(ctx, pp, ScorePartnerConfig{JobID: "job-b", ModelID: "m", Partial: partial}, nil)
			done <- err
		}()
		if _, err := RunScoreBank(ctx, pb, ScoreBankConfig{JobID: "job-b", ModelID: "m", Mask: mask}, nil); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		cancel()
		for _, p := range []*pipe{pb, pp} {
			for _, m := range p.sent {
				wire += len(m.Payload)
			}
			p.sent = nil
		}
	}
	b.StopTimer()
	s := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(scored)/s, "scored-rows/s")
	b.ReportMetric(float64(L)/s, "positions/s")
	b.ReportMetric(float64(wire)/1e6/float64(b.N), "wire-MB")
}
