package protocol

import (
	"context"
	"crypto/rand"
	"errors"
	"math"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/bands"
	"github.com/tandem-dev/tandem/ot"
)

type bandsRun struct {
	bank            *ScoreBandsBankResult
	partner         *ScorePartnerResult
	pb, pp          *pipe
	bankErr, prtErr error
	releases        []ScoreRelease
}

func runScoreBands(t testing.TB, th []uint32, k int, vals []uint16, approve func(context.Context) error) bandsRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pb, pp := newPipe()
	var r bandsRun
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.partner, r.prtErr = RunScorePartner(ctx, pp, ScorePartnerConfig{JobID: "job-b", ModelID: "mdl-1", Rand: rand.Reader, BandValues: vals,
			Approve: approve, OnRelease: func(_ context.Context, rel ScoreRelease) error { r.releases = append(r.releases, rel); return nil }}, nil)
		if r.prtErr != nil {
			time.AfterFunc(10*time.Second, cancel) // let the bank read the refusal first
		}
	}()
	r.bank, r.bankErr = RunScoreBandsBank(ctx, pb, ScoreBandsBankConfig{JobID: "job-b", ModelID: "mdl-1", Rand: rand.Reader,
		K: k, L: len(th) / k, Thresholds: sliceThresholds(th, k), Scored: 1}, nil)
	<-done
	r.pb, r.pp = pb, pp
	return r
}

// sliceThresholds serves th (k a position) batch by batch.
func sliceThresholds(th []uint32, k int) func(lo, hi int, dst []uint32) {
	return func(lo, hi int, dst []uint32) { copy(dst, th[lo*k:hi*k]) }
}

