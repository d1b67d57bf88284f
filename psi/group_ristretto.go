package psi

import (
	"math/big"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// This file is the reference suite: ristretto255 (RFC 9496) over
// filippo.io/edwards25519, which ships the edwards25519 group and its field
// but not the ristretto255 encoding. Step comments follow RFC 9496 §4.3.

const (
	r255SuiteName = "ristretto255"
	// r255SuiteID is the RFC 9380 suite ID (RFC 9380 §8.10 / RFC 9496 §4.3.4).
	r255SuiteID = "ristretto255_XMD:SHA-512_R255MAP_RO_"
	r255Size    = 32
)

// RFC 9496 §4.1 constants.
var (
	r255D              = feFromDecimal("37095705934669439343138083508754565189542113879843219016388785533085940283555")
	r255SqrtM1         = feFromDecimal("19681161376707505956807079304988542015446066515923890162744021073123829784752")
	r255SqrtADMinusOne = feFromDecimal("25063068953384623474111414158702152701244531502492656460079210482610430750235")
	r255InvSqrtAMinusD = feFromDecimal("54469307008909316920995813868745141605393597292927456921205312896311721017578")
	r255OneMinusDSq    = feFromDecimal("1159843021668779879193775521855586647937357759715417654439879720876111806838")
	r255DMinusOneSq    = feFromDecimal("40440834346308536858101042469323190826248399146238708352240133220865137265952")
	feOne              = new(field.Element).One()
	feMinusOne         = new(field.Element).Negate(feOne)
	feZero             = new(field.Element).Zero()
)

// feFromDecimal parses a constant; it panics on malformed input (init only).
func feFromDecimal(s string) *field.Element {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic("psi: bad field constant")
	}
	var le [32]byte
	n.FillBytes(le[:])
	for i := 0; i < 16; i++ {
		le[i], le[31-i] = le[31-i], le[i]
	}
	e, err := new(field.Element).SetBytes(le[:])
	if err != nil {
		panic("psi: bad field constant")
	}
	return e
}

// feIsCanonical reports whether b is the canonical little-endian encoding of
// a field element: bit 255 clear and value < p = 2^255 - 19. Variable time
// (inputs are public peer data).
func feIsCanonical(b []byte) bool {
	if len(b) != 32 || b[31]&0x80 != 0 {
		return false
	}
	if b[31] != 0x7f {
		return true
	}
	for i := 30; i >= 1; i-- {
		if b[i] != 0xff {
			return true
		}
	}
	return b[0] < 0xed
}

// r255Decode implements RFC 9496 §4.3.1. It returns false for every invalid
// encoding (non-canonical, negative, non-square, negative t, or y = 0).
func r255Decode(p *edwards25519.Point, b []byte) bool {
	// Step 1: s must be canonical and non-negative.
	if !feIsCanonical(b) {
		return false
	}
	var s field.Element
	if _, err := s.SetBytes(b); err != nil {
		return false
	}
	if s.IsNegative() == 1 {
		return false
	}
	// Step 2.
	var ss, u1, u2, u2Sqr, v, t0, invSqrt, denX, denY, x, y, t field.Element
	ss.Square(&s)
	u1.Subtract(feOne, &ss)
	u2.Add(feOne, &ss)
	u2Sqr.Square(&u2)
	t0.Square(&u1)
	v.Multiply(r255D, &t0)
	v.Negate(&v)
	v.Subtract(&v, &u2Sqr)
	t0.Multiply(&v, &u2Sqr)
	_, wasSquare := invSqrt.SqrtRatio(feOne, &t0)
	denX.Multiply(&invSqrt, &u2)
	denY.Multiply(&invSqrt, &denX)
	denY.Multiply(&denY, &v)
	x.Add(&s, &s)
	x.Multiply(&x, &denX)
	x.Absolute(&x)
	y.Multiply(&u1, &denY)
	t.Multiply(&x, &y)
	// Step 3.
	if wasSquare == 0 || t.IsNegative() == 1 || y.Equal(feZero) == 1 {
		return false
	}
	if _, err := p.SetExtendedCoordinates(&x, &y, feOne, &t); err != nil {
		return false
	}
	return true
}

// r255Encode implements RFC 9496 §4.3.2, writing 32 bytes to out.
func r255Encode(out *[32]byte, p *edwards25519.Point) {
	X, Y, Z, T := p.ExtendedCoordinates()
	var u1, u2, t0, invSqrt, den1, den2, zInv, ix0, iy0, ench, x, y, denInv, s field.Element
	t0.Add(Z, Y)
	u1.Subtract(Z, Y)
	u1.Multiply(&u1, &t0)
	u2.Multiply(X, Y)
	t0.Square(&u2)
	t0.Multiply(&t0, &u1)
	invSqrt.SqrtRatio(feOne, &t0)
	den1.Multiply(&invSqrt, &u1)
	den2.Multiply(&invSqrt, &u2)
	zInv.Multiply(&den1, &den2)
	zInv.Multiply(&zInv, T)
	ix0.Multiply(X, r255SqrtM1)
	iy0.Multiply(Y, r255SqrtM1)
	ench.Multiply(&den1, r255InvSqrtAMinusD)
	t0.Multiply(T, &zInv)
	rotate := t0.IsNegative()
	x.Select(&iy0, X, rotate)
	y.Select(&ix0, Y, rotate)
	denInv.Select(&ench, &den2, rotate)
	negY := t0.Multiply(&x, &zInv).IsNegative()
	t0.Negate(&y)
	y.Select(&t0, &y, negY)
	s.Subtract(Z, &y)
	s.Multiply(&denInv, &s)
	s.Absolute(&s)
	copy(out[:], s.Bytes())
}

