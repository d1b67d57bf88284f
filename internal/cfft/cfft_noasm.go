//go:build !amd64 || purego

package cfft

const useAsm = false

func radix4Asm(a *complex128, m, h int, tw *float64) { panic("cfft: no assembly") }
func radix2Asm(a *complex128, m, h int, tw *float64) { panic("cfft: no assembly") }
