package fedlearn

import (
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"
)

// The encoding itself, against its definition on a small ring: the
// polynomial evaluates to Δ·z at the roots ρ_l = ω^(4l+1), and the constant
// coefficient of a negacyclic product is (2/N)·Σ Re of the slot-wise
// product, times both scales.
func TestRealEncoderDefinition(t *testing.T) {
	// 16, 32 and 64: the FFT ends with a single stage or a fused pair.
	for _, n := range []int{16, 32, 64} {
		encoderMatchesDefinition(t, n)
	}
}

func encoderMatchesDefinition(t *testing.T, n int) {
	e := newRealEncoder(n)
	r := rand.New(rand.NewPCG(1, 2))
	z, x := make([]complex128, n/2), make([]complex128, n/2)
	for l := range z {
		z[l] = complex(r.Float64()*2-1, r.Float64()*2-1)
		x[l] = complex(r.Float64()*2-1, r.Float64()*2-1)
	}
	const dz, dx = 1 << 30, 1 << 20
	buf := make([]complex128, n/2)
	mz, mx := make([]int64, n), make([]int64, n)
	e.encode(z, dz, buf, mz)
	e.encode(x, dx, buf, mx)
	for l, want := range z {
		rho := cmplx.Rect(1, math.Pi*float64(4*l+1)/float64(n))
		var got complex128
		p := complex(1, 0)
		for _, c := range mz {
			got += complex(float64(c), 0) * p
			p *= rho
		}
		if cmplx.Abs(got/dz-want) > 1e-6 {
			t.Fatalf("slot %d: m(ρ)/Δ = %v, want %v", l, got/dz, want)
		}
	}
	// Constant coefficient of mz·mx mod X^n + 1: Σ_j mz_j·mx_(−j), with
	// X^(−j) = −X^(n−j).
	c0 := float64(mz[0]) * float64(mx[0])
	for j := 1; j < n; j++ {
		c0 -= float64(mz[j]) * float64(mx[n-j])
	}
	var want float64
	for l := range z {
		want += real(z[l] * x[l])
	}
	want *= 2.0 / float64(n) * dz * dx
	// Each coefficient is rounded to an integer: the product is off by at
	// most ½·(‖mz‖₁ + ‖mx‖₁) (plus float64 rounding of the sums).
	var tol float64
	for j := range mz {
		tol += 0.5 * (math.Abs(float64(mz[j])) + math.Abs(float64(mx[j])))
	}
	if math.Abs(c0-want) > tol {
		t.Fatalf("constant coefficient %g, want %g", c0, want)
	}
}

// packedRun seals complex vectors at the bank, combines them with the
// partner's weights, publishes and parses the result at the bank, and
// releases both parties' inner products; it returns the decrypted,
// unit-scaled values (bank's then partner's, with the flooding's bound in
// the same unit after each value) and the plaintext r.
func packedRun(t *testing.T, bank, partner *Session, z [][]complex128, w [][]float64, logWeight int,
	bankCols, partnerCols [][]complex128) (bankGot, partnerGot []float64, r []complex128) {
	t.Helper()
	L := len(z[0])
	vecs := make([][][]byte, len(z))
	for a, za := range z {
		chunks, size := bank.SealedLayout(L)
		vecs[a] = make([][]byte, chunks)
		for k := range vecs[a] {
			vecs[a][k] = make([]byte, size)
		}
		if err := bank.SealPackedInto(za, vecs[a]); err != nil {
			t.Fatal(err)
		}
	}
	v, err := partner.CombinePacked(vecs, logWeight, func(a, lo, hi int, dst []float64) { copy(dst, w[a][lo:hi]) })
	if err != nil {
		t.Fatal(err)
	}
	chunks, size := partner.PackedVectorLayout(L)
	pub := make([][]byte, chunks)
	for k := range pub {
		pub[k] = make([]byte, size)
	}
	if err := partner.PublishPackedInto(v, pub); err != nil {
		t.Fatal(err)
	}
	bv, err := bank.ParsePackedVector(pub)
	if err != nil {
		t.Fatal(err)
	}
	release := func(eval, other *Session, vec *PackedVector, cols [][]complex128, to Role) []float64 {
		pc, err := eval.NewPackedColumns(len(cols), L, func(j, lo, hi int, dst []complex128) { copy(dst, cols[j][lo:hi]) })
		if err != nil {
			t.Fatal(err)
		}
		res, err := eval.PackedInnerProducts(vec, pc)
		if err != nil {
			t.Fatal(err)
		}
		share, err := other.ReleaseShare(res, to)
		if err != nil {
			t.Fatal(err)
		}
		got, err := eval.DecryptReal(res, share)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, 0, 2*len(got))
		for j := range got {
			out = append(out, got[j]*pc.Unit(j), math.Exp2(realFloodBits)*pc.Unit(j))
		}
		return out
	}
	r = make([]complex128, L)
	for a := range z {
		for i := range r {
			r[i] += z[a][i] * complex(w[a][i], 0)
		}
	}
	return release(bank, partner, bv, bankCols, Bank), release(partner, bank, v, partnerCols, Partner), r
}

