//go:build !amd64

package ot

// Off amd64 the hash is always hasher.run: hashBest is hashGo and the
// functions below are never called.

const hashBest = hashGo

func senderPadsWith(impl hashImpl, q *[4]uint64, cs *[Values][4]uint64, idx uint64, out *[Values]uint64) {
	panic("ot: senderPadsWith called on a non-amd64 build")
}

func hashBlocksWith(impl hashImpl, x, mix []uint64, first uint64, shift uint, out []uint64) {
	panic("ot: hashBlocksWith called on a non-amd64 build")
}

func (b *Batch) pads16(lo, hi, d int, pads []uint64) bool { return false }