// r255Map is the RFC 9496 §4.3.4 MAP function: a field element t to a point.
func r255Map(p *edwards25519.Point, t *field.Element) {
	var r, u, v, t0, s, sPrime, c, n, w0, w1, w2, w3, X, Y, Z, T field.Element
	r.Square(t)
	r.Multiply(&r, r255SqrtM1)
	u.Add(&r, feOne)
	u.Multiply(&u, r255OneMinusDSq)
	t0.Multiply(&r, r255D)
	v.Subtract(feMinusOne, &t0)
	t0.Add(&r, r255D)
	v.Multiply(&v, &t0)
	_, wasSquare := s.SqrtRatio(&u, &v)
	sPrime.Multiply(&s, t)
	sPrime.Absolute(&sPrime)
	sPrime.Negate(&sPrime)
	s.Select(&s, &sPrime, wasSquare)
	c.Select(feMinusOne, &r, wasSquare)
	t0.Subtract(&r, feOne)
	n.Multiply(&c, &t0)
	n.Multiply(&n, r255DMinusOneSq)
	n.Subtract(&n, &v)
	w0.Add(&s, &s)
	w0.Multiply(&w0, &v)
	w1.Multiply(&n, r255SqrtADMinusOne)
	t0.Square(&s)
	w2.Subtract(feOne, &t0)
	w3.Add(feOne, &t0)
	X.Multiply(&w0, &w3)
	Y.Multiply(&w2, &w1)
	Z.Multiply(&w1, &w3)
	T.Multiply(&w0, &w2)
	if _, err := p.SetExtendedCoordinates(&X, &Y, &Z, &T); err != nil {
		panic("psi: ristretto255 MAP produced an invalid point")
	}
}

// r255FromUniform is RFC 9496 §4.3.4 element derivation from 64 bytes.
func r255FromUniform(p *edwards25519.Point, b *[64]byte) {
	var t field.Element
	var q edwards25519.Point
	// SetBytes ignores bit 255 and reduces modulo p, as §4.3.4 requires.
	if _, err := t.SetBytes(b[:32]); err != nil {
		panic("psi: unreachable")
	}
	r255Map(p, &t)
	if _, err := t.SetBytes(b[32:]); err != nil {
		panic("psi: unreachable")
	}
	r255Map(&q, &t)
	p.Add(p, &q)
}

// r255HashToGroup is hash_to_group(msg) for suite
// ristretto255_XMD:SHA-512_R255MAP_RO_ with the given DST_prime.
func r255HashToGroup(p *edwards25519.Point, x *xmdExpander, msg, dstPrime []byte) {
	var uniform [64]byte
	x.expand(uniform[:], msg, dstPrime)
	r255FromUniform(p, &uniform)
}

type ristrettoSuite struct{}

func (ristrettoSuite) Name() string     { return r255SuiteName }
func (ristrettoSuite) ElementSize() int { return r255Size }

func (ristrettoSuite) HashMask(k *Key, domain []byte, ids [][]byte, dst []byte, workers int) {
	k.mustLive()
	if len(dst) != len(ids)*r255Size {
		panic("psi: HashMask: len(dst) != len(ids)*ElementSize")
	}
	dstPrime := xmdDSTPrime(groupDST(r255SuiteID, domain))
	w := grpWorkers(workers, len(ids), 16)
	grpParallel(len(ids), w, func(lo, hi int) {
		x := newXMDExpander()
		var p edwards25519.Point
		var out [32]byte
		for i := lo; i < hi; i++ {
			r255HashToGroup(&p, x, ids[i], dstPrime)
			p.ScalarMult(&k.r255, &p)
			r255Encode(&out, &p)
			copy(dst[i*r255Size:], out[:])
		}
	})
}

func (ristrettoSuite) Remask(k *Key, src, dst []byte, workers int) error {
	k.mustLive()
	return grpRemask(src, dst, r255Size, workers, 16, func(src, dst []byte) int {
		var p edwards25519.Point
		var out [32]byte
		for i := 0; i < len(src)/r255Size; i++ {
			if !r255Decode(&p, src[i*r255Size:(i+1)*r255Size]) {
				return i
			}
			p.ScalarMult(&k.r255, &p)
			r255Encode(&out, &p)
			copy(dst[i*r255Size:], out[:])
		}
		return -1
	})
}
