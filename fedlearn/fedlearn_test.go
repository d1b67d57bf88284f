package fedlearn

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"math/big"
	mrand "math/rand/v2"
	"testing"
)

// newPair runs the key-generation round between a bank and a partner.
func newPair(tb testing.TB) (bank, partner *Session) {
	tb.Helper()
	var seed [32]byte
	rand.Read(seed[:])
	var err error
	if bank, err = NewSession(Bank, Params{}, seed, nil); err != nil {
		tb.Fatal(err)
	}
	if partner, err = NewSession(Partner, Params{}, seed, nil); err != nil {
		tb.Fatal(err)
	}
	bs, _ := bank.KeyGenShare()
	ps, _ := partner.KeyGenShare()
	if err := bank.SetPeerKeyGenShare(ps); err != nil {
		tb.Fatal(err)
	}
	if err := partner.SetPeerKeyGenShare(bs); err != nil {
		tb.Fatal(err)
	}
	return bank, partner
}

// releaseToBank runs steps C1, R1, R2 and returns the decrypted totals.
func releaseToBank(tb testing.TB, bank, partner *Session, vectors [][][]byte, cols [][]int64) []int64 {
	tb.Helper()
	res, err := partner.InnerProducts(vectors, cols)
	if err != nil {
		tb.Fatal(err)
	}
	share, err := partner.ReleaseShare(res, Bank)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := bank.Decrypt(res, share)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestInnerProductsExact(t *testing.T) {
	bank, partner := newPair(t)
	r := mrand.New(mrand.NewPCG(1, 2))
	L := 2*bank.N() + 101
	c := make([]int64, L)
	for i := range c {
		c[i] = r.Int64N(7) - 3
	}
	cols := make([][]int64, 3)
	for j := range cols {
		cols[j] = make([]int64, L)
		for i := range cols[j] {
			cols[j][i] = r.Int64N(1<<16) - 1<<15
		}
	}
	cts, err := bank.EncryptVector(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(cts) != 3 {
		t.Fatalf("got %d chunks, want 3", len(cts))
	}
	got := releaseToBank(t, bank, partner, [][][]byte{cts}, cols)
	for j, col := range cols {
		var want int64
		for i := range col {
			want += col[i] * c[i]
		}
		if got[j] != want {
			t.Errorf("column %d: got %d, want %d", j, got[j], want)
		}
	}
}

// plainNumeric is the plaintext reference model over matched rows.
type plainNumeric struct {
	count, missing int64
	sumQ, sqQ      *big.Int // sums of the quantised values x̂
	mean, variance float64  // float64 over the raw values
}

func referenceNumeric(match []bool, group []int, g int, col NumericColumn, scale int) plainNumeric {
	ref := plainNumeric{sumQ: new(big.Int), sqQ: new(big.Int)}
	var xs []float64
	for i, m := range match {
		if !m || group[i] != g {
			continue
		}
		if col.Present != nil && !col.Present[i] {
			ref.missing++
			continue
		}
		ref.count++
		xs = append(xs, col.Values[i])
		q := big.NewInt(int64(math.Round(math.Ldexp(col.Values[i], scale))))
		ref.sumQ.Add(ref.sumQ, q)
		ref.sqQ.Add(ref.sqQ, new(big.Int).Mul(q, q))
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	ref.mean = s / float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - ref.mean) * (x - ref.mean)
	}
	ref.variance = ss / float64(len(xs)-1)
	return ref
}

func relErr(got, want float64) float64 { return math.Abs(got-want) / math.Max(math.Abs(want), 1e-300) }

func TestNumericStatsMatchPlaintext(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { testNumericStats(t, seed) })
	}
}

