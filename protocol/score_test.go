package protocol

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func runScore(t *testing.T, mask []bool, partial []float64, approve func(context.Context) error, bankModel string) (*ScoreBankResult, *ScorePartnerResult, *pipe, error, error) {
	return runScoreEdited(t, mask, partial, approve, bankModel, nil)
}

// runScoreEdited is runScore with the partner's blobs rewritten by edit.
func runScoreEdited(t *testing.T, mask []bool, partial []float64, approve func(context.Context) error, bankModel string,
	edit func(string, []byte) []byte) (*ScoreBankResult, *ScorePartnerResult, *pipe, error, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pb, pp := newPipe()
	pp.edit = edit
	var releases int
	type pres struct {
		r   *ScorePartnerResult
		err error
	}
	done := make(chan pres, 1)
	go func() {
		r, err := RunScorePartner(ctx, pp, ScorePartnerConfig{JobID: "job-s", ModelID: "mdl-1", Partial: partial, Approve: approve,
			OnRelease: func(context.Context, ScoreRelease) error { releases++; return nil }}, nil)
		if err != nil {
			// The partner's refusal is on its way to the bank: give the
			// bank time to read it before unblocking it (cancelling at
			// once raced with that read, and the bank then reported
			// "context canceled" instead of the refusal).
			time.AfterFunc(10*time.Second, cancel)
		}
		done <- pres{r, err}
	}()
	br, berr := RunScoreBank(ctx, pb, ScoreBankConfig{JobID: "job-s", ModelID: bankModel, Mask: mask}, nil)
	if berr != nil && pp.edit != nil {
		cancel() // the partner that deviated waits for the bank's next message
	}
	pr := <-done
	if pr.err == nil && releases != pr.r.Batches {
		t.Fatalf("%d audit hooks for %d batches", releases, pr.r.Batches)
	}
	return br, pr.r, pp, berr, pr.err
}

// The bank gets the partner's partial predictor exactly (to the fixed
// point) at its masked positions and 0 elsewhere; the partner learns only
// how many positions were asked for; clipping is counted.
func TestScoreMatchesPlaintext(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	L := 2*scoreBatch*8192 + 40000 // three batches of chunks of 8192 positions, the last chunk partial
	mask := make([]bool, L)
	partial := make([]float64, L)
	for i := range L {
		mask[i] = rng.IntN(4) == 0
		partial[i] = rng.NormFloat64() * 3
	}
	partial[7], mask[7] = 1000, true // clipped to ScoreClip
	// No value (a missing: drop model's row with a missing feature): NaN
	// at the bank where it asked, nothing where it did not.
	partial[9], mask[9] = math.NaN(), true
	partial[11], mask[11] = math.NaN(), false
	want := -1 // position 9
	for _, m := range mask {
		if m {
			want++
		}
	}
	br, pr, pp, berr, perr := runScore(t, mask, partial, nil, "mdl-1")
	if berr != nil || perr != nil {
		t.Fatal(berr, perr)
	}
	if br.Scored != want || br.Missing != 1 || pr.Scored != want+1 || pr.Clipped != 1 || pr.Length != L {
		t.Fatalf("scored %d (%d without a value)/%d (want %d), clipped %d", br.Scored, br.Missing, pr.Scored, want, pr.Clipped)
	}
	for i := range L {
		exp := 0.0
		if mask[i] {
			exp = math.Max(-ScoreClip, math.Min(ScoreClip, partial[i]))
		}
		if math.IsNaN(exp) != math.IsNaN(br.Partial[i]) || math.Abs(br.Partial[i]-exp) > 1.0/(1<<(ScoreScaleBits)) {
			t.Fatalf("position %d: got %v, want %v", i, br.Partial[i], exp)
		}
	}
	// What the partner sent is keys, ciphertexts and protocol metadata:
	// the plaintext partial predictors never appear on the wire.
	for _, m := range pp.sent {
		if !strings.HasPrefix(m.Step, "score.") {
			t.Fatalf("partner sent step %q", m.Step)
		}
	}
	if n := countFixedPoint(pp.sent, partial[:64]); n > 0 {
		t.Fatalf("%d partner values found in clear on the wire", n)
	}
}

