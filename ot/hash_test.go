package ot

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// refHash is H(i, x) written straight from its definition in hash.go, one
// block at a time through crypto/aes (a.fallback), sharing no code with
// hasher.run or the assembly: x0 and mix as hasher.run loads them, the
// low word of the result.
func refHash(a *fixedAES, x0, mix [2]uint64, i uint64) uint64 {
	pi := func(w [2]uint64) [2]uint64 {
		var blk [16]byte
		binary.LittleEndian.PutUint64(blk[:8], w[0])
		binary.LittleEndian.PutUint64(blk[8:], w[1])
		a.fallback.Encrypt(blk[:], blk[:])
		return [2]uint64{binary.LittleEndian.Uint64(blk[:8]), binary.LittleEndian.Uint64(blk[8:])}
	}
	p := pi(x0)
	y := [2]uint64{p[0] ^ x0[0] ^ mix[0], p[1] ^ x0[1] ^ mix[1]}
	b := pi(y)
	d := pi([2]uint64{b[0] ^ i, b[1] ^ tweakHigh})
	return d[0] ^ b[0]
}

// refSenderPads is the Sender's 256 pads of one OT by refHash: row
// q ⊕ C(v)∧s, loaded as Batch.Pads loads it.
func refSenderPads(a *fixedAES, q row, cs *[Values][4]uint64, idx uint64) (out [Values]uint64) {
	for v, c := range cs {
		out[v] = refHash(a, [2]uint64{q[0] ^ c[0], q[1] ^ c[1]}, [2]uint64{q[0] ^ q[2] ^ c[2], q[1] ^ q[3] ^ c[3]}, idx)
	}
	return out
}

func randRow(rng *rand.Rand) row { return row{rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()} }

// randSender is a Sender with a random secret s and its cs table; only
// what Batch.Pads reads is set.
func randSender(rng *rand.Rand) *Sender { return senderTables(randRow(rng)) }

// hashImpls lists the implementations this machine runs, hashGo first.
func hashImpls() []hashImpl {
	impls := []hashImpl{hashGo}
	if hashBest >= hashAESNI {
		impls = append(impls, hashAESNI)
	}
	if hashBest >= hashVAES {
		impls = append(impls, hashVAES)
	}
	return impls
}

// TestHasherRun checks hasher.run, the reference the assembly is held to,
// against refHash for both ways it is called (shift 0 and 8).
func TestHasherRun(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var h hasher
	for _, shift := range []uint{0, 8} {
		for _, n := range []int{0, 1, 7, 300, 600} {
			h.size(n)
			first := rng.Uint64()
			x, mix := make([]uint64, 2*n), make([]uint64, 2*n)
			for k := range x {
				x[k], mix[k] = rng.Uint64(), rng.Uint64()
			}
			copy(h.x, x)
			copy(h.mix, mix)
			out := make([]uint64, n)
			h.run(n, first, shift, out)
			for k := range n {
				want := refHash(prp, [2]uint64{x[2*k], x[2*k+1]}, [2]uint64{mix[2*k], mix[2*k+1]}, first+uint64(k>>shift))
				if out[k] != want {
					t.Fatalf("shift %d, n %d: block %d = %x, want %x", shift, n, k, out[k], want)
				}
			}
		}
	}
}

// TestPadsImpls checks Batch.padsWith for every implementation this
// machine runs against refSenderPads, over odd ranges of a random batch.
func TestPadsImpls(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	snd := randSender(rng)
	const m = 21
	b := &Batch{snd: snd, first: rng.Uint64(), q: make([]row, m)}
	for i := range b.q {
		b.q[i] = randRow(rng)
	}
	want := make([]uint64, m*Values)
	for i, q := range b.q {
		w := refSenderPads(prp, q, &snd.cs, b.first+uint64(i))
		copy(want[i*Values:], w[:])
	}
	for _, impl := range hashImpls() {
		var sc PadsScratch
		for _, r := range [][2]int{{0, m}, {3, 12}, {12, 13}, {5, 5}} {
			lo, hi := r[0], r[1]
			got := make([]uint64, (hi-lo)*Values+1)
			got[len(got)-1] = 0x5ca1ab1e
			b.padsWith(impl, lo, hi, got[:len(got)-1], &sc)
			if got[len(got)-1] != 0x5ca1ab1e {
				t.Fatalf("%v, OTs %d…%d: wrote past the pads", impl, lo, hi)
			}
			for k, p := range got[:len(got)-1] {
				if w := want[lo*Values+k]; p != w {
					t.Fatalf("%v, OTs %d…%d: OT %d value %d = %x, want %x", impl, lo, hi, lo+k/Values, k%Values, p, w)
				}
			}
		}
	}
}

// TestHashRowsImpls checks hasher.hashRowsWith (the Receiver's hash) for
// every implementation this machine runs against refHash.
func TestHashRowsImpls(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, impl := range hashImpls() {
		var h hasher
		for _, n := range []int{0, 1, 31, 32, 33, 700} {
			first := rng.Uint64()
			xs := make([]row, n)
			for k := range xs {
				xs[k] = randRow(rng)
			}
			out := make([]uint64, n)
			h.hashRowsWith(impl, first, xs, out)
			for k, r := range xs {
				want := refHash(prp, [2]uint64{r[0], r[1]}, [2]uint64{r[0] ^ r[2], r[1] ^ r[3]}, first+uint64(k))
				if out[k] != want {
					t.Fatalf("%v, n %d: row %d = %x, want %x", impl, n, k, out[k], want)
				}
			}
		}
	}
}
