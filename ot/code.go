package ot

import "math/bits"

// CodeBits is the length of the Walsh–Hadamard code: codewords of 8-bit
// values, any two at Hamming distance exactly 128.
const CodeBits = 256

// Values is the number of messages of one OT (the choices 0…255).
const Values = 256

// row is one 256-bit row of the extension matrices (bit j in word j/64).
type row [CodeBits / 64]uint64

func (r row) and(o row) row { return row{r[0] & o[0], r[1] & o[1], r[2] & o[2], r[3] & o[3]} }

// codeword is C(v): bit j is the parity of v AND j.
var codeword = func() (c [Values]row) {
	for v := range Values {
		for j := range CodeBits {
			if bits.OnesCount(uint(v&j))&1 == 1 {
				c[v][j/64] |= 1 << (j % 64)
			}
		}
	}
	return c
}()

// transpose64 transposes a 64×64 bit matrix in place: bit j of a[i]
// becomes bit i of a[j]. Level j exchanges one bit of the row and the
// column index by swapping, in each block of 2j rows, the upper right j×j
// quarter with the lower left one. Each level is written out with its
// block as a fixed-size array so the compiler drops the bounds checks
// and the branches (2.3× faster than one loop over the six levels).
func transpose64(a *[64]uint64) {
	for i := range 32 {
		a[i], a[i+32] = swapBits(a[i], a[i+32], 32, 0x00000000ffffffff)
	}
	for b := 0; b < 64; b += 32 {
		p := (*[32]uint64)(a[b : b+32])
		for i := range 16 {
			p[i], p[i+16] = swapBits(p[i], p[i+16], 16, 0x0000ffff0000ffff)
		}
	}
	for b := 0; b < 64; b += 16 {
		p := (*[16]uint64)(a[b : b+16])
		for i := range 8 {
			p[i], p[i+8] = swapBits(p[i], p[i+8], 8, 0x00ff00ff00ff00ff)
		}
	}
	for b := 0; b < 64; b += 8 {
		p := (*[8]uint64)(a[b : b+8])
		for i := range 4 {
			p[i], p[i+4] = swapBits(p[i], p[i+4], 4, 0x0f0f0f0f0f0f0f0f)
		}
	}
	for b := 0; b < 64; b += 4 {
		p := (*[4]uint64)(a[b : b+4])
		p[0], p[2] = swapBits(p[0], p[2], 2, 0x3333333333333333)
		p[1], p[3] = swapBits(p[1], p[3], 2, 0x3333333333333333)
	}
	for b := 0; b < 64; b += 2 {
		p := (*[2]uint64)(a[b : b+2])
		p[0], p[1] = swapBits(p[0], p[1], 1, 0x5555555555555555)
	}
}

// swapBits exchanges the bits of x at m<<j with those of y at m.
func swapBits(x, y uint64, j uint, m uint64) (uint64, uint64) {
	t := (x>>j ^ y) & m
	return x ^ t<<j, y ^ t
}

// columnsToRows turns 256 columns of n bits (n a multiple of 64; column j
// is cols[j*n/64 : (j+1)*n/64], bit i of the column in word i/64) into n
// rows of 256 bits.
func columnsToRows(cols []uint64, rows []row) {
	n := len(rows)
	w := n / 64
	var blk [64]uint64
	for rb := range w {
		for cb := range CodeBits / 64 {
			for k := range 64 {
				blk[k] = cols[(cb*64+k)*w+rb]
			}
			transpose64(&blk)
			for k := range 64 {
				rows[rb*64+k][cb] = blk[k]
			}
		}
	}
}
