package audit_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/audit"
)

// BenchmarkAppend measures durable (SyncWrites) appends with group commit.
func BenchmarkAppend(b *testing.B) {
	for _, conc := range []int{1, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			s := openStore(b, b.TempDir(), testSigner(b, "bank.example", 1))
			ctx := context.Background()
			e := audit.Entry{Actor: nodeActor, Kind: audit.KindRelease, JobID: "job-1", Peer: "partner.example",
				DatasetDigests: []string{"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
				Release:        &audit.Release{To: "partner.example", Rows: 10, Values: 20, Digest: "sha256:ff", Epsilon: 0.1}}
			lat := make([][]time.Duration, conc)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < b.N; i += conc {
						t0 := time.Now()
						if _, _, err := s.Append(ctx, "root", audit.IdemKey{Job: "job-1", Event: fmt.Sprint(i)}, e); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99_ms")
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "entries/s")
		})
	}
}

// BenchmarkVerify measures offline bundle verification.
func BenchmarkVerify(b *testing.B) {
	b.Run("n=1e4", func(b *testing.B) {
		const n = 10000
		signer := testSigner(b, "bank.example", 1)
		s := openStore(b, b.TempDir(), signer)
		ctx := context.Background()
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += 32 {
					s.Append(ctx, "root", audit.IdemKey{}, audit.Entry{Actor: nodeActor, Kind: audit.KindJobStarted,
						JobID: fmt.Sprint("job-", i%100), DatasetDigests: []string{"sha256:0123456789abcdef"}})
				}
			}()
		}
		wg.Wait()
		dir := b.TempDir()
		if err := audit.Export(ctx, s, "root", dir, 0); err != nil {
			b.Fatal(err)
		}
		opts := audit.VerifyOptions{PubKey: signer.Verifier()}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := audit.VerifyBundle(dir, opts); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
	})
}
