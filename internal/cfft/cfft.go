// Package cfft is the forward complex DFT, kernel e^(−2πi·lj/M), of a
// vector given in bit-reversed order, with AVX-512 passes: the transform
// behind fedlearn's approximate encoding, where it was an eighth of a
// training epoch's CPU in scalar Go.
//
// Layout: one pass fuses the first three radix-2 stages (sizes 2, 4 and 8:
// twiddles ±1, ±i and (±1 ± i)/√2 only) in scalar Go; then radix-2² passes
// (two stages, three complex products per four points) and, for an odd
// number of remaining stages, one radix-2 pass, four complex values per
// vector. Twiddles are stored per pass in the order the passes read them,
// real and imaginary parts each duplicated into both halves of a complex
// lane, so a complex product is a swap, a multiply and a fused
// multiply-add/subtract with no twiddle shuffles.
//
// Results equal the scalar transform's up to rounding (the fused
// multiply-add rounds once where the scalar code rounds twice).
package cfft

import (
	"errors"
	"math"
	"math/cmplx"
)

// Plan holds the twiddles of one transform length.
type Plan struct {
	m      int
	radix4 []pass // h = 8, 32, …
	radix2 *pass  // the last stage when an odd number remain
}

// pass is one pass's twiddle table: for radix4, per vector of four k,
// six vectors (w2 re, w2 im, w4 re, w4 im, −i·w4 re, −i·w4 im); for
// radix2, two (w re, w im); each value twice, as described above.
type pass struct {
	h  int
	tw []float64
}

// ErrLength: the transform length must be a power of two ≥ 8.
var ErrLength = errors.New("cfft: length must be a power of two ≥ 8")

// New returns the plan for length m.
func New(m int) (*Plan, error) {
	if m < 8 || m&(m-1) != 0 {
		return nil, ErrLength
	}
	p := &Plan{m: m}
	h := 8
	for ; 4*h <= m; h *= 4 {
		ps := pass{h: h}
		for k0 := 0; k0 < h; k0 += 4 {
			var w [6][8]float64
			for l := range 4 {
				k := k0 + l
				w2 := root(k, 2*h)
				w4 := root(k, 4*h)
				w4m := complex(imag(w4), -real(w4)) // −i·w4
				for v, c := range [3]complex128{w2, w4, w4m} {
					w[2*v][2*l], w[2*v][2*l+1] = real(c), real(c)
					w[2*v+1][2*l], w[2*v+1][2*l+1] = imag(c), imag(c)
				}
			}
			for _, v := range w {
				ps.tw = append(ps.tw, v[:]...)
			}
		}
		p.radix4 = append(p.radix4, ps)
	}
	if h < m {
		ps := pass{h: h}
		for k0 := 0; k0 < h; k0 += 4 {
			var w [2][8]float64
			for l := range 4 {
				c := root(k0+l, 2*h)
				w[0][2*l], w[0][2*l+1] = real(c), real(c)
				w[1][2*l], w[1][2*l+1] = imag(c), imag(c)
			}
			ps.tw = append(ps.tw, w[0][:]...)
			ps.tw = append(ps.tw, w[1][:]...)
		}
		p.radix2 = &ps
	}
	return p, nil
}

// root is e^(−2πi·k/size), as the scalar transform computes it.
func root(k, size int) complex128 {
	return cmplx.Rect(1, -2*math.Pi*float64(k)/float64(size))
}

// Transform replaces a (the plan's length, bit-reversed order) by its DFT in
// natural order.
func (p *Plan) Transform(a []complex128) {
	if len(a) != p.m {
		panic("cfft: length differs from the plan")
	}
	radix8(a)
	for _, ps := range p.radix4 {
		if useAsm {
			radix4Asm(&a[0], p.m, ps.h, &ps.tw[0])
		} else {
			radix4Go(a, ps.h, ps.tw)
		}
	}
	if ps := p.radix2; ps != nil {
		if useAsm {
			radix2Asm(&a[0], p.m, ps.h, &ps.tw[0])
		} else {
			radix2Go(a, ps.h, ps.tw)
		}
	}
}

// Accelerated reports whether the passes run as AVX-512 assembly.
func Accelerated() bool { return useAsm }

// radix8 runs the stages of sizes 2, 4 and 8 on each block of eight.
func radix8(a []complex128) {
	const r = math.Sqrt2 / 2
	w1 := complex(r, -r)  // e^(−iπ/4)
	w3 := complex(-r, -r) // e^(−3iπ/4)
	for i := 0; i+8 <= len(a); i += 8 {
		p := (*[8]complex128)(a[i : i+8])
		s0, d0 := p[0]+p[1], p[0]-p[1]
		s1, d1 := p[2]+p[3], p[2]-p[3]
		s2, d2 := p[4]+p[5], p[4]-p[5]
		s3, d3 := p[6]+p[7], p[6]-p[7]
		e0, e2 := s0+s1, s0-s1
		t := minusI(d1)
		e1, e3 := d0+t, d0-t
		f0, f2 := s2+s3, s2-s3
		t = minusI(d3)
		f1, f3 := d2+t, d2-t
		p[0], p[4] = e0+f0, e0-f0
		t = f1 * w1
		p[1], p[5] = e1+t, e1-t
		t = minusI(f2)
		p[2], p[6] = e2+t, e2-t
		t = f3 * w3
		p[3], p[7] = e3+t, e3-t
	}
}

func minusI(z complex128) complex128 { return complex(imag(z), -real(z)) }

// twiddle reads lane l of the duplicated (re, im) pair of vectors at tw.
func twiddle(tw []float64, l int) complex128 { return complex(tw[2*l], tw[8+2*l]) }

// radix4Go is the radix-2² pass in Go (the reference and the fallback).
func radix4Go(a []complex128, h int, tw []float64) {
	for start := 0; start < len(a); start += 4 * h {
		b0, b1, b2, b3 := a[start:start+h], a[start+h:start+2*h], a[start+2*h:start+3*h], a[start+3*h:start+4*h]
		for k := range h {
			v := tw[48*(k/4):]
			w2, w4, w4m := twiddle(v, k%4), twiddle(v[16:], k%4), twiddle(v[32:], k%4)
			t0, t1 := b1[k]*w2, b3[k]*w2
			x0, x1 := b0[k]+t0, b0[k]-t0
			x2, x3 := b2[k]+t1, b2[k]-t1
			u, w := x2*w4, x3*w4m
			b0[k], b2[k] = x0+u, x0-u
			b1[k], b3[k] = x1+w, x1-w
		}
	}
}

// radix2Go is the radix-2 pass in Go.
func radix2Go(a []complex128, h int, tw []float64) {
	for start := 0; start < len(a); start += 2 * h {
		lo, hi := a[start:start+h], a[start+h:start+2*h]
		for k := range h {
			t := hi[k] * twiddle(tw[16*(k/4):], k%4)
			lo[k], hi[k] = lo[k]+t, lo[k]-t
		}
	}
}