// TestScoreBandsMatchesPlaintext: over three batches, at every position
// the bank scores it learns exactly the band of u_B + u_P against the
// edges in the fixed point (and "no value" where the partner has none);
// at the others every bit is 1 whatever u_P. The partner sends nothing
// but its base OT messages, 128 bytes of round-1 corrections and its
// answers (round-2 tables, 4 bytes per two thresholds, and K bits) a
// position; the bank nothing but its base OT messages, its tables and
// its round-2 corrections.
func TestScoreBandsMatchesPlaintext(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(5, 6))
	const L = 2*bandsBatch + 123
	edges := []float64{-2.2, -1.4, -0.85, -0.4, 0, 0.4, 0.85, 1.4, 2.2} // logits of 10 bands
	K := len(edges) + 1
	uB, uP := make([]float64, L), make([]float64, L)
	mask := make([]bool, L)
	vals := make([]uint16, L)
	th := make([]uint32, L*K)
	for i := range L {
		mask[i] = rng.IntN(3) == 0
		uB[i], uP[i] = rng.NormFloat64(), rng.NormFloat64()*1.5
		switch i % 50 {
		case 1:
			uP[i] = math.NaN() // no partial predictor
		case 2:
			uP[i] = 40 // clipped to +32
		case 3: // on an edge exactly, in the fixed point
			uP[i] = edges[3] - uB[i]
		}
		vals[i], _ = BandValue(uP[i])
		if mask[i] {
			th[i*K] = 1
			for k, e := range edges {
				th[i*K+k+1] = BandThreshold(e - uB[i])
			}
		}
	}
	r := runScoreBands(t, th, K, vals, nil)
	if r.bankErr != nil || r.prtErr != nil {
		t.Fatal(r.bankErr, r.prtErr)
	}
	for i := range L {
		ge := r.bank.GE[i]
		if !mask[i] {
			if ge != 1<<K-1 {
				t.Fatalf("position %d (not scored): bits %b", i, ge)
			}
			continue
		}
		n, present, err := bands.Band(ge, K, true)
		if err != nil {
			t.Fatalf("position %d: %v", i, err)
		}
		if present != !math.IsNaN(uP[i]) {
			t.Fatalf("position %d: present %v, u_P %v", i, present, uP[i])
		}
		if !present {
			continue
		}
		// Plaintext: edges reached by the fixed-point partial predictor.
		want := 0
		p := math.Round(math.Max(-BandClip, math.Min(uP[i], BandClip-1.0/(1<<BandScaleBits)))*(1<<BandScaleBits)) / (1 << BandScaleBits)
		for _, e := range edges {
			if p >= math.Ceil((e-uB[i])*(1<<BandScaleBits))/(1<<BandScaleBits) {
				want++
			}
		}
		if n != want {
			t.Fatalf("position %d: u_B %v u_P %v: %d edges reached, want %d", i, uB[i], uP[i], n, want)
		}
		if s := uB[i] + uP[i]; i%50 != 2 && (s < edges[0]-0.01 && n != 0 || s > edges[len(edges)-1]+0.01 && n != len(edges)) {
			t.Fatalf("position %d: score %v reaches %d edges", i, s, n)
		}
	}
	// The wire, partner → bank.
	sizes := map[string]int{}
	for _, m := range r.pp.sent {
		sizes[m.Step] += len(m.Payload)
	}
	want := map[string]int{"score.hello": 2, "score.ot.a": ot.BaseAMsgBytes, "score.ot.e": ot.BaseEMsgBytes,
		"score.ot.b2": ot.BaseBMsgBytes, "score.cmp.u": 2*bands.CorrectionsBytes(bandsBatch) + bands.CorrectionsBytes(L-2*bandsBatch), "score.cmp.z": L * bands.AnswerBytes(K), "score.done": 2}
	for step, n := range sizes {
		if want[step] != n {
			t.Errorf("partner sent %d bytes under %s, want %d", n, step, want[step])
		}
	}
	if len(sizes) != len(want) {
		t.Errorf("partner's steps %v, want %v", sizes, want)
	}
	// The wire, bank → partner.
	sizes = map[string]int{}
	for _, m := range r.pb.sent {
		sizes[m.Step] += len(m.Payload)
	}
	tables := 2*bands.TablesBytes(K, bandsBatch) + bands.TablesBytes(K, L-2*bandsBatch)
	for step, n := range map[string]int{"score.ot.b": ot.BaseBMsgBytes, "score.ot.a2": ot.BaseAMsgBytes,
		"score.ot.e2": ot.BaseEMsgBytes, "score.cmp.t": tables} {
		if sizes[step] != n {
			t.Errorf("bank sent %d bytes under %s, want %d", sizes[step], step, n)
		}
		delete(sizes, step)
	}
	for step, n := range sizes {
		if step != "score.hello" && step != "score.done" {
			t.Errorf("bank sent %d bytes under %s", n, step)
		}
	}
	if len(r.releases) != 3 || r.releases[2].Positions != 123 || r.releases[0].Values != bandsBatch*K || r.releases[1].Statistic != "band_comparisons" {
		t.Errorf("releases %+v", r.releases)
	}
	if r.partner.Scored != 1 || r.partner.Length != L || r.partner.Batches != 3 {
		t.Errorf("partner result %+v", r.partner)
	}
}

func TestBandValueAndThreshold(t *testing.T) {
	for _, tc := range []struct {
		u       float64
		v       uint16
		clipped bool
	}{{math.NaN(), 0, false}, {0, 1 << 15, false}, {1, 1<<15 + 1024, false}, {-32, 1, true}, {-31.998, 2, false}, {100, 65535, true}} {
		if v, c := BandValue(tc.u); v != tc.v || c != tc.clipped {
			t.Errorf("BandValue(%v) = %d, %v; want %d, %v", tc.u, v, c, tc.v, tc.clipped)
		}
	}
	for _, tc := range []struct {
		d float64
		c uint32
	}{{0, 1 << 15}, {1e-9, 1<<15 + 1}, {-100, 1}, {100, bands.MaxThreshold}, {math.NaN(), bands.MaxThreshold}} {
		if c := BandThreshold(tc.d); c != tc.c {
			t.Errorf("BandThreshold(%v) = %d, want %d", tc.d, c, tc.c)
		}
	}
	// u_P reaches d exactly when its value reaches d's threshold.
	rng := mrand.New(mrand.NewPCG(9, 9))
	for range 10000 {
		u, d := rng.NormFloat64()*3, rng.NormFloat64()*3
		v, _ := BandValue(u)
		got := uint32(v) >= BandThreshold(d)
		if math.Abs(u-d) > 1.0/(1<<BandScaleBits) && got != (u >= d) {
			t.Fatalf("u %v, d %v: %v", u, d, got)
		}
	}
}

