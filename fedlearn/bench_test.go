package fedlearn

import (
	"crypto/rand"
	"fmt"
	"math"
	"math/big"
	mrand "math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
)

// Benchmarks of the statistics path of DESIGN §4, both roles in one process.
// Reported metrics: wire-MB (all messages both ways, key generation
// included), %-shares of CPU time per phase (summed over workers), and
// paillier-x: estimated wall time of a textbook Paillier-1024 pipeline for the
// same statistics divided by ours (Paillier measured on a sample of rows,
// extrapolated linearly and assumed perfectly parallel on the same cores).

// cpuSeconds returns the process user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func benchRows(s string) int {
	switch s {
	case "1e5":
		return 100_000
	case "1e6":
		return 1_000_000
	}
	panic(s)
}

type wire struct{ n int }

func (w *wire) add(msgs ...[]byte) {
	for _, m := range msgs {
		w.n += len(m)
	}
}

func keyRound(b *testing.B, w *wire) (bank, partner *Session) {
	var seed [32]byte
	rand.Read(seed[:])
	bank, _ = NewSession(Bank, Params{}, seed, nil)
	partner, _ = NewSession(Partner, Params{}, seed, nil)
	bs, _ := bank.KeyGenShare()
	ps, _ := partner.KeyGenShare()
	w.add(bs, ps)
	if err := bank.SetPeerKeyGenShare(ps); err != nil {
		b.Fatal(err)
	}
	if err := partner.SetPeerKeyGenShare(bs); err != nil {
		b.Fatal(err)
	}
	return bank, partner
}

func reportPhases(b *testing.B, bank, partner *Session) {
	ph := []struct {
		name string
		ns   int64
	}{
		{"encrypt-%", bank.prof.encrypt.Load()},
		{"encode-%", partner.prof.encode.Load()},
		{"multiply-%", partner.prof.multiply.Load()},
		{"reduce-%", partner.prof.reduce.Load()},
		{"shares-%", partner.prof.share.Load() + bank.prof.decrypt.Load()},
	}
	var tot int64
	for _, p := range ph {
		tot += p.ns
	}
	for _, p := range ph {
		b.ReportMetric(100*float64(p.ns)/float64(tot), p.name)
	}
}

