package ot

import "math/bits"

// CodeBits is the length of the Walsh–Hadamard code: codewords of 8-bit
// values, any two at Hamming distance exactly 128.
const CodeBits = 256

// Values is the number of messages of one OT (the choices 0…255).
const Values = 256

// row is one 256-bit row of the extension matrices (bit j in word j/64).
type row [CodeBits / 64]uint64

func (r row) xor(o row) row { return row{r[0] ^ o[0], r[1] ^ o[1], r[2] ^ o[2], r[3] ^ o[3]} }
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
// becomes bit i of a[j]. Each level exchanges one bit of the row and the
// column index by swapping the off-diagonal blocks of size j.
func transpose64(a *[64]uint64) {
	masks := [...]uint64{0x00000000ffffffff, 0x0000ffff0000ffff, 0x00ff00ff00ff00ff, 0x0f0f0f0f0f0f0f0f, 0x3333333333333333, 0x5555555555555555}
	for l, j := 0, 32; j != 0; l, j = l+1, j>>1 {
		m := masks[l]
		for k := 0; k < 64; k++ {
			if k&j != 0 {
				continue
			}
			t := ((a[k] >> j) ^ a[k+j]) & m
			a[k] ^= t << j
			a[k+j] ^= t
		}
	}
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
