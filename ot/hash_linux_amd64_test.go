package ot

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"unsafe"
)

// TestHashBlocksAsmBounds runs hashBlocks with x, mix and out each ending
// right before an inaccessible page, so reading or writing one word past
// the n blocks faults. The masked tail of the VAES code is where that
// could go wrong; results are compared too.
func TestHashBlocksAsmBounds(t *testing.T) {
	_, hb := asmVariants(t)
	page := syscall.Getpagesize()
	region := func() []uint64 {
		mem, err := syscall.Mmap(-1, 0, 2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			t.Skip("mmap:", err)
		}
		t.Cleanup(func() { syscall.Munmap(mem) })
		if err := syscall.Mprotect(mem[page:], syscall.PROT_NONE); err != nil {
			t.Skip("mprotect:", err)
		}
		return unsafe.Slice((*uint64)(unsafe.Pointer(&mem[0])), page/8)
	}
	xr, mr, or := region(), region(), region()
	rng := rand.New(rand.NewPCG(15, 16))
	a := randAES(rng)
	for n := 1; n <= 70; n++ {
		x, mix, out := xr[len(xr)-2*n:], mr[len(mr)-2*n:], or[len(or)-n:]
		for k := range x {
			x[k], mix[k] = rng.Uint64(), rng.Uint64()
		}
		first := rng.Uint64()
		for name, f := range hb {
			clear(out)
			f(&a.rk, &x[0], &mix[0], n, first, 0, &out[0])
			for k := range n {
				if want := refHash(a, [2]uint64{x[2*k], x[2*k+1]}, [2]uint64{mix[2*k], mix[2*k+1]}, first+uint64(k)); out[k] != want {
					t.Fatalf("%s, n %d: block %d = %x, want %x", name, n, k, out[k], want)
				}
			}
		}
	}
}
