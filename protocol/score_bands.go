package protocol

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"math"

	"github.com/tandem-dev/tandem/bands"
	"github.com/tandem-dev/tandem/ot"
)

// Bands-only scoring (issue 6, "only the band leaves"): the bank learns
// per matched row its score band and nothing else; no score, no partial
// predictor. Package bands compares the partner's fixed-point partial
// predictor p with K thresholds per position chosen by the bank, c_k =
// edge_k − u_B in the same fixed point, by 1-out-of-16 OTs on p's four
// hexadecimal digits and then OTs the other way for one AND per
// threshold, both rounds in one round trip (packages bands and ot); the
// bank learns the bits [p ≥ c_k], hence [u_B + u_P ≥ edge_k], hence the
// band. For a missing: drop model the bank adds a first threshold, the
// constant 1, against which the partner's value 0 (no partial predictor:
// a row with a missing partner feature) falls short.
// At the positions it does not score, the bank compares against 0 (every
// bit 1, whatever p): the partner cannot tell them apart and the bank
// learns nothing there.
//
//	1. B→P score.hello {L, model id, compare: K}
//	   P: checks and policy, as in RunScorePartner; P→B score.hello {}
//	2. base OTs, both ways (round 1's extension has the partner choose,
//	   round 2's the bank):
//	   P→B score.ot.a; B→P score.ot.b, score.ot.a2; P→B score.ot.e,
//	   score.ot.b2; B→P score.ot.e2
//	3. per batch b of ≤ bandsBatch positions, pipelined two deep:
//	   P→B score.cmp.u#b   round-1 OT corrections (4 digits: 128 bytes a
//	                       position)
//	   B→P score.cmp.t#b   round-1 tables (22·K bytes a position), then
//	                       round-2 corrections (32 bytes a pair of
//	                       thresholds)
//	   P: OnRelease (audit record with the batch digest)
//	   P→B score.cmp.z#b   round-2 tables (4 bytes a pair of thresholds)
//	                       and answers (K bits a position, one-time padded)
//	   P sends u_0, u_1 first, then after each table z_b and u_{b+2}.
//	4. B→P score.done {scored}, P→B score.done {}
//
// What each side learns: the bank, per position it scores, which band
// edges the score reaches (and, for a missing: drop model, whether the
// partner has a value); nothing at the other positions. The partner: L,
// the model id, K and how many positions were scored (score.done), never
// which, nor any band. Semi-honest, as DESIGN §2: a bank that departs from
// the protocol could set its K thresholds anywhere, at any position, and
// learn K bits of u_P there (the scores mode's mask gives such a bank u_P
// itself).
// Resolution: band edges are compared in units of 2^-BandScaleBits logit,
// so a row within 2^-10 of an edge may fall on either side of it; partial
// predictors beyond ±BandClip logit are clipped (counted).

const (
	// BandScaleBits is the fixed point of band comparisons (logit units).
	BandScaleBits = 10
	// BandClip bounds |u_P| in band comparisons: 16 bits at 2^-10.
	BandClip = 32.0
	// bandsBatch positions per round trip: ≈ 5 MB of tables at K = 10.
	bandsBatch = 4096
)

// BandValue is the partner's 16-bit value for u_P (NaN: none, 0) and
// whether it was clipped.
func BandValue(u float64) (uint16, bool) {
	if math.IsNaN(u) {
		return 0, false
	}
	x := math.Round(u*(1<<BandScaleBits)) + (1 << 15)
	switch {
	case x < 1:
		return 1, true
	case x > math.MaxUint16:
		return math.MaxUint16, true
	}
	return uint16(x), false
}

// BandThreshold is the bank's threshold for "u_P ≥ d" (d = edge − u_B in
// logit units), clamped to the comparable range [1, 65536]: a value
// reaches it exactly when round(u_P·2^10) ≥ ceil(d·2^10).
func BandThreshold(d float64) uint32 {
	x := math.Ceil(d*(1<<BandScaleBits)) + (1 << 15)
	switch {
	case math.IsNaN(x) || x > bands.MaxThreshold:
		return bands.MaxThreshold
	case x < 1:
		return 1
	}
	return uint32(x)
}

