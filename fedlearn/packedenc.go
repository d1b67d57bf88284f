package fedlearn

import (
	"math"
	"math/bits"
	"math/cmplx"

	"github.com/tandem-dev/tandem/internal/cfft"
)

// realEncoder is the approximate ("CKKS") encoding of the packed kernel
// (packed.go): up to M = N/2 complex values z_l become the integer
// polynomial round(Δ·m) where m is the real polynomial of degree < N with
// m(ρ_l) = z_l at the roots ρ_l = ω^(4l+1), ω = e^(iπ/N), of X^N + 1 (and
// conj(z_l) at the conjugate roots, which makes m real). Products of
// polynomials are then slot-wise products, and the constant coefficient of
// any m is (2/N)·Σ_l Re m(ρ_l), because the N roots of X^N + 1 sum every
// power X^j, 0 < j < N, to zero. That is the whole trick of the packed
// kernel: an inner product of two slot vectors is a constant coefficient,
// extracted as one LWE ciphertext, with no rotations.
//
// The ordering of the slots (l ↦ ω^(4l+1)) is not the rotation-friendly
// 5^l order of CKKS libraries: nothing here rotates, and this order makes
// the transform one plain complex FFT of size M. Derivation: for
// c_j = m_j + i·m_(j+M), j < M, and ρ_l^M = i, m(ρ_l) = Σ_j c_j ω^j
// e^(2πi·lj/M), so c_j = ω^(−j)·DFT(z)_j / M.
type realEncoder struct {
	n, m    int
	logM    int
	rev     []int32      // bit reversal on log2(M) bits
	tw      []complex128 // e^(−2πi·k/M), k < M/2
	untwist []complex128 // ω^(−j)/M, j < M
	fast    *cfft.Plan   // the AVX-512 transform, when the CPU has it
}

func newRealEncoder(n int) *realEncoder {
	m := n / 2
	logM := bits.TrailingZeros(uint(m))
	e := &realEncoder{n: n, m: m, logM: logM,
		rev: make([]int32, m), untwist: make([]complex128, m)}
	for i := range e.rev {
		e.rev[i] = int32(bits.Reverse32(uint32(i)) >> (32 - logM))
	}
	for size := 4; size <= m; size <<= 1 {
		for k := range size / 2 {
			e.tw = append(e.tw, cmplx.Rect(1, -2*math.Pi*float64(k)/float64(size)))
		}
	}
	for j := range e.untwist {
		e.untwist[j] = cmplx.Rect(1/float64(m), -math.Pi*float64(j)/float64(n))
	}
	if cfft.Accelerated() {
		e.fast, _ = cfft.New(m) // nil for m < 8: the Go transform below
	}
	return e
}

// encode writes round(Δ·m) into dst (length N) for the slot values z
// (length ≤ M; missing slots are zero), using buf (length M) as scratch.
// It returns the largest |coefficient|, for the caller's range check.
func (e *realEncoder) encode(z []complex128, delta float64, buf []complex128, dst []int64) uint64 {
	clear(buf)
	for l, v := range z {
		buf[e.rev[l]] = v
	}
	return e.finish(delta, buf, dst)
}

// encodeReal is encode for real slot values.
func (e *realEncoder) encodeReal(z []float64, delta float64, buf []complex128, dst []int64) uint64 {
	clear(buf)
	for l, v := range z {
		buf[e.rev[l]] = complex(v, 0)
	}
	return e.finish(delta, buf, dst)
}

func (e *realEncoder) finish(delta float64, buf []complex128, dst []int64) uint64 {
	e.fft(buf)
	var peak uint64
	for j, c := range buf {
		c *= e.untwist[j]
		re, im := real(c)*delta, imag(c)*delta
		// Branch-free rounding half away from zero (see vlr's evaluate).
		a := int64(re + math.Copysign(0.5, re))
		b := int64(im + math.Copysign(0.5, im))
		dst[j], dst[j+e.m] = a, b
		peak = max(peak, absU(a), absU(b))
	}
	return peak
}

// fft is the in-place forward DFT (kernel e^(−2πi·lj/M)) of a vector
// already in bit-reversed order: iterative decimation in time, the size-2
// stage without multiplications and then two radix-2 stages per pass
// (sizes 2h and 4h: three complex products per four points instead of
// four, and half the passes over memory; 30 % faster than one stage per
// pass), with each stage's twiddles contiguous.
func (e *realEncoder) fft(a []complex128) {
	if e.fast != nil {
		e.fast.Transform(a) // 2.4× this code's speed (BENCHMARKS.md)
		return
	}
	m := e.m
	for i := 0; i+1 < m; i += 2 {
		a[i], a[i+1] = a[i]+a[i+1], a[i]-a[i+1]
	}
	off := 0 // e.tw offset of the stage of size 2h
	for h := 2; 2*h <= m; {
		if 4*h > m { // a last single stage
			tw := e.tw[off : off+h]
			for start := 0; start < m; start += 2 * h {
				lo, hi := a[start:start+h:start+h], a[start+h:start+2*h:start+2*h]
				for k, w := range tw {
					t := hi[k] * w
					hi[k] = lo[k] - t
					lo[k] += t
				}
			}
			break
		}
		tw2, tw4 := e.tw[off:off+h], e.tw[off+h:off+2*h] // only k < h of the 4h stage: the rest is −i times
		off += 3 * h
		for start := 0; start < m; start += 4 * h {
			b0, b1 := a[start:start+h:start+h], a[start+h:start+2*h:start+2*h]
			b2, b3 := a[start+2*h:start+3*h:start+3*h], a[start+3*h:start+4*h:start+4*h]
			for k, w2 := range tw2 {
				w4 := tw4[k]
				t0, t1 := b1[k]*w2, b3[k]*w2
				x0, x1 := b0[k]+t0, b0[k]-t0
				x2, x3 := b2[k]+t1, b2[k]-t1
				u := x2 * w4
				v := x3 * w4
				v = complex(imag(v), -real(v)) // × e^(−iπ/2): twiddle w4^(k+h)
				b0[k], b2[k] = x0+u, x0-u
				b1[k], b3[k] = x1+v, x1-v
			}
		}
		h *= 4
	}
}
