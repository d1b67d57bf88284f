package psi

import (
	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// The fast suite, "x25519-ell2".
//
// Construction. H(x) is the u-coordinate of RFC 9380 hash_to_curve with suite
// curve25519_XMD:SHA-512_ELL2_RO_ (two Elligator 2 maps, point addition,
// cofactor clearing), under the Tandem DST. Masking is X25519(k, u) (RFC 7748
// §5) with a clamped scalar k.
//
// Why it is sound.
//   - Random oracle into the group. hash_to_curve's RO variant is
//     indifferentiable from a random oracle to the prime-order subgroup
//     (RFC 9380 §10.1); only the x-coordinate is kept, i.e. we work in the
//     quotient by ±1, which is what X25519 computes on anyway. Two identifiers
//     collide iff H(x) = ±H(y): probability ≈ 2^-251 per pair.
//   - Commutativity. The Montgomery ladder computes u([k]P) from u(P) for
//     every P, and u([a]u([b]P)) = u([ab]P) = u([b]u([a]P)), so the blinded
//     values of both parties agree.
//   - Injectivity of masking. On the order-ℓ subgroup, P ↦ [k]P is a
//     bijection for k ≢ 0 (mod ℓ); clamped k = 8k' with 2^251 ≤ k' < 2^252 < ℓ.
//   - Peer input (Remask). We require a canonical u < p with bit 255 clear and
//     reject outputs equal to 0 (low-order inputs, RFC 7748 §6.1). We do not
//     test whether u lies on the curve or on its twist: the clamped scalar is
//     a multiple of 8, which kills every small-order component on the curve
//     (cofactor 8) and on the twist (cofactor 4), and the twist's prime-order
//     part has ≈2^253 elements, so answering on twist points leaks no more
//     about k than answering on curve points (curve25519's twist security,
//     Bernstein 2006 §3). This is the same argument that lets X25519 accept
//     any 32-byte public key.
//   - DDH. The key-dependent part is the standard X25519 ladder, constant
//     time in k. Hashing (public data) uses constant-time field code too.
//
// Why it is fast. Per element: SHA-512 ×3, two Elligator 2 maps with one
// combined inverse-square-root each (no separate inversion: x = xn/xd is
// kept projective), one Edwards addition and three doublings, and the
// conversion to u = (Z+Y)/(Z-Y) whose inversion is batched over blocks of
// x25519Batch elements with Montgomery's trick (≈3 multiplications each
// instead of one inversion). The scalar multiplication is an x-only ladder.

const (
	x25519SuiteName = "x25519-ell2"
	// x25519SuiteID is the RFC 9380 §8.5 suite ID.
	x25519SuiteID = "curve25519_XMD:SHA-512_ELL2_RO_"
	x25519Size    = 32
	// x25519Batch is the block size for Montgomery's batched inversion.
	x25519Batch = 64
)

var (
	ell2J = new(field.Element).Mult32(feOne, 486662)
	// ell2C1 = sqrt(-2·sqrt(-1)): turns the SqrtRatio result for a non-square
	// gx1 (a root of sqrt(-1)·gx1) into a root of gx2 = 2u²·gx1.
	ell2C1 = func() *field.Element {
		var m field.Element
		m.Multiply(r255SqrtM1, new(field.Element).Mult32(feMinusOne, 2))
		r, ok := new(field.Element).SqrtRatio(&m, feOne)
		if ok != 1 {
			panic("psi: -2i is not a square")
		}
		return r
	}()
	// ell2C2 = sqrt(-486664), for the RFC 7748 §4.1 map to edwards25519.
	// Either root works: both maps are isomorphisms, and the u-coordinate of
	// the result does not depend on the choice.
	ell2C2 = func() *field.Element {
		r, ok := new(field.Element).SqrtRatio(new(field.Element).Mult32(feMinusOne, 486664), feOne)
		if ok != 1 {
			panic("psi: -486664 is not a square")
		}
		return r
	}()
)

// ell2Map is map_to_curve_elligator2 for curve25519 (RFC 9380 §6.7.1, J = 486662,
// K = 1, Z = 2), composed with the RFC 7748 §4.1 birational map to edwards25519
// so that points can be added there.
func ell2Map(p *edwards25519.Point, u *field.Element) {
	var tv1, xn, xd, num, t0, r, y, yAlt, a, b, c, d, X, Y, Z, T field.Element
	// Steps 1–2: x1 = -J / (1 + Z·u²), or -J if the denominator is zero.
	tv1.Square(u)
	tv1.Add(&tv1, &tv1)
	xd.Add(feOne, &tv1)
	xd.Select(feOne, &xd, xd.Equal(feZero))
	xn.Negate(ell2J)
	// Steps 3–4: gx1 = x1³ + J·x1² + x1 = xn·(xn² + J·xn·xd + xd²) / xd³.
	num.Square(&xn)
	t0.Multiply(ell2J, &xn)
	t0.Multiply(&t0, &xd)
	num.Add(&num, &t0)
	t0.Square(&xd)
	num.Add(&num, &t0)
	num.Multiply(&num, &xn)
	t0.Multiply(&t0, &xd) // xd³
	_, isSq := r.SqrtRatio(&num, &t0)
	// Steps 5–9: x2 = Z·u²·x1 and gx2 = Z·u²·gx1, so when gx1 is not square,
	// sqrt(gx2) = u·ell2C1·r (r² = sqrt(-1)·gx1 from SqrtRatio).
	yAlt.Multiply(u, &r)
	yAlt.Multiply(&yAlt, ell2C1)
	y.Select(&r, &yAlt, isSq)
	t0.Multiply(&xn, &tv1)
	xn.Select(&xn, &t0, isSq)
	// sgn0(y) = 1 for x1, sgn0(y) = 0 for x2.
	y.Absolute(&y)
	t0.Negate(&y)
	y.Select(&t0, &y, isSq)
	// RFC 7748 §4.1: x_e = c2·u/v, y_e = (u-1)/(u+1) with u = xn/xd, v = y:
	// x_e = (c2·xn)/(xd·y), y_e = (xn-xd)/(xn+xd).
	a.Multiply(ell2C2, &xn)
	b.Multiply(&xd, &y)
	c.Subtract(&xn, &xd)
	d.Add(&xn, &xd)
	X.Multiply(&a, &d)
	Y.Multiply(&c, &b)
	Z.Multiply(&b, &d)
	T.Multiply(&a, &c)
	// v = 0 only for the 2-torsion point (0, 0), whose image is (0, -1).
	vZero := y.Equal(feZero)
	X.Select(feZero, &X, vZero)
	Y.Select(feMinusOne, &Y, vZero)
	Z.Select(feOne, &Z, vZero)
	T.Select(feZero, &T, vZero)
	if _, err := p.SetExtendedCoordinates(&X, &Y, &Z, &T); err != nil {
		panic("psi: elligator2 produced a point off the curve")
	}
}

// hashToFieldP reduces a 48-byte big-endian string modulo p (RFC 9380 §5.2,
// L = 48).
func hashToFieldP(e *field.Element, b []byte) {
	var wide [64]byte
	for i := 0; i < 48; i++ {
		wide[i] = b[47-i]
	}
	if _, err := e.SetWideBytes(wide[:]); err != nil {
		panic("psi: unreachable")
	}
}

// ell2HashToCurve computes hash_to_curve for curve25519_XMD:SHA-512_ELL2_RO_
// (RFC 9380 §3) as an edwards25519 point.
func ell2HashToCurve(p *edwards25519.Point, x *xmdExpander, msg, dstPrime []byte) {
	var uniform [96]byte
	var u field.Element
	var q edwards25519.Point
	x.expand(uniform[:], msg, dstPrime)
	hashToFieldP(&u, uniform[:48])
	ell2Map(p, &u)
	hashToFieldP(&u, uniform[48:])
	ell2Map(&q, &u)
	p.Add(p, &q)
	p.MultByCofactor(p)
}

// x25519Hasher hashes blocks of identifiers to u-coordinates with one
// inversion per block. Not safe for concurrent use.
type x25519Hasher struct {
	x        *xmdExpander
	dstPrime []byte
	num, den [x25519Batch]field.Element
	prefix   [x25519Batch]field.Element
}

// hashBlock writes the 32-byte u-coordinates of H(ids[i]) to out[i].
func (h *x25519Hasher) hashBlock(ids [][]byte, out *[x25519Batch][32]byte) {
	n := len(ids)
	var p edwards25519.Point
	var acc, inv, t field.Element
	acc.One()
	for i, id := range ids {
		ell2HashToCurve(&p, h.x, id, h.dstPrime)
		_, Y, Z, _ := p.ExtendedCoordinates()
		h.num[i].Add(Z, Y)
		h.den[i].Subtract(Z, Y)
		// The identity (probability ~2^-252) has u = ∞, encoded as 0 like
		// X25519 does; keep the batch invertible.
		isInf := h.den[i].Equal(feZero)
		h.den[i].Select(feOne, &h.den[i], isInf)
		h.num[i].Select(feZero, &h.num[i], isInf)
		h.prefix[i].Set(&acc)
		acc.Multiply(&acc, &h.den[i])
	}
	// Montgomery's trick: one inversion for the whole block.
	inv.Invert(&acc)
	for i := n - 1; i >= 0; i-- {
		t.Multiply(&inv, &h.prefix[i]) // 1/den[i]
		inv.Multiply(&inv, &h.den[i])
		t.Multiply(&t, &h.num[i])
		copy(out[i][:], t.Bytes())
	}
}

type x25519Suite struct{}

func (x25519Suite) Name() string     { return x25519SuiteName }
func (x25519Suite) ElementSize() int { return x25519Size }

func (x25519Suite) HashMask(k *Key, domain []byte, ids [][]byte, dst []byte, workers int) {
	k.mustLive()
	if len(dst) != len(ids)*x25519Size {
		panic("psi: HashMask: len(dst) != len(ids)*ElementSize")
	}
	dstPrime := xmdDSTPrime(groupDST(x25519SuiteID, domain))
	w := grpWorkers(workers, len(ids), x25519Batch)
	grpParallel(len(ids), w, func(lo, hi int) {
		h := &x25519Hasher{x: newXMDExpander(), dstPrime: dstPrime}
		var us [x25519Batch][32]byte
		var out [32]byte
		for b := lo; b < hi; b += x25519Batch {
			e := min(b+x25519Batch, hi)
			h.hashBlock(ids[b:e], &us)
			for i := b; i < e; i++ {
				x25519ScalarMult(&out, &k.x25519, &us[i-b])
				copy(dst[i*x25519Size:], out[:])
			}
		}
	})
}

func (x25519Suite) Remask(k *Key, src, dst []byte, workers int) error {
	k.mustLive()
	return grpRemask(src, dst, x25519Size, workers, 16, func(src, dst []byte) int {
		var u, out [32]byte
		for i := 0; i < len(src)/x25519Size; i++ {
			in := src[i*x25519Size : (i+1)*x25519Size]
			if !feIsCanonical(in) {
				return i
			}
			copy(u[:], in)
			x25519ScalarMult(&out, &k.x25519, &u)
			if out == [32]byte{} {
				return i // low-order input (RFC 7748 §6.1)
			}
			copy(dst[i*x25519Size:], out[:])
		}
		return -1
	})
}