func BenchmarkStats(b *testing.B) {
	for _, bc := range []struct {
		rows   string
		cached bool
	}{{"1e5", false}, {"1e6", false}, {"1e6", true}} {
		rows := bc.rows
		name := fmt.Sprintf("rows=%s/features=20/groups=2", rows)
		if bc.cached {
			name += "/encode=offline"
		}
		b.Run(name, func(b *testing.B) {
			L := benchRows(rows)
			const features, groups = 20, 2
			r := mrand.New(mrand.NewPCG(7, 8))
			match := make([]bool, L)
			group := make([]int, L)
			for i := range match {
				match[i] = r.IntN(10) < 6
				group[i] = r.IntN(groups)
			}
			cols := make([]NumericColumn, features)
			for f := range cols {
				cols[f] = NumericColumn{Values: make([]float64, L), Present: make([]bool, L)}
				for i := range L {
					cols[f].Values[i] = math.Round(r.ExpFloat64()*1000*(1+float64(f))*100) / 100
					cols[f].Present[i] = r.IntN(20) > 0
				}
			}
			b.ReportAllocs()
			var w wire
			var bank, partner *Session
			var offline time.Duration
			var offlineCPU float64
			b.ResetTimer()
			cpu0 := cpuSeconds()
			for range b.N {
				w = wire{}
				bank, partner = keyRound(b, &w)
				// Partner: plaintext encoding of its columns (offline when
				// cached: depends on partner data and Params only).
				if bc.cached {
					b.StopTimer()
				}
				plan, mult, err := PlanNumeric(Params{}, cols)
				if err != nil {
					b.Fatal(err)
				}
				var ec *EncodedColumns
				if bc.cached {
					t0, c0 := time.Now(), cpuSeconds()
					if ec, err = partner.EncodeColumns(mult); err != nil {
						b.Fatal(err)
					}
					offline = time.Since(t0)
					offlineCPU += cpuSeconds() - c0
					mult = nil
					b.StartTimer()
				}
				planMsg, _ := plan.MarshalBinary()
				// Bank: indicator vectors, encrypted.
				gv, _ := GroupVectors(match, group, groups)
				var vectors [][][]byte
				for _, v := range gv {
					cts, err := bank.EncryptVector(v)
					if err != nil {
						b.Fatal(err)
					}
					w.add(cts...)
					vectors = append(vectors, cts)
				}
				// Partner: kernel, then release share after (modelled) approval.
				var res []byte
				if bc.cached {
					res, err = partner.InnerProductsEncoded(vectors, ec)
				} else {
					res, err = partner.InnerProducts(vectors, mult)
				}
				if err != nil {
					b.Fatal(err)
				}
				share, err := partner.ReleaseShare(res, Bank)
				if err != nil {
					b.Fatal(err)
				}
				w.add(planMsg, res, share)
				// Bank: decrypt and decode.
				flat, err := bank.Decrypt(res, share)
				if err != nil {
					b.Fatal(err)
				}
				m := plan.Multipliers()
				stats, err := plan.Decode([][]int64{flat[:m], flat[m:]})
				if err != nil {
					b.Fatal(err)
				}
				Suppress(10, stats)
			}
			b.StopTimer()
			b.ReportMetric((cpuSeconds()-cpu0-offlineCPU)/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(w.n)/1e6, "wire-MB")
			if bc.cached {
				b.ReportMetric(offline.Seconds(), "offline-encode-s")
			}
			reportPhases(b, bank, partner)
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			// Paillier: per row, encrypt `groups` indicators and for each
			// (feature, group) one 0/1-exponent product (count), one
			// 30-bit and one 60-bit exponentiation (Σx, Σx²).
			pc := paillierCosts()
			est := float64(L) * (groups*pc.enc + features*groups*(pc.mul+pc.exp30+pc.exp60)) / float64(runtime.GOMAXPROCS(0))
			b.ReportMetric(est/perOp, "paillier-x")
		})
	}
}

func BenchmarkWOEIV(b *testing.B) {
	b.Run("rows=1e6/features=20/bins=10", func(b *testing.B) {
		const L, features, bins = 1_000_000, 20, 10
		r := mrand.New(mrand.NewPCG(9, 10))
		match := make([]bool, L)
		label := make([]int, L)
		for i := range match {
			match[i] = r.IntN(10) < 6
			label[i] = r.IntN(10) / 9
		}
		cols := make([]BinnedColumn, features)
		for f := range cols {
			cols[f] = BinnedColumn{Bin: make([]int, L), NumBins: bins}
			for i := range L {
				cols[f].Bin[i] = r.IntN(bins+1) - 1 // ~9% missing
			}
		}
		b.ReportAllocs()
		var w wire
		var bank, partner *Session
		b.ResetTimer()
		cpu0 := cpuSeconds()
		for range b.N {
			w = wire{}
			bank, partner = keyRound(b, &w)
			plan, mult, err := PlanBinned(Params{}, cols)
			if err != nil {
				b.Fatal(err)
			}
			planMsg, _ := plan.MarshalBinary()
			v, pk, err := PackGroups(Params{}, match, label, 2)
			if err != nil {
				b.Fatal(err)
			}
			cts, err := bank.EncryptVector(v)
			if err != nil {
				b.Fatal(err)
			}
			res, err := partner.InnerProducts([][][]byte{cts}, mult)
			if err != nil {
				b.Fatal(err)
			}
			share, err := partner.ReleaseShare(res, Bank)
			if err != nil {
				b.Fatal(err)
			}
			w.add(cts...)
			w.add(planMsg, res, share)
			flat, err := bank.Decrypt(res, share)
			if err != nil {
				b.Fatal(err)
			}
			totals, err := pk.Unpack(flat)
			if err != nil {
				b.Fatal(err)
			}
			hists, err := plan.Decode(totals)
			if err != nil {
				b.Fatal(err)
			}
			for _, h := range hists {
				good, bad := make([]int64, bins), make([]int64, bins)
				for bb := range bins {
					good[bb], bad[bb] = h.Counts[bb][0], h.Counts[bb][1]
				}
				WOEIV(good, bad)
			}
		}
		b.StopTimer()
		b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
		b.ReportMetric(float64(w.n)/1e6, "wire-MB")
		reportPhases(b, bank, partner)
		perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		pc := paillierCosts()
		// Paillier: encrypt good and bad indicators per row (2 ciphertexts),
		// then one homomorphic addition per (feature, row) into its bin.
		est := float64(L) * (2*pc.enc + features*2*pc.mul) / float64(runtime.GOMAXPROCS(0))
		b.ReportMetric(est/perOp, "paillier-x")
	})
}