// The packed kernel end to end with real HE, against the plaintext model:
// Σ_i Re(x_i·r_i), r = Σ_a z_a ⊙ w_a, for real and complex columns, on
// both parties' sides, for lengths of one position, exactly one chunk,
// one past it and three chunks with a partial last one.
func TestPackedKernelMatchesPlaintext(t *testing.T) {
	bank, partner := newPair(t)
	m := bank.PackedRows()
	for i, L := range []int{1, m, m + 1, 2*m + 1234} {
		t.Run(fmt.Sprint("L=", L), func(t *testing.T) { packedMatches(t, bank, partner, L, uint64(i)) })
	}
}

func packedMatches(t *testing.T, bank, partner *Session, L int, seed uint64) {
	rng := rand.New(rand.NewPCG(3, seed))
	terms := 1 + int(seed)%4
	z, w := make([][]complex128, terms), make([][]float64, terms)
	for a := range z {
		z[a], w[a] = make([]complex128, L), make([]float64, L)
		for i := range z[a] {
			z[a][i] = complex(rng.Float64()*2-1, rng.Float64()*2-1)
			w[a][i] = rng.Float64()*2 - 1
			if a == 1 {
				w[a][i] = -0.75 // a constant weight: CombinePacked skips its transform on full chunks
			}
		}
	}
	col := func(f func(i int) complex128) []complex128 {
		c := make([]complex128, L)
		for i := range c {
			c[i] = f(i)
		}
		return c
	}
	bankCols := [][]complex128{
		col(func(int) complex128 { return 1 }),
		col(func(int) complex128 { return -1i }),
		col(func(int) complex128 { return complex(rng.NormFloat64()*3, 0) }),
		col(func(int) complex128 { return 0 }),
	}
	partnerCols := [][]complex128{
		col(func(i int) complex128 { return complex(float64(i%7)-3, 0) }),
		col(func(int) complex128 { return complex(rng.ExpFloat64(), 0) }),
	}
	bankGot, partnerGot, r := packedRun(t, bank, partner, z, w, 24, bankCols, partnerCols)
	// The error model: the flooding (uniform, |·| < 2^84 before scaling)
	// plus the rounding of the encodings, independent per coefficient
	// (±½, so ≈ √(N/12) at every slot): of the column, at its scale 2^E_j,
	// against r; of the weights, at 2^24, against x⊙z. The ciphertext noise
	// is 30 bits below the flooding. Bound: the flooding's range plus six
	// standard deviations of the rounding.
	var r2 float64
	for _, v := range r {
		r2 += real(v * cmplx.Conj(v))
	}
	slotErr := math.Sqrt(float64(bank.n) / 12)
	check := func(side string, cols [][]complex128, got []float64) {
		for j, c := range cols {
			var want, xz2 float64
			for i := range c {
				want += real(c[i] * r[i])
				for a := range z {
					xz2 += real(c[i]*z[a][i]*cmplx.Conj(c[i]*z[a][i])) * 2
				}
			}
			flood := got[2*j+1]
			colStep := flood / math.Exp2(realFloodBits) * math.Exp2(PackedSealBits+24) / float64(bank.n/2) // max|x|/2^E_j
			rounding := slotErr * (colStep*math.Sqrt(r2) + math.Sqrt(xz2)/(1<<24))
			if tol := 1.02*flood + 6*rounding; math.Abs(got[2*j]-want) > tol {
				t.Errorf("%s column %d: got %.9g, want %.9g (tolerance %.2g: flooding %.2g, rounding σ %.2g)", side, j, got[2*j], want, tol, flood, rounding)
			}
		}
	}
	check("bank", bankCols, bankGot)
	check("partner", partnerCols, partnerGot)
}