// countFixedPoint counts values of the partner's fixed point that occur
// verbatim (little-endian int64) in the messages.
func countFixedPoint(msgs []Msg, vals []float64) int {
	n := 0
	for _, v := range vals {
		x := uint64(int64(math.Round(v * (1 << ScoreScaleBits))))
		var b [8]byte
		for k := range b {
			b[k] = byte(x >> (8 * k))
		}
		for _, m := range msgs {
			if strings.Contains(string(m.Payload), string(b[:])) {
				n++
			}
		}
	}
	return n
}

// TestScoreReleaseOutOfOrder: a partner that answers a chunk twice in a
// batch (which would leave another chunk's positions at 0) is caught.
func TestScoreReleaseOutOfOrder(t *testing.T) {
	L := 3 * 8192
	mask, partial := make([]bool, L), make([]float64, L)
	for i := range L {
		mask[i], partial[i] = i%3 == 0, float64(i%7)
	}
	dup := func(step string, blob []byte) []byte {
		if step != "score.rel" {
			return blob
		}
		msgs, err := splitBlobs(blob, 3)
		if err != nil {
			t.Fatal(err)
		}
		copy(msgs[1], msgs[0]) // chunk 0's answer where chunk 1's was
		return blob
	}
	_, _, _, berr, _ := runScoreEdited(t, mask, partial, nil, "mdl-1", dup)
	if !errors.Is(berr, ErrUnexpected) || !strings.Contains(berr.Error(), "holds chunk 0 at 1") {
		t.Fatalf("bank: %v", berr)
	}
}

func TestScoreRefused(t *testing.T) {
	L := 100
	mask, partial := make([]bool, L), make([]float64, L)
	_, _, _, berr, perr := runScore(t, mask, partial, func(context.Context) error { return errors.New("agreement forbids scoring") }, "mdl-1")
	if !errors.Is(berr, ErrScoreRefused) || !strings.Contains(berr.Error(), "agreement forbids scoring") || !errors.Is(perr, ErrScoreRefused) {
		t.Fatalf("bank: %v; partner: %v", berr, perr)
	}
	_, _, _, berr, perr = runScore(t, mask, partial, nil, "mdl-other")
	if !errors.Is(berr, ErrScoreRefused) || !errors.Is(perr, ErrScoreRefused) {
		t.Fatalf("wrong model: bank: %v; partner: %v", berr, perr)
	}
}

func TestSplitBlobs(t *testing.T) {
	msgs := [][]byte{[]byte("a"), {}, []byte("xyz")}
	b := joinBlobs(msgs)
	got, err := splitBlobs(b, 3)
	if err != nil || len(got) != 3 || string(got[2]) != "xyz" || len(got[1]) != 0 {
		t.Fatalf("%q %v", got, err)
	}
	for _, bad := range [][]byte{b[:len(b)-1], append(b, 0), {1, 0, 0}, {0xff, 0xff, 0xff, 0xff}} {
		if _, err := splitBlobs(bad, 3); err == nil {
			t.Errorf("accepted %x", bad)
		}
	}
	if _, err := splitBlobs(b, 2); err == nil {
		t.Error("accepted 3 messages for 2")
	}
}

func FuzzSplitBlobs(f *testing.F) {
	f.Add(joinBlobs([][]byte{[]byte("a"), []byte("bc")}), 2)
	f.Fuzz(func(t *testing.T, b []byte, want int) {
		if want < 0 || want > 64 {
			return
		}
		out, err := splitBlobs(b, want)
		if err == nil && len(out) != want {
			t.Fatalf("%d messages for %d", len(out), want)
		}
	})
}