// ScoreBandsBankConfig parameterises the bank side of bands-only scoring.
type ScoreBandsBankConfig struct {
	JobID   string
	ModelID string
	Rand    io.Reader // nil: crypto/rand
	// K thresholds per position (≤ bands.MaxThresholds) at each of L
	// positions: Thresholds(lo, hi, dst) writes those of positions
	// lo…hi−1 into dst (K each, in [0, bands.MaxThreshold]), one batch at
	// a time, so that L·K of them never sit in memory together.
	K          int
	L          int
	Thresholds func(lo, hi int, dst []uint32)
	// Scored is the number of positions the bank scores (for score.done).
	Scored int
}

// ScoreBandsBankResult: per position, bit k = [p ≥ threshold k].
type ScoreBandsBankResult struct {
	GE      []uint32
	Batches int
}

// randOr is r, or crypto/rand when r is nil.
func randOr(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// RunScoreBandsBank runs the bank side; the partner runs RunScorePartner
// with BandValues. A refusal by the partner's policy is ErrScoreRefused.
func RunScoreBandsBank(ctx context.Context, t Transport, cfg ScoreBandsBankConfig, progress func(string, float64)) (*ScoreBandsBankResult, error) {
	res, err := runScoreBandsBank(ctx, t, cfg, progress)
	return res, scoreRefusal(err)
}

func runScoreBandsBank(ctx context.Context, t Transport, cfg ScoreBandsBankConfig, progress func(string, float64)) (*ScoreBandsBankResult, error) {
	if cfg.K < 1 || cfg.K > bands.MaxThresholds || cfg.L < 0 || cfg.Thresholds == nil {
		return nil, fmt.Errorf("protocol: score: %d thresholds per position at %d positions", cfg.K, cfg.L)
	}
	L := cfg.L
	c := newScoreChannel(t)
	if err := c.sendJSON(ctx, "score.hello", scoreHello{L: L, ModelID: cfg.ModelID, Compare: cfg.K, CompareWith: bands.Protocol}); err != nil {
		return nil, err
	}
	var ack struct{}
	if err := c.recvJSON(ctx, "score.hello", &ack); err != nil {
		return nil, err
	}
	snd, rcv, err := bandsBankOTs(ctx, c, randOr(cfg.Rand))
	if err != nil {
		return nil, err
	}
	seed, err := drawSeed(randOr(cfg.Rand))
	if err != nil {
		return nil, err
	}
	bank, err := bands.NewBank(snd, rcv, cfg.K, seed)
	if err != nil {
		return nil, err
	}
	res := &ScoreBandsBankResult{GE: make([]uint32, L)}
	nb := (L + bandsBatch - 1) / bandsBatch
	var keys [2]bands.Keys // batch b's while b−1's answers are awaited
	th := make([]uint32, bandsBatch*cfg.K)
	// Batch b's tables go out while b+1's are built.
	out := c.startSender(ctx, "score.cmp.t", 2, bands.TablesBytes(cfg.K, bandsBatch))
	finished := false
	defer func() {
		if !finished {
			out.abort()
		}
	}()
	open := func(b int) error {
		lo, hi := b*bandsBatch, min((b+1)*bandsBatch, L)
		z, err := c.recvBlob(ctx, "score.cmp.z", (hi-lo)*bands.AnswerBytes(cfg.K))
		if err != nil {
			return err
		}
		if err := bank.Open(&keys[b%2], z, res.GE[lo:hi]); err != nil {
			return fmt.Errorf("protocol: score: batch %d: %w", b, err)
		}
		return nil
	}
	for b := range nb {
		lo, hi := b*bandsBatch, min((b+1)*bandsBatch, L)
		u, err := c.recvBlob(ctx, "score.cmp.u", bands.CorrectionsBytes(hi-lo))
		if err != nil {
			return nil, err
		}
		tables, err := out.buffer(ctx)
		if err != nil {
			return nil, err
		}
		tables = tables[:bands.TablesBytes(cfg.K, hi-lo)]
		tb := th[:(hi-lo)*cfg.K]
		cfg.Thresholds(lo, hi, tb)
		if err := bank.Tables(tb, u, tables, &keys[b%2]); err != nil {
			return nil, fmt.Errorf("protocol: score: batch %d: %w", b, err)
		}
		out.send(tables)
		if b > 0 {
			if err := open(b - 1); err != nil {
				return nil, err
			}
		}
		if progress != nil {
			progress("comparing", float64(hi)/float64(L))
		}
	}
	if nb > 0 {
		if err := open(nb - 1); err != nil {
			return nil, err
		}
	}
	finished = true
	if err := out.finish(); err != nil {
		return nil, err
	}
	res.Batches = nb
	if err := c.sendJSON(ctx, "score.done", scoreDone{Scored: cfg.Scored}); err != nil {
		return nil, err
	}
	if err := c.recvJSON(ctx, "score.done", &ack); err != nil {
		return nil, err
	}
	return res, nil
}

// runScoreBandsPartner runs the partner side after the hello's checks.
func runScoreBandsPartner(ctx context.Context, c *scoreChannel, cfg ScorePartnerConfig, K int, progress func(string, float64)) (*ScorePartnerResult, error) {
	L := len(cfg.BandValues)
	rcv, snd, err := bandsPartnerOTs(ctx, c, randOr(cfg.Rand))
	if err != nil {
		return nil, err
	}
	// Two batches in flight: two Partners on the same two extensions, so
	// batch b+1's corrections go out while the bank builds batch b's
	// tables.
	var ps [2]*bands.Partner
	for i := range ps {
		seed, err := drawSeed(randOr(cfg.Rand))
		if err != nil {
			return nil, err
		}
		if ps[i], err = bands.NewPartner(rcv, snd, K, seed); err != nil {
			return nil, err
		}
	}
	nb := (L + bandsBatch - 1) / bandsBatch
	u := make([]byte, bands.CorrectionsBytes(bandsBatch))
	choose := func(b int) error {
		lo, hi := b*bandsBatch, min((b+1)*bandsBatch, L)
		ub := u[:bands.CorrectionsBytes(hi-lo)]
		ps[b%2].Choose(cfg.BandValues[lo:hi], ub)
		return c.sendBlob(ctx, "score.cmp.u", ub)
	}
	for b := range min(2, nb) {
		if err := choose(b); err != nil {
			return nil, err
		}
	}
	z := make([]byte, bandsBatch*bands.AnswerBytes(K))
	for b := range nb {
		lo, hi := b*bandsBatch, min((b+1)*bandsBatch, L)
		tables, err := c.recvBlob(ctx, "score.cmp.t", bands.TablesBytes(K, hi-lo))
		if err != nil {
			return nil, err
		}
		zb := z[:(hi-lo)*bands.AnswerBytes(K)]
		if err := ps[b%2].Answer(tables, zb); err != nil {
			return nil, fmt.Errorf("protocol: score: batch %d: %w", b, err)
		}
		if cfg.OnRelease != nil {
			d := sha256.Sum256(zb)
			if err := cfg.OnRelease(ctx, ScoreRelease{Batch: b, FirstPos: lo, Positions: hi - lo, Statistic: "band_comparisons",
				Values: (hi - lo) * K, Digest: d[:]}); err != nil {
				return nil, err
			}
		}
		if err := c.sendBlob(ctx, "score.cmp.z", zb); err != nil {
			return nil, err
		}
		if b+2 < nb {
			if err := choose(b + 2); err != nil {
				return nil, err
			}
		}
		if progress != nil {
			progress("comparing", float64(hi)/float64(L))
		}
	}
	res := &ScorePartnerResult{Length: L, Batches: nb}
	if res.Scored, err = c.partnerDone(ctx, L); err != nil {
		return nil, err
	}
	return res, nil
}

func drawSeed(r io.Reader) (seed [32]byte, err error) {
	_, err = io.ReadFull(r, seed[:])
	return seed, err
}

// bandsBankOTs runs the bank's side of the base OTs of both extensions:
// it is the Sender of round 1's (the partner chooses) and the Receiver of
// round 2's. The partner runs bandsPartnerOTs.
func bandsBankOTs(ctx context.Context, c *scoreChannel, r io.Reader) (*ot.Sender, *ot.Receiver, error) {
	a, err := c.recvBlob(ctx, "score.ot.a", ot.BaseAMsgBytes)
	if err != nil {
		return nil, nil, err
	}
	br, b, err := ot.NewBaseReceiver(r, a)
	if err != nil {
		return nil, nil, fmt.Errorf("protocol: score: %w", err)
	}
	bs, a2, err := ot.NewBaseSender(r)
	if err != nil {
		return nil, nil, err
	}
	if err := c.sendBlob(ctx, "score.ot.b", b); err != nil {
		return nil, nil, err
	}
	if err := c.sendBlob(ctx, "score.ot.a2", a2); err != nil {
		return nil, nil, err
	}
	e, err := c.recvBlob(ctx, "score.ot.e", ot.BaseEMsgBytes)
	if err != nil {
		return nil, nil, err
	}
	if err := br.Finish(e); err != nil {
		return nil, nil, fmt.Errorf("protocol: score: %w", err)
	}
	b2, err := c.recvBlob(ctx, "score.ot.b2", ot.BaseBMsgBytes)
	if err != nil {
		return nil, nil, err
	}
	e2, err := bs.Respond(b2)
	if err != nil {
		return nil, nil, fmt.Errorf("protocol: score: %w", err)
	}
	if err := c.sendBlob(ctx, "score.ot.e2", e2); err != nil {
		return nil, nil, err
	}
	snd, err := br.Sender()
	if err != nil {
		return nil, nil, err
	}
	rcv, err := bs.Receiver()
	return snd, rcv, err
}

// bandsPartnerOTs is the partner's side of bandsBankOTs: the Receiver of
// round 1's extension and the Sender of round 2's.
func bandsPartnerOTs(ctx context.Context, c *scoreChannel, r io.Reader) (*ot.Receiver, *ot.Sender, error) {
	bs, a, err := ot.NewBaseSender(r)
	if err != nil {
		return nil, nil, err
	}
	if err := c.sendBlob(ctx, "score.ot.a", a); err != nil {
		return nil, nil, err
	}
	b, err := c.recvBlob(ctx, "score.ot.b", ot.BaseBMsgBytes)
	if err != nil {
		return nil, nil, err
	}
	a2, err := c.recvBlob(ctx, "score.ot.a2", ot.BaseAMsgBytes)
	if err != nil {
		return nil, nil, err
	}
	e, err := bs.Respond(b)
	if err != nil {
		return nil, nil, fmt.Errorf("protocol: score: %w", err)
	}
	br, b2, err := ot.NewBaseReceiver(r, a2)
	if err != nil {
		return nil, nil, fmt.Errorf("protocol: score: %w", err)
	}
	if err := c.sendBlob(ctx, "score.ot.e", e); err != nil {
		return nil, nil, err
	}
	if err := c.sendBlob(ctx, "score.ot.b2", b2); err != nil {
		return nil, nil, err
	}
	e2, err := c.recvBlob(ctx, "score.ot.e2", ot.BaseEMsgBytes)
	if err != nil {
		return nil, nil, err
	}
	if err := br.Finish(e2); err != nil {
		return nil, nil, fmt.Errorf("protocol: score: %w", err)
	}
	rcv, err := bs.Receiver()
	if err != nil {
		return nil, nil, err
	}
	snd, err := br.Sender()
	return rcv, snd, err
}