func testNumericStats(t *testing.T, seed uint64) {
	bank, partner := newPair(t)
	r := mrand.New(mrand.NewPCG(seed, 4))
	L := 3*bank.N() + 77
	const groups = 2
	match := make([]bool, L)
	group := make([]int, L)
	for i := range match {
		match[i] = r.IntN(3) > 0
		group[i] = r.IntN(groups)
	}
	cols := []NumericColumn{
		{Values: make([]float64, L)},                           // amounts, no missing
		{Values: make([]float64, L), Present: make([]bool, L)}, // with missing, negative values
		{Values: make([]float64, L), Present: make([]bool, L)}, // large mean, small spread
	}
	for i := range L {
		cols[0].Values[i] = math.Round(r.ExpFloat64()*5000*100) / 100
		cols[1].Values[i] = r.NormFloat64() * 3
		cols[1].Present[i] = r.IntN(10) > 0
		cols[2].Values[i] = 1e4 + r.NormFloat64()*50
		cols[2].Present[i] = r.IntN(20) > 0
	}
	plan, mult, err := PlanNumeric(Params{}, cols)
	if err != nil {
		t.Fatal(err)
	}
	planMsg, _ := plan.MarshalBinary()
	plan2, err := ParseNumericPlan(planMsg, 1<<24)
	if err != nil {
		t.Fatal(err)
	}
	gv, _ := GroupVectors(match, group, groups)
	var vectors [][][]byte
	for _, v := range gv {
		cts, err := bank.EncryptVector(v)
		if err != nil {
			t.Fatal(err)
		}
		vectors = append(vectors, cts)
	}
	flat := releaseToBank(t, bank, partner, vectors, mult)
	m := len(mult)
	totals := [][]int64{flat[:m], flat[m:]}
	stats, err := plan2.Decode(totals)
	if err != nil {
		t.Fatal(err)
	}
	var worst float64
	defer func() { t.Logf("worst relative error of mean/variance: %.2g", worst) }()
	for f := range cols {
		for g := range groups {
			got, want := stats[f][g], referenceNumeric(match, group, g, cols[f], plan.Features[f].ScaleBits)
			if got.Count != want.count || got.Missing != want.missing {
				t.Errorf("f%d g%d: count/missing got %d/%d, want %d/%d", f, g, got.Count, got.Missing, want.count, want.missing)
			}
			if got.Sum.Cmp(scaleRat(want.sumQ, plan.Features[f].ScaleBits)) != 0 ||
				got.SumSquares.Cmp(scaleRat(want.sqQ, 2*plan.Features[f].ScaleBits)) != 0 {
				t.Errorf("f%d g%d: sums not exact", f, g)
			}
			worst = max(worst, relErr(got.Mean, want.mean), relErr(got.Variance, want.variance))
			if e := relErr(got.Mean, want.mean); e > 1e-6 {
				t.Errorf("f%d g%d: mean got %v, want %v (rel %g)", f, g, got.Mean, want.mean, e)
			}
			if e := relErr(got.Variance, want.variance); e > 1e-6 {
				t.Errorf("f%d g%d: variance got %v, want %v (rel %g)", f, g, got.Variance, want.variance, e)
			}
		}
	}
	Suppress(1<<40, stats)
	if !stats[0][0].Suppressed || stats[0][0].Sum != nil {
		t.Errorf("Suppress did not withhold a small cell")
	}
}

