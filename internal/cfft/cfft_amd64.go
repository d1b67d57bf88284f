//go:build amd64 && !purego

package cfft

import "golang.org/x/sys/cpu"

// useAsm: 512-bit vectors of float64 with FMA (AVX-512 F).
var useAsm = cpu.X86.HasAVX512F

// radix4Asm is radix4Go over a[0:m] with the pass's table at tw.
//
//go:noescape
func radix4Asm(a *complex128, m, h int, tw *float64)

// radix2Asm is radix2Go over a[0:m].
//
//go:noescape
func radix2Asm(a *complex128, m, h int, tw *float64)
