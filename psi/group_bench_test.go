package psi

import (
	"syscall"
	"testing"
	"time"

	"filippo.io/edwards25519"
)

// BenchmarkPrimitive measures one group operation per iteration.
func BenchmarkPrimitive(b *testing.B) {
	k := testKey(b, 1)
	msg := []byte("+8613800000000")
	dst := xmdDSTPrime(groupDST(r255SuiteID, []byte("job/mobile")))
	x := newXMDExpander()
	var p edwards25519.Point
	r255HashToGroup(&p, x, msg, dst)
	var enc [32]byte
	r255Encode(&enc, &p)

	b.Run("op=hash_to_group/suite=ristretto255", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r255HashToGroup(&p, x, msg, dst)
		}
	})
	b.Run("op=scalar_mult/suite=ristretto255", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.ScalarMult(&k.r255, &p)
		}
	})
	b.Run("op=encode/suite=ristretto255", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r255Encode(&enc, &p)
		}
	})
	b.Run("op=decode/suite=ristretto255", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r255Decode(&p, enc[:])
		}
	})

	xdst := xmdDSTPrime(groupDST(x25519SuiteID, []byte("job/mobile")))
	h := &x25519Hasher{x: newXMDExpander(), dstPrime: xdst}
	ids := testIDs("+86138", 0, x25519Batch)
	var us [x25519Batch][32]byte
	b.Run("op=hash_to_group/suite=x25519-ell2", func(b *testing.B) {
		// Per element, amortised over a block of x25519Batch (one inversion).
		b.ReportAllocs()
		for b.Loop() {
			h.hashBlock(ids, &us)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/elem")
	})
	var out [32]byte
	b.Run("op=scalar_mult/suite=x25519-ell2/ladder="+x25519Backend, func(b *testing.B) {
		// Includes decode (canonical check) and encode: the ladder
		// consumes and produces the wire format.
		b.ReportAllocs()
		for b.Loop() {
			x25519ScalarMult(&out, &k.x25519, &us[0])
		}
	})
	b.Run("op=decode/suite=x25519-ell2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = feIsCanonical(us[0][:])
		}
	})
}

// BenchmarkKernel measures the whole per-party DH-PSI kernel: HashMask of n
// own identifiers plus Remask of n peer elements, reporting µs per element
// per party (one core when workers=1).
func BenchmarkKernel(b *testing.B) {
	const n = 10000
	ids := testIDs("+86138", 0, n)
	for _, s := range testSuites() {
		for _, workers := range []int{1, 2} {
			name := "suite=" + s.Name()
			if s.Name() == x25519SuiteName {
				name += "/ladder=" + x25519Backend
			}
			b.Run(name+"/n=1e4/workers="+string(rune('0'+workers)), func(b *testing.B) {
				k, peer := testKey(b, 1), testKey(b, 2)
				own := make([]byte, n*32)
				in := make([]byte, n*32)
				out := make([]byte, n*32)
				s.HashMask(peer, []byte("d"), ids, in, 0)
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := processCPU()
				for b.Loop() {
					s.HashMask(k, []byte("d"), ids, own, workers)
					if err := s.Remask(k, in, out, workers); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/elem/party")
				// CPU time is the steadier figure on a shared machine: the
				// wall clock also counts time the process was descheduled.
				b.ReportMetric((processCPU()-cpu0).Seconds()*1e6/float64(b.N*n), "cpu-µs/elem/party")
			})
		}
	}
}

// processCPU is the process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
