package protocol

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/psi"
)

// BenchmarkPSI runs both parties of a PSI job in one process over an
// in-memory transport (no gRPC; see node.BenchmarkPSILoopback for the
// two-node loopback run) and, in the same run, the raw kernel of the suite
// (HashMask of own ids + Remask of the peer's), so the ratio end-to-end ÷
// kernel is the cost of the pipeline (sorting, tagging, I/O, framing).
//
//	go test -run '^$' -bench 'PSI/' -benchtime 1x ./protocol/
func BenchmarkPSI(b *testing.B) {
	for _, n := range []int{1e4, 1e5} {
		for _, suite := range []psi.Suite{psi.FastSuite(), psi.Ristretto255()} {
			b.Run(fmt.Sprintf("n=%.0e/suite=%s", float64(n), suite.Name()), func(b *testing.B) {
				bank := table{kinds: []string{"cn_mobile"}}
				partner := table{kinds: []string{"cn_mobile"}}
				for i := range n {
					bank.rows = append(bank.rows, []string{fmt.Sprintf("+8613%09d", i)})
					partner.rows = append(partner.rows, []string{fmt.Sprintf("+8613%09d", i+n/2)})
				}
				kernel := kernelSeconds(b, suite, n)
				b.ReportAllocs()
				b.ResetTimer()
				var wire int64
				start := time.Now()
				for range b.N {
					ri, _, _, _, pi, pr := runPSI(b, psi.RevealInitiator, suite, bank, partner, 64<<20)
					if ri.Intersection != int64(n/2) {
						b.Fatalf("intersection %d, want %d", ri.Intersection, n/2)
					}
					wire = 0
					for _, p := range []*pipe{pi, pr} {
						for _, m := range p.sent {
							wire += int64(len(m.Payload))
						}
					}
				}
				e2e := time.Since(start).Seconds() / float64(b.N)
				cores := float64(runtime.GOMAXPROCS(0))
				// Both parties ran in this process: per party per element.
				b.ReportMetric(e2e*cores*1e6/float64(2*n), "µs·core/elem/party")
				b.ReportMetric(kernel*cores*1e6/float64(2*n), "kernel-µs·core/elem/party")
				b.ReportMetric(e2e/kernel, "ratio-to-kernel")
				b.ReportMetric(float64(wire)/float64(n), "wire-B/pair")
			})
		}
	}
}

// kernelSeconds times the primitive limit: both parties' HashMask of their
// own n ids and Remask of the peer's n elements, with all cores.
func kernelSeconds(b testing.TB, s psi.Suite, n int) float64 {
	ids := make([][]byte, n)
	for i := range ids {
		ids[i] = fmt.Appendf(nil, "+8613%09d", i)
	}
	ka, _ := psi.GenerateKey(rand.Reader)
	kb, _ := psi.GenerateKey(rand.Reader)
	ea := make([]byte, n*s.ElementSize())
	eb := make([]byte, n*s.ElementSize())
	start := time.Now()
	s.HashMask(ka, []byte("bench"), ids, ea, 0)
	s.HashMask(kb, []byte("bench"), ids, eb, 0)
	if err := s.Remask(kb, ea, ea, 0); err != nil {
		b.Fatal(err)
	}
	if err := s.Remask(ka, eb, eb, 0); err != nil {
		b.Fatal(err)
	}
	return time.Since(start).Seconds()
}
