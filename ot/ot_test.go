package ot

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math/bits"
	mrand "math/rand/v2"
	"testing"
)

func TestCodeDistance(t *testing.T) {
	for a := range Values {
		for b := a + 1; b < Values; b++ {
			d := 0
			for k := range codeword[a] {
				d += bits.OnesCount64(codeword[a][k] ^ codeword[b][k])
			}
			if d != CodeBits/2 {
				t.Fatalf("C(%d) and C(%d) at distance %d, want %d", a, b, d, CodeBits/2)
			}
		}
	}
}

func TestColumnsToRows(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for _, n := range []int{64, 128, 640} {
		w := n / 64
		cols := make([]uint64, CodeBits*w)
		for k := range cols {
			cols[k] = r.Uint64()
		}
		rows := make([]row, n)
		columnsToRows(cols, rows)
		for i := range n {
			for j := range CodeBits {
				want := cols[j*w+i/64] >> (i % 64) & 1
				if got := rows[i][j/64] >> (j % 64) & 1; got != want {
					t.Fatalf("n=%d: row %d bit %d = %d, column %d bit %d = %d", n, i, j, got, j, i, want)
				}
			}
		}
	}
}

// pair runs the base OTs and returns both extension sides.
func pair(t testing.TB) (*Receiver, *Sender) {
	t.Helper()
	rcv, snd, err := LocalPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return rcv, snd
}

// TestExtension: the Receiver's pad is the Sender's pad at its choice and
// equals none of the other 255; batches of odd sizes keep both sides'
// streams in step; no pad repeats across OTs.
func TestExtension(t *testing.T) {
	rcv, snd := pair(t)
	r := mrand.New(mrand.NewPCG(3, 4))
	seen := map[uint64]bool{}
	var sc PadsScratch
	for _, m := range []int{1, 63, 64, 65, 700} {
		choices := make([]byte, m)
		for i := range choices {
			choices[i] = byte(r.IntN(Values))
		}
		choices[0] = 0
		choices[m-1] = 255
		u := make([]byte, CorrectionsBytes(m))
		mine := make([]uint64, m)
		rcv.Extend(choices, u, mine)
		batch, err := snd.Extend(m, u)
		if err != nil {
			t.Fatal(err)
		}
		all := make([]uint64, m*Values)
		half := m / 2 // two ranges, as two goroutines would
		batch.Pads(0, half, all[:half*Values], &sc)
		batch.Pads(half, m, all[half*Values:], &sc)
		for i, c := range choices {
			for v := range Values {
				p := all[i*Values+v]
				if (p == mine[i]) != (v == int(c)) {
					t.Fatalf("m=%d OT %d (choice %d): pad of value %d %x, receiver's %x", m, i, c, v, p, mine[i])
				}
				if seen[p] {
					t.Fatalf("pad %x repeats", p)
				}
				seen[p] = true
			}
		}
	}
}

// TestPadsN: for OTs among the first n values, the Receiver's pad in each
// domain is the Sender's PadsN pad at its choice, for every hash
// implementation; the values' pads are Pads' own in domain 0 and differ
// from them in the others; no pad repeats.
func TestPadsN(t *testing.T) {
	rcv, snd := pair(t)
	r := mrand.New(mrand.NewPCG(5, 6))
	var sc PadsScratch
	for _, n := range []int{2, 16, 256} {
		for _, m := range []int{1, 130, 300} { // 300·16 rows: more than one chunk
			choices := make([]byte, m)
			for i := range choices {
				choices[i] = byte(r.IntN(n))
			}
			u := make([]byte, CorrectionsBytes(m))
			var mine [Domains][]uint64
			mine[0] = make([]uint64, m)
			rcv.Extend(choices, u, mine[0])
			for d := 1; d < Domains; d++ {
				mine[d] = make([]uint64, m)
				rcv.MorePads(d, mine[d])
			}
			batch, err := snd.Extend(m, u)
			if err != nil {
				t.Fatal(err)
			}
			full := make([]uint64, m*Values)
			batch.Pads(0, m, full, &sc)
			seen := map[uint64]bool{}
			for _, impl := range hashImpls() {
				for d := range Domains {
					pads := make([]uint64, m*n)
					half := m / 2
					batch.padsNWith(impl, 0, half, n, d, pads[:half*n], &sc)
					batch.padsNWith(impl, half, m, n, d, pads[half*n:], &sc)
					for i, c := range choices {
						for v := range n {
							p := pads[i*n+v]
							if (p == mine[d][i]) != (v == int(c)) {
								t.Fatalf("%v n=%d m=%d domain %d OT %d (choice %d): pad of value %d %x, receiver's %x", impl, n, m, d, i, c, v, p, mine[d][i])
							}
							if (p == full[i*Values+v]) != (d == 0) {
								t.Fatalf("%v n=%d domain %d: pad of OT %d value %d against Pads'", impl, n, d, i, v)
							}
							if impl == hashGo {
								if seen[p] {
									t.Fatalf("n=%d m=%d: pad %x repeats", n, m, p)
								}
								seen[p] = true
							}
						}
					}
				}
			}
		}
	}
}