func TestScoreBandsRefused(t *testing.T) {
	vals := []uint16{1, 2, 3}
	r := runScoreBands(t, make([]uint32, 3*4), 4, vals, func(context.Context) error { return errors.New("no bands today") })
	if !errors.Is(r.bankErr, ErrScoreRefused) || r.prtErr == nil {
		t.Fatalf("bank %v, partner %v", r.bankErr, r.prtErr)
	}
	// A bank that asks for scores while the partner's job is bands-only.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pb, pp := newPipe()
	go RunScorePartner(ctx, pp, ScorePartnerConfig{JobID: "j", ModelID: "m", Rand: rand.Reader, BandValues: vals}, nil)
	_, err := RunScoreBank(ctx, pb, ScoreBankConfig{JobID: "j", ModelID: "m", Mask: make([]bool, 3)}, nil)
	if !errors.Is(err, ErrScoreRefused) {
		t.Fatalf("scores asked of a bands-only partner: %v", err)
	}
	if !slices.ContainsFunc(pp.sent, func(m Msg) bool { return m.Step == "train.refused" }) {
		t.Fatal("no refusal on the wire")
	}
	// A bank of an earlier release, whose hello names no comparison
	// protocol: refused at the hello, with the cause.
	pb, pp = newPipe()
	perr := make(chan error, 1)
	go func() {
		_, err := RunScorePartner(ctx, pp, ScorePartnerConfig{JobID: "j", ModelID: "m", Rand: rand.Reader, BandValues: vals}, nil)
		perr <- err
	}()
	if err := newScoreChannel(pb).sendJSON(ctx, "score.hello", scoreHello{L: 3, ModelID: "m", Compare: 4}); err != nil {
		t.Fatal(err)
	}
	if err := <-perr; !errors.Is(err, ErrScoreRefused) || !strings.Contains(err.Error(), "same Tandem release") {
		t.Fatalf("hello without a comparison protocol: %v", err)
	}
}

// corrupting passes a partner's messages on, cutting one byte off the
// answers of batch 1.
type corrupting struct{ Transport }

func (c corrupting) Send(ctx context.Context, m Msg) error {
	if m.Step == "score.cmp.z" && m.Seq == 1 {
		m.Payload = m.Payload[:len(m.Payload)-1]
	}
	return c.Transport.Send(ctx, m)
}

// TestScoreBandsBadAnswer: a malformed answer in the middle of the job,
// while the bank's sender still has tables queued, fails the bank's side
// promptly with the cause named, and its sender goroutine ends with the
// job's context.
func TestScoreBandsBadAnswer(t *testing.T) {
	const k, L = 3, 3*bandsBatch + 5
	vals := make([]uint16, L)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	pb, pp := newPipe()
	pb.quiet, pp.quiet = true, true
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunScorePartner(ctx, corrupting{pp}, ScorePartnerConfig{JobID: "j", ModelID: "m", Rand: rand.Reader, BandValues: vals}, nil)
	}()
	before := runtime.NumGoroutine()
	_, err := RunScoreBandsBank(ctx, pb, ScoreBandsBankConfig{JobID: "j", ModelID: "m", Rand: rand.Reader,
		K: k, L: L, Thresholds: sliceThresholds(make([]uint32, L*k), k), Scored: L}, nil)
	if !errors.Is(err, bands.ErrMessage) && !errors.Is(err, ErrUnexpected) || ctx.Err() != nil {
		t.Fatalf("bank after a short answer: %v (context: %v)", err, ctx.Err())
	}
	t.Logf("bank: %v", err)
	cancel()
	<-done
	for range 100 {
		if runtime.NumGoroutine() < before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d goroutines, %d while the bank ran: its sender did not end", runtime.NumGoroutine(), before)
}