func TestHistogramWOEMatchPlaintext(t *testing.T) {
	bank, partner := newPair(t)
	r := mrand.New(mrand.NewPCG(5, 6))
	L := 2*bank.N() + 5
	match := make([]bool, L)
	label := make([]int, L)
	for i := range match {
		match[i] = r.IntN(2) == 0
		label[i] = r.IntN(4) / 3 // 25% bad
	}
	cols := []BinnedColumn{{Bin: make([]int, L), NumBins: 10}, {Bin: make([]int, L), NumBins: 3}}
	for i := range L {
		cols[0].Bin[i] = r.IntN(11) - 1 // -1: missing
		cols[1].Bin[i] = min(r.IntN(3), label[i]*2)
	}
	cols[0].Bin[0] = 9 // make sure an almost empty bin exists
	for i := 1; i < L; i++ {
		if cols[0].Bin[i] == 9 {
			cols[0].Bin[i] = 8
		}
	}
	plan, mult, err := PlanBinned(Params{}, cols)
	if err != nil {
		t.Fatal(err)
	}
	v, pk, err := PackGroups(Params{}, match, label, 2)
	if err != nil {
		t.Fatal(err)
	}
	cts, err := bank.EncryptVector(v)
	if err != nil {
		t.Fatal(err)
	}
	flat := releaseToBank(t, bank, partner, [][][]byte{cts}, mult)
	totals, err := pk.Unpack(flat)
	if err != nil {
		t.Fatal(err)
	}
	hists, err := plan.Decode(totals)
	if err != nil {
		t.Fatal(err)
	}
	for f, c := range cols {
		want := make([][]int64, c.NumBins)
		for b := range want {
			want[b] = make([]int64, 2)
		}
		wantMissing := make([]int64, 2)
		for i, m := range match {
			if !m {
				continue
			}
			if c.Bin[i] < 0 {
				wantMissing[label[i]]++
			} else {
				want[c.Bin[i]][label[i]]++
			}
		}
		good, bad := make([]int64, c.NumBins), make([]int64, c.NumBins)
		for b := range want {
			for g := range 2 {
				if hists[f].Counts[b][g] != want[b][g] {
					t.Errorf("f%d bin %d group %d: got %d, want %d", f, b, g, hists[f].Counts[b][g], want[b][g])
				}
			}
			good[b], bad[b] = want[b][0], want[b][1]
		}
		for g := range 2 {
			if hists[f].Missing[g] != wantMissing[g] {
				t.Errorf("f%d missing g%d: got %d, want %d", f, g, hists[f].Missing[g], wantMissing[g])
			}
		}
		gotG, gotB := make([]int64, c.NumBins), make([]int64, c.NumBins)
		for b := range gotG {
			gotG[b], gotB[b] = hists[f].Counts[b][0], hists[f].Counts[b][1]
		}
		woe, iv := WOEIV(gotG, gotB)
		wantWOE, wantIV := WOEIV(good, bad)
		if math.Abs(iv-wantIV) > 1e-12 || math.IsNaN(iv) {
			t.Errorf("f%d IV got %v, want %v", f, iv, wantIV)
		}
		for b := range woe {
			if math.Abs(woe[b]-wantWOE[b]) > 1e-12 {
				t.Errorf("f%d WOE[%d] got %v, want %v", f, b, woe[b], wantWOE[b])
			}
		}
	}
	h := hists[0]
	h.Suppress(2)
	if !h.Suppressed[9][0] && !h.Suppressed[9][1] {
		t.Errorf("bin 9 (≤1 row) not suppressed")
	}
}

func TestWOEIVKnownValues(t *testing.T) {
	// Hand-computed: good=(10,30), bad=(30,10): WOE = ln(1/3), ln(3);
	// IV = (0.25-0.75)·ln(1/3) + (0.75-0.25)·ln(3) = ln 3.
	woe, iv := WOEIV([]int64{10, 30}, []int64{30, 10})
	if math.Abs(woe[0]+math.Log(3)) > 1e-12 || math.Abs(woe[1]-math.Log(3)) > 1e-12 || math.Abs(iv-math.Log(3)) > 1e-12 {
		t.Errorf("got woe %v iv %v", woe, iv)
	}
	// Empty cell smoothing: bin 1 has no bad → (10.5, 0.5).
	woe, _ = WOEIV([]int64{10, 10}, []int64{10, 0})
	want := math.Log((10.5 / 20.5) / (0.5 / 10.5))
	if math.Abs(woe[1]-want) > 1e-12 {
		t.Errorf("smoothed WOE got %v, want %v", woe[1], want)
	}
}