func TestBaseRejectsMalformed(t *testing.T) {
	bs, a, err := NewBaseSender(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bad := func(msg []byte) []byte { return bytes.Clone(msg) }
	short := bad(a)[:len(a)-1]
	notPoint := bad(a)
	for k := range 32 {
		notPoint[32*7+k] = 0xff
	}
	identity := bad(a)
	clear(identity[32*9 : 32*10])
	for name, msg := range map[string][]byte{"short": short, "not a point": notPoint, "identity": identity} {
		if _, _, err := NewBaseReceiver(rand.Reader, msg); !errors.Is(err, ErrMessage) {
			t.Errorf("A %s: err %v, want ErrMessage", name, err)
		}
	}
	br, b, err := NewBaseReceiver(rand.Reader, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Respond(b[:100]); !errors.Is(err, ErrMessage) {
		t.Errorf("short B: %v", err)
	}
	e, err := bs.Respond(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != BaseAMsgBytes || len(b) != BaseBMsgBytes || len(e) != BaseEMsgBytes {
		t.Fatalf("base messages of %d, %d, %d bytes", len(a), len(b), len(e))
	}
	if _, err := bs.Respond(b); err == nil {
		t.Error("second Respond accepted")
	}
	tampered := bad(e)
	tampered[2*sealedBytes*5+20] ^= 1
	tampered[2*sealedBytes*5+sealedBytes+20] ^= 1
	if err := br.Finish(tampered); !errors.Is(err, ErrMessage) {
		t.Errorf("tampered E: %v", err)
	}
	if _, err := br.Sender(); err == nil {
		t.Error("Sender before a good Finish")
	}
	if err := br.Finish(e[:10]); !errors.Is(err, ErrMessage) {
		t.Errorf("short E: %v", err)
	}
	if err := br.Finish(e); err != nil {
		t.Fatal(err)
	}
}

func FuzzBaseA(f *testing.F) {
	_, a, err := NewBaseSender(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(a)
	f.Add(a[:32])
	f.Fuzz(func(t *testing.T, msg []byte) {
		if _, b, err := NewBaseReceiver(rand.Reader, msg); err == nil && len(b) != BaseBMsgBytes {
			t.Fatalf("B of %d bytes", len(b))
		} else if err != nil && !errors.Is(err, ErrMessage) {
			t.Fatalf("error %v does not wrap ErrMessage", err)
		}
	})
}

func FuzzBaseB(f *testing.F) {
	_, a, err := NewBaseSender(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	_, b, err := NewBaseReceiver(rand.Reader, a)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:64])
	f.Fuzz(func(t *testing.T, msg []byte) {
		bs, _, err := NewBaseSender(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e, err := bs.Respond(msg)
		switch {
		case err != nil && !errors.Is(err, ErrMessage):
			t.Fatalf("error %v does not wrap ErrMessage", err)
		case err == nil && len(e) != BaseEMsgBytes:
			t.Fatalf("E of %d bytes", len(e))
		}
	})
}

func FuzzBaseE(f *testing.F) {
	bs, a, err := NewBaseSender(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	_, b, err := NewBaseReceiver(rand.Reader, a)
	if err != nil {
		f.Fatal(err)
	}
	e, err := bs.Respond(b)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(e)
	f.Add(e[:44])
	f.Fuzz(func(t *testing.T, msg []byte) {
		br, _, err := NewBaseReceiver(rand.Reader, a)
		if err != nil {
			t.Fatal(err)
		}
		if err := br.Finish(msg); err != nil && !errors.Is(err, ErrMessage) {
			t.Fatalf("error %v does not wrap ErrMessage", err)
		}
	})
}

func FuzzSenderExtend(f *testing.F) {
	_, snd := pair(f)
	f.Add(3, make([]byte, CorrectionsBytes(3)))
	f.Add(65, make([]byte, CorrectionsBytes(65)))
	f.Add(-1, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, m int, u []byte) {
		b, err := snd.Extend(m, u)
		if err != nil {
			if !errors.Is(err, ErrMessage) && m >= 0 && m <= maxBatch {
				t.Fatalf("error %v does not wrap ErrMessage", err)
			}
			return
		}
		if b.Len() != m || len(u) != CorrectionsBytes(m) {
			t.Fatalf("%d OTs from %d bytes", b.Len(), len(u))
		}
	})
}

// BenchmarkSenderPads is one batch of 1024 OTs on both sides, the
// Sender's pads by each hash implementation this machine runs: ns/OT is
// Receiver.Extend + Sender.Extend + Batch.Pads per OT.
func BenchmarkSenderPads(b *testing.B) {
	rcv, snd := pair(b)
	const m = 1024
	choices := make([]byte, m)
	u := make([]byte, CorrectionsBytes(m))
	mine := make([]uint64, m)
	pads := make([]uint64, m*Values)
	for _, impl := range hashImpls() {
		b.Run(impl.String(), func(b *testing.B) {
			var sc PadsScratch
			b.ReportAllocs()
			for b.Loop() {
				rcv.Extend(choices, u, mine)
				batch, err := snd.Extend(m, u)
				if err != nil {
					b.Fatal(err)
				}
				batch.padsWith(impl, 0, m, pads, &sc)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*m), "ns/OT")
		})
	}
}

// BenchmarkPadsOnly is Batch.Pads (256 hashes an OT) and PadsN for
// 1-out-of-16 OTs (16 hashes) alone, per OT, by each hash implementation.
func BenchmarkPadsOnly(b *testing.B) {
	rng := mrand.New(mrand.NewPCG(1, 1))
	const m = 256
	batch := &Batch{snd: randSender(rng), q: make([]row, m)}
	for i := range batch.q {
		batch.q[i] = randRow(rng)
	}
	pads := make([]uint64, m*Values)
	for _, n := range []int{Values, 16} {
		for _, impl := range hashImpls() {
			b.Run(fmt.Sprintf("n=%d/%v", n, impl), func(b *testing.B) {
				var sc PadsScratch
				b.ReportAllocs()
				for b.Loop() {
					if n == Values {
						batch.padsWith(impl, 0, m, pads, &sc)
					} else {
						batch.padsNWith(impl, 0, m, n, 0, pads[:m*n], &sc)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*m), "ns/OT")
			})
		}
	}
}

// BenchmarkHashRows is the Receiver's hash, one per OT.
func BenchmarkHashRows(b *testing.B) {
	rng := mrand.New(mrand.NewPCG(2, 2))
	const m = 4096
	xs := make([]row, m)
	for i := range xs {
		xs[i] = randRow(rng)
	}
	out := make([]uint64, m)
	for _, impl := range hashImpls() {
		b.Run(impl.String(), func(b *testing.B) {
			var h hasher
			for b.Loop() {
				h.hashRowsWith(impl, 0, xs, out)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*m), "ns/OT")
		})
	}
}
