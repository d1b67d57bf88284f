package ot

import (
	"math/rand/v2"
	"testing"
)

// The assembly called directly with random round keys (not only prp's),
// so a key-schedule slip that happens to cancel for one key is caught,
// each variant by name so both are tested whichever one hashBest is.

type senderPadsFunc func(rk *[11][16]byte, q *[4]uint64, cs *[Values][4]uint64, idx uint64, out *[Values]uint64)

type hashBlocksFunc func(rk *[11][16]byte, x *uint64, mix *uint64, n int, first uint64, shift uint64, out *uint64)

func asmVariants(t *testing.T) (sp map[string]senderPadsFunc, hb map[string]hashBlocksFunc) {
	if !useAsm {
		t.Skip("no AES-NI")
	}
	sp = map[string]senderPadsFunc{"aesni": senderPadsAsm}
	hb = map[string]hashBlocksFunc{"aesni": hashBlocksAsm}
	if hashHasVAES {
		sp["vaes"], hb["vaes"] = senderPadsVAES, hashBlocksVAES
	} else {
		t.Log("no AVX-512 VAES: testing the AES-NI assembly only")
	}
	return sp, hb
}

func randAES(rng *rand.Rand) *fixedAES {
	var key [16]byte
	for i := range key {
		key[i] = byte(rng.Uint32())
	}
	return newFixedAES(key)
}

func TestSenderPadsAsm(t *testing.T) {
	sp, _ := asmVariants(t)
	rng := rand.New(rand.NewPCG(11, 12))
	for trial := range 6 {
		a := randAES(rng)
		snd := randSender(rng)
		if trial == 0 {
			clear(snd.cs[:]) // s = 0: every row is q
		}
		q := randRow(rng)
		idx := rng.Uint64()
		want := refSenderPads(a, q, &snd.cs, idx)
		qh := [4]uint64{q[0], q[1], q[0] ^ q[2], q[1] ^ q[3]}
		for name, f := range sp {
			var out [Values + 1]uint64
			out[Values] = 0x5ca1ab1e
			csBefore, qhBefore := snd.cs, qh
			f(&a.rk, &qh, &snd.cs, idx, (*[Values]uint64)(out[:Values]))
			if out[Values] != 0x5ca1ab1e {
				t.Fatalf("%s: wrote past out", name)
			}
			if snd.cs != csBefore || qh != qhBefore {
				t.Fatalf("%s: modified its inputs", name)
			}
			for v := range Values {
				if out[v] != want[v] {
					t.Fatalf("%s, trial %d: value %d = %x, want %x", name, trial, v, out[v], want[v])
				}
			}
		}
	}
}

func TestHashBlocksAsm(t *testing.T) {
	_, hb := asmVariants(t)
	rng := rand.New(rand.NewPCG(13, 14))
	ns := []int{1037, 4096 + 29}
	for n := 0; n <= 40; n++ {
		ns = append(ns, n)
	}
	const guard = 5 // words after each buffer that must stay untouched
	for _, shift := range []uint64{0, 8} {
		for _, n := range ns {
			a := randAES(rng)
			first := rng.Uint64()
			if n%3 == 0 {
				first = -uint64(n) / 2 // the index wraps around 2^64
			}
			// x and mix end where the guards begin, so a read past them
			// would at least see other data; the stores are checked below.
			x, mix := make([]uint64, 2*n+guard), make([]uint64, 2*n+guard)
			for k := range x {
				x[k], mix[k] = rng.Uint64(), rng.Uint64()
			}
			want := make([]uint64, n)
			for k := range n {
				want[k] = refHash(a, [2]uint64{x[2*k], x[2*k+1]}, [2]uint64{mix[2*k], mix[2*k+1]}, first+uint64(k>>shift))
			}
			for name, f := range hb {
				out := make([]uint64, n+guard)
				for k := range out {
					out[k] = 0x5ca1ab1e
				}
				xBefore, mixBefore := append([]uint64(nil), x...), append([]uint64(nil), mix...)
				f(&a.rk, &x[0], &mix[0], n, first, shift, &out[0])
				for k := range n {
					if out[k] != want[k] {
						t.Fatalf("%s, shift %d, n %d: block %d = %x, want %x", name, shift, n, k, out[k], want[k])
					}
				}
				for k := n; k < len(out); k++ {
					if out[k] != 0x5ca1ab1e {
						t.Fatalf("%s, shift %d, n %d: wrote out[%d]", name, shift, n, k)
					}
				}
				for k := range x {
					if x[k] != xBefore[k] || mix[k] != mixBefore[k] {
						t.Fatalf("%s, shift %d, n %d: modified its inputs", name, shift, n)
					}
				}
			}
		}
	}
}