func TestReleaseGuard(t *testing.T) {
	bank, partner := newPair(t)
	cts, err := bank.EncryptVector([]int64{1, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	res, err := partner.InnerProducts([][][]byte{cts}, [][]int64{{5, 6, 7}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := partner.ReleaseShare(res, Partner); !errors.Is(err, ErrRole) {
		t.Errorf("release to self: got %v, want ErrRole", err)
	}
	share, err := partner.ReleaseShare(res, Bank)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := partner.ReleaseShare(res, Bank); !errors.Is(err, ErrShareReused) {
		t.Errorf("second share: got %v, want ErrShareReused", err)
	}
	// Same public part a with a different b must be refused too.
	noisy, err := partner.AddNoise(res, []int64{1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := partner.ReleaseShare(noisy, Bank); !errors.Is(err, ErrShareReused) {
		t.Errorf("share for tampered b: got %v, want ErrShareReused", err)
	}
	if _, err := bank.Decrypt(noisy, share); !errors.Is(err, ErrState) {
		t.Errorf("share for another result: got %v, want ErrState", err)
	}
	if _, err := partner.Decrypt(res, share); !errors.Is(err, ErrRole) {
		t.Errorf("decrypt by non-target: got %v, want ErrRole", err)
	}
	got, err := bank.Decrypt(res, share)
	if err != nil || got[0] != 12 {
		t.Errorf("got %v %v, want [12]", got, err)
	}
	// Release towards the partner: the bank's share is guarded the same way.
	if _, err := bank.ReleaseShare(res, Partner); err != nil {
		t.Fatal(err)
	}
	if _, err := bank.ReleaseShare(res, Partner); !errors.Is(err, ErrShareReused) {
		t.Errorf("bank second share: got %v, want ErrShareReused", err)
	}
}

func TestReleaseToPartner(t *testing.T) {
	bank, partner := newPair(t)
	cts, _ := bank.EncryptVector([]int64{3, -2, 1, 0})
	res, err := partner.InnerProducts([][][]byte{cts}, [][]int64{{1, 1, 1, 1}, {-4, 5, 0, 9}})
	if err != nil {
		t.Fatal(err)
	}
	share, err := bank.ReleaseShare(res, Partner)
	if err != nil {
		t.Fatal(err)
	}
	got, err := partner.Decrypt(res, share)
	if err != nil || got[0] != 2 || got[1] != -22 {
		t.Errorf("got %v %v, want [2 -22]", got, err)
	}
}

func TestBoundsChecked(t *testing.T) {
	bank, partner := newPair(t)
	if _, err := bank.EncryptVector([]int64{1 << 41}); !errors.Is(err, ErrOverflow) {
		t.Errorf("entry ≥ t/2: got %v, want ErrOverflow", err)
	}
	cts, _ := bank.EncryptVector([]int64{1 << 20, 1})
	if _, err := partner.InnerProducts([][][]byte{cts}, [][]int64{{1 << 21, 0}}); !errors.Is(err, ErrOverflow) {
		t.Errorf("product ≥ t/2: got %v, want ErrOverflow", err)
	}
	cts, _ = bank.EncryptVector([]int64{1, 1})
	if _, err := partner.InnerProducts([][][]byte{cts}, [][]int64{{1 << 38, 1 << 38}}); !errors.Is(err, ErrNoiseBudget) {
		t.Errorf("huge column: got %v, want ErrNoiseBudget", err)
	}
	if _, err := partner.InnerProducts([][][]byte{cts}, [][]int64{{1, 2, 3}}); err == nil {
		t.Errorf("length mismatch accepted")
	}
	// In-place encryption wants exactly the layout's buffers; written
	// there, the chunks are what EncryptVector returns, byte for byte in
	// everything but the randomness (same size, same header).
	v := make([]int64, bank.N()+5)
	chunks, size := bank.VectorLayout(len(v))
	for _, dst := range [][][]byte{make([][]byte, chunks-1), {make([]byte, size), make([]byte, size-1)}} {
		if err := bank.EncryptVectorInto(v, dst); err == nil {
			t.Errorf("%d buffers of sizes %d, %d accepted", len(dst), len(dst[0]), len(dst[len(dst)-1]))
		}
	}
	dst := [][]byte{make([]byte, size), make([]byte, size)}
	ref, _ := bank.EncryptVector(v)
	if err := bank.EncryptVectorInto(v, dst); err != nil || chunks != 2 || len(ref) != 2 ||
		!bytes.Equal(dst[1][:headerLen+24], ref[1][:headerLen+24]) {
		t.Errorf("EncryptVectorInto: %v; chunk header %x, EncryptVector's %x", err, dst[1][:headerLen+24], ref[1][:headerLen+24])
	}
}

func TestDifferentialPrivacy(t *testing.T) {
	bank, partner := newPair(t)
	b := NewBudget(1.0)
	if err := b.Spend(0.6); err != nil {
		t.Fatal(err)
	}
	if err := b.Spend(0.6); !errors.Is(err, ErrBudgetExhausted) {
		t.Errorf("overspend: got %v, want ErrBudgetExhausted", err)
	}
	noise, err := DiscreteLaplace(rand.Reader, 0.4, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	cts, _ := bank.EncryptVector([]int64{1, 1, 0, 1})
	res, _ := partner.InnerProducts([][][]byte{cts}, [][]int64{{1, 1, 1, 1}, {1, 0, 0, 1}})
	res, err = partner.AddNoise(res, noise)
	if err != nil {
		t.Fatal(err)
	}
	share, _ := partner.ReleaseShare(res, Bank)
	got, _ := bank.Decrypt(res, share)
	if got[0] != 3+noise[0] || got[1] != 2+noise[1] {
		t.Errorf("got %v, want [3 2] + %v", got, noise)
	}
	// Empirical scale: E|X| for two-sided geometric with p=e^-ε.
	many, _ := DiscreteLaplace(rand.Reader, 1, 1, 20000)
	var mean float64
	for _, x := range many {
		mean += math.Abs(float64(x))
	}
	mean /= float64(len(many))
	p := math.Exp(-1.0)
	want := 2 * p / (1 - p*p)
	if math.Abs(mean-want) > 0.05 {
		t.Errorf("E|X| got %v, want %v", mean, want)
	}
}

func TestKeyGenDeterministicCRP(t *testing.T) {
	// Different seeds must give incompatible CRPs: decryption fails to match.
	var s1, s2 [32]byte
	s2[0] = 1
	a, _ := NewSession(Bank, Params{}, s1, nil)
	b, _ := NewSession(Partner, Params{}, s2, nil)
	as, _ := a.KeyGenShare()
	bs, _ := b.KeyGenShare()
	a.SetPeerKeyGenShare(bs)
	b.SetPeerKeyGenShare(as)
	if err := a.SetPeerKeyGenShare(bs); !errors.Is(err, ErrState) {
		t.Errorf("second SetPeerKeyGenShare: got %v, want ErrState", err)
	}
	cts, _ := a.EncryptVector([]int64{1, 2, 3})
	res, _ := b.InnerProducts([][][]byte{cts}, [][]int64{{1, 1, 1}})
	share, _ := b.ReleaseShare(res, Bank)
	got, _ := a.Decrypt(res, share)
	if got[0] == 6 {
		t.Errorf("mismatched seeds decrypted correctly")
	}
	if bytes.Equal(as, bs) {
		t.Errorf("identical shares")
	}
}

func TestEncodedColumnsMatchStreaming(t *testing.T) {
	bank, partner := newPair(t)
	r := mrand.New(mrand.NewPCG(11, 12))
	L := bank.N() + 3
	c := make([]int64, L)
	cols := [][]int64{make([]int64, L), make([]int64, L)}
	for i := range L {
		c[i] = r.Int64N(2)
		cols[0][i] = r.Int64N(1000) - 500
		if i >= bank.N() {
			cols[1][i] = 7 // first chunk all zero: skipped
		}
	}
	cts, _ := bank.EncryptVector(c)
	ec, err := partner.EncodeColumns(cols)
	if err != nil {
		t.Fatal(err)
	}
	res, err := partner.InnerProductsEncoded([][][]byte{cts}, ec)
	if err != nil {
		t.Fatal(err)
	}
	share, _ := partner.ReleaseShare(res, Bank)
	got, err := bank.Decrypt(res, share)
	if err != nil {
		t.Fatal(err)
	}
	for j, col := range cols {
		var want int64
		for i := range col {
			want += col[i] * c[i]
		}
		if got[j] != want {
			t.Errorf("column %d: got %d, want %d", j, got[j], want)
		}
	}
}

// TestMulShoupSigned: Shoup's multiplication agrees with the division-based
// reference for the session's primes and constants, over the whole signed
// range it is used on and at its edges.
func TestMulShoupSigned(t *testing.T) {
	bank, _ := newPair(t)
	r := mrand.New(mrand.NewPCG(1, 2))
	for i, q := range bank.moduli {
		for _, d := range []uint64{bank.delta[i], 1, q - 1, r.Uint64N(q)} {
			dS := shoup(d, q)
			xs := []int64{0, 1, -1, int64(q - 1), -int64(q - 1), 1 << 41, -(1 << 41)}
			for range 20000 {
				xs = append(xs, r.Int64N(int64(q))-r.Int64N(int64(q)))
			}
			for _, x := range xs {
				if got, want := mulShoupSigned(x, d, dS, q), mulModSigned(x, d, q); got != want {
					t.Fatalf("q=%d d=%d x=%d: Shoup %d, reference %d", q, d, x, got, want)
				}
			}
		}
	}
}