// BenchmarkPaillierBaseline reports the raw per-operation costs used for the
// paillier-x ratios.
func BenchmarkPaillierBaseline(b *testing.B) {
	pc := paillierCosts()
	b.ReportMetric(pc.enc, "enc-ns")
	b.ReportMetric(pc.mul, "mul-ns")
	b.ReportMetric(pc.exp30, "exp30-ns")
	b.ReportMetric(pc.exp60, "exp60-ns")
	for range b.N {
	}
}

// Textbook Paillier with g = n+1, 1024-bit n.
type paillier struct {
	n, n2, lambda, mu *big.Int
}

func newPaillier() *paillier {
	for {
		p, _ := rand.Prime(rand.Reader, 512)
		q, _ := rand.Prime(rand.Reader, 512)
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != 1024 {
			continue
		}
		one := big.NewInt(1)
		p1, q1 := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
		lambda := new(big.Int).Mul(p1, q1) // φ(n) works as λ for g = n+1
		mu := new(big.Int).ModInverse(lambda, n)
		return &paillier{n: n, n2: new(big.Int).Mul(n, n), lambda: lambda, mu: mu}
	}
}

func (pk *paillier) encrypt(m *big.Int) *big.Int {
	r, _ := rand.Int(rand.Reader, pk.n)
	c := new(big.Int).Exp(r, pk.n, pk.n2)
	gm := new(big.Int).Mul(m, pk.n) // (1+n)^m = 1 + m·n mod n²
	gm.Add(gm, big.NewInt(1))
	return c.Mul(c, gm).Mod(c, pk.n2)
}

func (pk *paillier) decrypt(c *big.Int) *big.Int {
	u := new(big.Int).Exp(c, pk.lambda, pk.n2)
	u.Sub(u, big.NewInt(1)).Quo(u, pk.n)
	return u.Mul(u, pk.mu).Mod(u, pk.n)
}

type paillierCost struct{ enc, mul, exp30, exp60 float64 } // ns per op

var (
	paillierOnce sync.Once
	paillierRes  paillierCost
)