// Out-of-range input is refused with a clear error, never wrapped.
func TestPackedRefusesOutOfRange(t *testing.T) {
	bank, partner := newPair(t)
	chunks, size := bank.SealedLayout(3)
	dst := make([][]byte, chunks)
	for k := range dst {
		dst[k] = make([]byte, size)
	}
	if err := bank.SealPackedInto([]complex128{0, 1.5, 0}, dst); err != ErrOverflow {
		t.Fatalf("seal |z| > 1: %v", err)
	}
	if err := bank.SealPackedInto([]complex128{complex(math.NaN(), 0), 0, 0}, dst); err != ErrOverflow {
		t.Fatalf("seal NaN: %v", err)
	}
	if err := partner.SealPackedInto([]complex128{0, 0, 0}, dst); err != ErrRole {
		t.Fatalf("partner sealing: %v", err)
	}
	if err := bank.SealPackedInto([]complex128{0, 1, 0}, dst); err != nil {
		t.Fatal(err)
	}
	_, err := partner.CombinePacked([][][]byte{dst}, 24, func(a, lo, hi int, d []float64) {
		for i := range d {
			d[i] = 2
		}
	})
	if err != ErrOverflow {
		t.Fatalf("weight 2: %v", err)
	}
}

// The seal error is centred binomial with variance cbdK/2 (the noise
// analysis uses errSigma), and never larger than cbdK.
func TestSealErrorDistribution(t *testing.T) {
	bank, _ := newPair(t)
	w, err := bank.newPackedWorker()
	if err != nil {
		t.Fatal(err)
	}
	var sum, sq float64
	var n int
	for range 40 {
		clear(w.ibuf)
		w.addError()
		for _, e := range w.ibuf {
			if e < -cbdK || e > cbdK {
				t.Fatalf("error %d outside ±%d", e, cbdK)
			}
			sum += float64(e)
			sq += float64(e) * float64(e)
			n++
		}
	}
	mean, variance := sum/float64(n), sq/float64(n)-(sum/float64(n))*(sum/float64(n))
	// n ≈ 3.3e5 samples: the mean's deviation is ≈ 0.006, the variance's ≈ 0.03.
	if math.Abs(mean) > 0.05 || math.Abs(variance-cbdK/2.0) > 0.3 {
		t.Fatalf("mean %.4f, variance %.3f; want 0 and %.1f", mean, variance, cbdK/2.0)
	}
	if variance < errSigma*errSigma*0.95 {
		t.Fatalf("variance %.3f below errSigma² %.3f", variance, errSigma*errSigma)
	}
}

// Each kind of Result decrypts only through its own decoder: a real Result
// is not rounded to Z_t, an exact one is not read as a real.
func TestResultKindsDoNotMix(t *testing.T) {
	fuzzSetup(t)
	if _, err := fuzzPar.Decrypt(fuzzRealResult, fuzzRealShare); err == nil {
		t.Fatal("Decrypt accepted a real Result")
	}
	if _, err := fuzzBank.DecryptReal(fuzzResult, fuzzShare); err == nil {
		t.Fatal("DecryptReal accepted an exact Result")
	}
	got, err := fuzzPar.DecryptReal(fuzzRealResult, fuzzRealShare)
	if err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
}

// The encryptor's ternary mask is uniform on {−1, 0, 1} (lattigo's default
// Xs), the same value in every residue row.
func TestTernaryMaskUniform(t *testing.T) {
	bank, _ := newPair(t)
	z := bank.mustZeroEncryptor()
	signed := func(w, q uint64) int {
		switch w {
		case 0:
			return 0
		case 1:
			return 1
		case q - 1:
			return -1
		}
		t.Fatalf("residue %d is not ternary", w)
		return 0
	}
	var count [3]int
	for range 30 {
		u := z.u()
		for j := range bank.n {
			v := signed(u.Coeffs[0][j], bank.moduli[0])
			for i, q := range bank.moduli[1:] {
				if signed(u.Coeffs[i+1][j], q) != v {
					t.Fatalf("residue rows disagree at %d", j)
				}
			}
			count[v+1]++
		}
	}
	n := float64(count[0] + count[1] + count[2])
	for k, c := range count {
		// 245 760 draws: a third ± 0.3 % is over 3 standard deviations.
		if math.Abs(float64(c)/n-1.0/3) > 0.003 {
			t.Fatalf("value %d drawn %.4f of the time", k-1, float64(c)/n)
		}
	}
}
