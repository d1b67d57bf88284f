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
	benchScorePair(b, L, scored, func(ctx context.Context, pp *pipe) error {
		_, err := RunScorePartner(ctx, pp, ScorePartnerConfig{JobID: "job-b", ModelID: "m", Partial: partial}, nil)
		return err
	}, func(ctx context.Context, pb *pipe) error {
		_, err := RunScoreBank(ctx, pb, ScoreBankConfig{JobID: "job-b", ModelID: "m", Mask: mask}, nil)
		return err
	})
}

// benchScorePair runs the partner and the bank of a score protocol over an
// in-memory pipe b.N times and reports scored rows/s, positions/s (wall)
// and wire MB.
func benchScorePair(b *testing.B, L, scored int, partner, bank func(context.Context, *pipe) error) {
	b.ReportAllocs()
	b.ResetTimer()
	var wire int
	for range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		pb, pp := newPipe()
		pb.quiet, pp.quiet = true, true
		done := make(chan error, 1)
		go func() { done <- partner(ctx, pp) }()
		if err := bank(ctx, pb); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		cancel()
		wire += pb.bytes + pp.bytes
	}
	b.StopTimer()
	s := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(scored)/s, "scored-rows/s")
	b.ReportMetric(float64(L)/s, "positions/s")
	b.ReportMetric(float64(wire)/1e6/float64(b.N), "wire-MB")
}

// BenchmarkScoreBands: bands-only scoring at 1e6 aligned positions, 30 %
// matched, 10 bands (K = 10 comparisons a position), both roles in one
// process over an in-memory pipe: base OTs, corrections, tables, answers.
// Every position costs the same (the partner cannot tell which are
// scored), so scored-rows/s is positions/s × 0.3. The raw limit is the
// bank's hashing: 2 OTs × 256 pads × 3 fixed-key AES blocks a position
// (BenchmarkFixedAES and BenchmarkSenderPads in ot).
func BenchmarkScoreBands(b *testing.B) {
	const L, K = 1_000_000, 10
	rng := rand.New(rand.NewPCG(1, 2))
	th := make([]uint32, L*K)
	vals := make([]uint16, L)
	scored := 0
	for i := range L {
		vals[i], _ = BandValue(rng.NormFloat64())
		if rng.IntN(10) < 3 {
			scored++
			uB := rng.NormFloat64()
			th[i*K] = 1
			for k := 1; k < K; k++ {
				th[i*K+k] = BandThreshold(float64(k-5)*0.5 - uB)
			}
		}
	}
	benchScorePair(b, L, scored, func(ctx context.Context, pp *pipe) error {
		_, err := RunScorePartner(ctx, pp, ScorePartnerConfig{JobID: "job-b", ModelID: "m", BandValues: vals}, nil)
		return err
	}, func(ctx context.Context, pb *pipe) error {
		_, err := RunScoreBandsBank(ctx, pb, ScoreBandsBankConfig{JobID: "job-b", ModelID: "m", K: K, L: L, Thresholds: sliceThresholds(th, K), Scored: scored}, nil)
		return err
	})
}
