package protocol

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// benchData is a partner with many numeric columns f0..f{n-1}.
type benchData struct {
	vals [][]float64
	pres [][]bool
}

func (d *benchData) Numeric(_ context.Context, col string) ([]float64, []bool, error) {
	var f int
	if _, err := fmt.Sscanf(col, "f%d", &f); err != nil || f < 0 || f >= len(d.vals) {
		return nil, nil, fmt.Errorf("no column %s", col)
	}
	return d.vals[f], d.pres[f], nil
}

func (d *benchData) Categorical(context.Context, string) ([]string, error) {
	return nil, fmt.Errorf("no categorical columns")
}

// lastVec wraps the partner's transport and notes when (and at which
// process CPU time) the bank's last vector ciphertext arrived.
type lastVec struct {
	Transport
	at  time.Time
	cpu float64
}

func (l *lastVec) Recv(ctx context.Context) (Msg, error) {
	m, err := l.Transport.Recv(ctx)
	if err == nil && m.Step == "stats.vec" && m.Last {
		l.at, l.cpu = time.Now(), processCPU()
	}
	return m, err
}

// link models the bank's uplink: each message it sends takes len/bps.
type link struct {
	Transport
	bps float64
}

func (l *link) Send(ctx context.Context, m Msg) error {
	time.Sleep(time.Duration(float64(len(m.Payload)) * 8 / l.bps * 1e9))
	return l.Transport.Send(ctx, m)
}

func processCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkStatsJob runs the whole stats job, both roles in this process
// over the in-memory pipe with real HE: hello and policy, collective key,
// bank encryption of its 2 group vectors, the partner's planning and
// encoding (overlapped with the key generation and the upload, 1 GiB
// budget), the kernel, release shares, decryption and decoding. One spec
// with count/sum/mean/variance of 20 partner columns by a 2-valued bank
// group (the 20 columns share one release).
//
//	go test ./protocol/ -run '^$' -bench 'StatsJob' -benchtime 1x -count 2
//
// Metrics: wall s/op; cpu-s/op (process user+sys: both roles); wire-MB
// (payload both ways); after-upload-s: from the partner receiving the last
// vector to the bank's result (the partner's online latency once the
// upload is done; the bank is idle then) and after-upload-cpu-s (its CPU
// time: on 2 idle cores of its own, after-upload wall ≈ half of it). The
// link=200Mbps variant delays each bank message by its size at 200 Mbit/s
// (64.5 MB upload ≈ 2.6 s), the window in which the partner encodes ahead.
func BenchmarkStatsJob(b *testing.B) {
	for _, bc := range []struct {
		name string
		L    int
		bps  float64
	}{{"rows=1e6/features=20/groups=2", 1_000_000, 0}, {"rows=1e6/features=20/groups=2/link=200Mbps", 1_000_000, 200e6}} {
		const features, groups = 20, 2
		L := bc.L
		b.Run(bc.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(7, 8))
			w := &statsWorld{L: L, names: []string{"0", "1"}}
			w.match, w.group = make([]bool, L), make([]int, L)
			for i := range L {
				w.match[i] = r.IntN(10) < 6
				w.group[i] = r.IntN(groups)
			}
			d := &benchData{}
			var spec strings.Builder
			spec.WriteString("group_by: g\nstatistics:\n")
			for f := range features {
				v, p := make([]float64, L), make([]bool, L)
				for i := range L {
					v[i] = math.Round(r.ExpFloat64()*1000*(1+float64(f))*100) / 100
					p[i] = r.IntN(20) > 0
				}
				d.vals, d.pres = append(d.vals, v), append(d.pres, p)
				fmt.Fprintf(&spec, "  - {column: f%d, kinds: [count, sum, mean, variance]}\n", f)
			}
			sp, err := ParseStatsSpec([]byte(spec.String()))
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			b.ResetTimer()
			cpu0 := processCPU()
			var wire int64
			var after time.Duration
			var afterCPU float64
			for range b.N {
				pb, pp := newPipe()
				lv := &lastVec{Transport: pp}
				var bt Transport = pb
				if bc.bps > 0 {
					bt = &link{Transport: pb, bps: bc.bps}
				}
				ctx, cancel := context.WithCancel(context.Background())
				bcfg := StatsBankConfig{JobID: "bench", Spec: sp, Match: w.match, Group: w.group, GroupNames: w.names, MinCellSize: 10}
				pcfg := StatsPartnerConfig{JobID: "bench", Spec: sp, Length: L, Data: d,
					Policy: func(_ context.Context, rel []StatsRelease) ([]StatsDecision, error) {
						return make([]StatsDecision, len(rel)), nil
					}}
				var pErr error
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, pErr = RunStatsPartner(ctx, lv, pcfg, nil); pErr != nil {
						cancel()
					}
				}()
				res, bErr := RunStatsBank(ctx, bt, bcfg, nil)
				end, endCPU := time.Now(), processCPU()
				if bErr != nil {
					cancel()
				}
				wg.Wait()
				cancel()
				if bErr != nil || pErr != nil {
					b.Fatalf("bank: %v; partner: %v", bErr, pErr)
				}
				if res.Releases != 1 || len(res.Cells) != features*3*5 {
					b.Fatalf("%d releases, %d cells", res.Releases, len(res.Cells))
				}
				after += end.Sub(lv.at)
				afterCPU += endCPU - lv.cpu
				wire = 0
				for _, p := range []*pipe{pb, pp} {
					for _, m := range p.sent {
						wire += int64(len(m.Payload))
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "wall-s/op")
			b.ReportMetric((processCPU()-cpu0)/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(wire)/1e6, "wire-MB")
			b.ReportMetric(after.Seconds()/float64(b.N), "after-upload-s")
			b.ReportMetric(afterCPU/float64(b.N), "after-upload-cpu-s")
		})
	}
}