// paillierCosts measures, on 200 rows, the per-row Paillier operations of
// the count/sum pipeline and checks the computed count and sum.
func paillierCosts() paillierCost {
	paillierOnce.Do(func() {
		const rows = 200
		pk := newPaillier()
		r := mrand.New(mrand.NewPCG(1, 1))
		c := make([]*big.Int, rows)
		ind := make([]int64, rows)
		x := make([]int64, rows)
		t0 := time.Now()
		for i := range c {
			ind[i] = r.Int64N(2)
			c[i] = pk.encrypt(big.NewInt(ind[i]))
		}
		enc := float64(time.Since(t0).Nanoseconds()) / rows
		t0 = time.Now()
		cnt := big.NewInt(1)
		for i := range c {
			cnt.Mul(cnt, c[i]).Mod(cnt, pk.n2)
		}
		mul := float64(time.Since(t0).Nanoseconds()) / rows
		exp := func(bits int) (float64, *big.Int, int64) {
			acc := big.NewInt(1)
			var want int64
			t := time.Now()
			for i := range c {
				x[i] = r.Int64N(1 << (bits - 1))
				acc.Mul(acc, new(big.Int).Exp(c[i], big.NewInt(x[i]), pk.n2)).Mod(acc, pk.n2)
				want += ind[i] * x[i]
			}
			return float64(time.Since(t).Nanoseconds()) / rows, acc, want
		}
		e30, s30, w30 := exp(30)
		e60, _, _ := exp(60)
		var wantCnt int64
		for _, v := range ind {
			wantCnt += v
		}
		if pk.decrypt(cnt).Int64() != wantCnt || pk.decrypt(s30).Int64() != w30 {
			panic("paillier baseline: wrong result")
		}
		paillierRes = paillierCost{enc: enc, mul: mul, exp30: e30, exp60: e60}
	})
	return paillierRes
}

// BenchmarkVLREpochFloor is the primitive limit of one VLR epoch of
// fedlearn/vlr's BenchmarkEpoch at 1e6 aligned rows × (15 + 15) features,
// degree 9, for the ratio in BENCHMARKS.md: the packed kernel's
// irreducible work, each primitive timed on one core and the total divided
// by the cores. Per 4096-row chunk: the bank seals D+1 = 10 vectors (an
// FFT, an NTT and a seed expansion each); the partner encodes its D = 9
// non-constant weights (FFT + NTT), expands the 10 seeds and
// multiply-accumulates 10 terms, and re-randomises the sum (3 NTTs); the
// two evaluators multiply-accumulate 15 + 2 and 15 outputs. Nothing else
// is counted: no error sampling, rounding, serialisation, parsing, table
// lookups, extraction or release.
func BenchmarkVLREpochFloor(b *testing.B) {
	var w wire
	bank, _ := keyRound(b, &w)
	const rows, terms, outputs = 1_000_000, 10, 15 + 2 + 15
	chunks := (rows + bank.n/2 - 1) / (bank.n / 2)
	enc := bank.encoder()
	cbuf := make([]complex128, bank.n/2)
	for i := range cbuf {
		cbuf[i] = complex(mrand.Float64(), mrand.Float64())
	}
	p := bank.ringQ.NewPoly()
	ct := rlwe.NewCiphertext(bank.params, 1, bank.level)
	acc := rlwe.NewCiphertext(bank.params, 1, bank.level)
	seedBuf := make([]byte, 8*bank.n)
	timeOf := func(n int, f func()) float64 {
		t0 := time.Now()
		for range n {
			f()
		}
		return time.Since(t0).Seconds() / float64(n)
	}
	b.ResetTimer()
	var fft, ntt, expand, mac float64
	for range b.N {
		fft = timeOf(2000, func() { enc.fft(cbuf) })
		ntt = timeOf(2000, func() { bank.toNTT(p, p) })
		expand = timeOf(2000, func() { expandSeed(bank.moduli, [32]byte{1}, p, seedBuf) })
		mac = timeOf(2000, func() {
			bank.macPair(ct.Value[0], ct.Value[1], p, acc.Value[0], acc.Value[1])
			bank.ringQ.Reduce(acc.Value[0], acc.Value[0]) // keeps acc bounded across calls
		})
	}
	cores := float64(runtime.GOMAXPROCS(0))
	perChunk := terms*(fft+ntt+expand) + // bank: seal
		(terms-1)*(fft+ntt) + terms*(expand+mac) + 3*ntt + // partner: combine, re-randomise
		outputs*mac // both: inner products
	b.ReportMetric(fft*1e6, "µs/fft")
	b.ReportMetric(ntt*1e6, "µs/ntt")
	b.ReportMetric(expand*1e6, "µs/expand")
	b.ReportMetric(mac*1e6, "µs/mac")
	b.ReportMetric(float64(chunks)*perChunk/cores, "floor-s/epoch")
}
