package protocol

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/tandem-dev/tandem/bands"
	"github.com/tandem-dev/tandem/fedlearn"
)

// Scoring protocol (issue 6, DESIGN §4): the bank learns the partner's
// partial linear predictor u_P at the positions of its choosing (its
// matched rows) and nothing else; it adds its own part and has the scores.
// Bank B (initiator: match indicator, bank part of the model), partner P
// (responder: partner part, its features over all L positions):
//
//	1. B→P score.hello {L, model id, chunks}
//	   P: checks L against its alignment and the model id against its own
//	      part, asks its policy to approve (before any key exists);
//	      refusal: P→B score.refused {reason}, both fail.
//	   P→B score.hello {}
//	2. B→P score.ckg, P→B score.ckg      collective key
//	3. per batch b of ≤ scoreBatch chunks (the bank streams them, one
//	   batch ahead of the answers; the partner answers each batch in
//	   order):
//	   B→P score.mask#…   Enc(m) on the batch's chunks (slot encoding)
//	   P: OnRelease (audit record with the batch digest), then
//	      fedlearn MaskedRelease: Enc(m⊙u_P) key-switched to B, flooded
//	   P→B score.rel#…    the masked releases
//	   B: checks the answers' chunk indices, DecryptMasked → u_P at
//	      its masked positions, 0 elsewhere
//	4. B→P score.done {scored}, P→B score.done {}
//
// What each side learns beyond its input: the partner learns L (known from
// PSI), the model id and how many positions the bank scored (score.done);
// it never learns which. The bank learns u_P,i at every position where its
// mask is 1 (and, with its own part, the score), nothing at the others.
// Values are fixed point: u_P·2^ScoreScaleBits, clipped by the partner to
// ±ScoreClip (counted in ScorePartnerResult.Clipped).

const (
	// ScoreScaleBits is the fixed-point scale of the partner's partial
	// predictor on the wire: a resolution of 2^-20 ≈ 1e-6 in logit units.
	ScoreScaleBits = 20
	// ScoreClip bounds |u_P| (logit units) so the fixed point fits the
	// slot modulus (2^29 / 2^20 = 512, minus a margin).
	ScoreClip = 511.0
	// missingMark is the fixed-point value of a position where the partner
	// has no partial predictor (NaN: a row of a missing: drop model with a
	// missing feature); outside ±ScoreClip, inside the slot modulus.
	missingMark = -int64((ScoreClip + 0.5) * (1 << ScoreScaleBits))
	// scoreBatch chunks of N positions per message round: 16 × 8192
	// positions, ≈ 4 MiB each way per round.
	scoreBatch = 16
)

// ErrScoreRefused is returned on both sides when the partner's policy
// refuses the scoring job.
var ErrScoreRefused = errors.New("protocol: scoring refused by policy")

// ScoreRelease describes one batch of masked releases, for the partner's
// audit record.
type ScoreRelease struct {
	Batch     int
	FirstPos  int    // first position of the batch
	Positions int    // positions covered by the batch
	Statistic string // "partial_predictor" (one value per masked position) or "band_counts"
	Values    int    // band_counts: the number of counts released
	Digest    []byte
}

// ScoreBankConfig parameterises the bank side.
type ScoreBankConfig struct {
	JobID   string
	ModelID string
	Params  fedlearn.Params
	Rand    io.Reader
	// Mask selects the positions to score (the bank's matched rows); its
	// length is L.
	Mask []bool
	// PartnerBands > 0 selects the acquisition mode of a partner-only
	// model: the partner bands its own users by its whole model and the
	// bank learns, per band, only the partner's user count and how many of
	// them are its customers (Mask) — no score leaves the partner.
	PartnerBands int
}

// ScorePartnerConfig parameterises the partner side.
type ScorePartnerConfig struct {
	JobID   string
	ModelID string
	Params  fedlearn.Params
	Rand    io.Reader
	// Partial is u_P over all L positions (logit units); NaN where the
	// partner has no value (a missing: drop model's row with a missing
	// feature), which the bank receives as NaN.
	Partial []float64
	// Bands, in the acquisition mode (partner-only model), is the band
	// (1…B, 0 for none) of each of the L positions by the partner's own scores;
	// Partial is then unused.
	Bands []int
	// BandValues, in bands-only mode, is BandValue(u_P) at each of the L
	// positions (score_bands.go); Partial is then unused.
	BandValues []uint16
	// Approve runs before any key exists; an error refuses the job.
	Approve func(ctx context.Context) error
	// OnRelease runs before each batch is answered (audit record); an
	// error aborts without a release.
	OnRelease func(ctx context.Context, r ScoreRelease) error
}

// ScoreBankResult: the partner's partial predictor at the masked positions
// (0 elsewhere; NaN where the partner has no value) and the wire volume.
type ScoreBankResult struct {
	Partial []float64
	Scored  int
	Missing int // masked positions where the partner has no value
	Batches int // message rounds (one masked release of ≤ 16 chunks each)
	// Acquisition mode: per band, the partner's users and those of them
	// that are the bank's customers (an exact count, decrypted from one
	// policy-approved release).
	BandUsers, BandShared []int64
}

// ScorePartnerResult: what the partner may know about the job.
type ScorePartnerResult struct {
	Length  int
	Scored  int // as the bank reported it
	Clipped int // positions whose |u_P| exceeded ScoreClip
	Batches int
}

type scoreHello struct {
	L       int    `json:"length"`
	ModelID string `json:"model_id"`
	Chunks  int    `json:"chunks"`
	Bands   int    `json:"partner_bands,omitempty"` // acquisition mode
	Compare int    `json:"compare,omitempty"`       // bands-only mode: thresholds per position
	// CompareWith names the bands-only comparison protocol (bands.Protocol),
	// so that two nodes whose comparisons differ refuse the job at the
	// hello with the cause, not at a message of unexpected size.
	CompareWith string `json:"compare_with,omitempty"`
}

type scoreBandTotals struct {
	Users []int64 `json:"users"`
}

type scoreDone struct {
	Scored int `json:"scored"`
}

func scoreSeed(jobID string) [32]byte {
	return sha256.Sum256([]byte("tandem/v1 score ckg\n" + jobID))
}

// RunScoreBank runs the bank side. A refusal by the partner's policy is
// ErrScoreRefused with the partner's reason.
func RunScoreBank(ctx context.Context, t Transport, cfg ScoreBankConfig, progress func(string, float64)) (*ScoreBankResult, error) {
	res, err := runScoreBank(ctx, t, cfg, progress)
	return res, scoreRefusal(err)
}

// scoreRefusal turns the shared channel's refusal message into
// ErrScoreRefused.
func scoreRefusal(err error) error {
	if errors.Is(err, ErrTrainRefused) {
		return fmt.Errorf("%w: %s", ErrScoreRefused, strings.TrimPrefix(err.Error(), ErrTrainRefused.Error()+": "))
	}
	return err
}

func runScoreBank(ctx context.Context, t Transport, cfg ScoreBankConfig, progress func(string, float64)) (*ScoreBankResult, error) {
	L := len(cfg.Mask)
	sess, err := fedlearn.NewSession(fedlearn.Bank, cfg.Params, scoreSeed(cfg.JobID), cfg.Rand)
	if err != nil {
		return nil, err
	}
	c := newScoreChannel(t)
	chunks := sess.MaskedChunks(L)
	if err := c.sendJSON(ctx, "score.hello", scoreHello{L: L, ModelID: cfg.ModelID, Chunks: chunks, Bands: cfg.PartnerBands}); err != nil {
		return nil, err
	}
	var ack struct{}
	if err := c.recvJSON(ctx, "score.hello", &ack); err != nil {
		return nil, err
	}
	if err := c.ckg(ctx, sess, "score.ckg"); err != nil {
		return nil, err
	}
	if cfg.PartnerBands > 0 {
		return bandCountsBank(ctx, c, sess, cfg)
	}
	out, batches, err := c.maskedQuery(ctx, sess, cfg.Mask, "score.mask", "score.rel", progress)
	if err != nil {
		return nil, err
	}
	res := &ScoreBankResult{Partial: make([]float64, L), Batches: batches}
	for i, v := range out {
		switch {
		case !cfg.Mask[i]:
		case v == missingMark:
			res.Partial[i] = math.NaN()
			res.Missing++
		case v < -ScoreClip*(1<<ScoreScaleBits) || v > ScoreClip*(1<<ScoreScaleBits):
			return nil, fmt.Errorf("%w: partial predictor %d outside the fixed-point range", ErrUnexpected, v)
		default:
			res.Partial[i] = float64(v) / (1 << ScoreScaleBits)
			res.Scored++
		}
	}
	// The partner learns how many positions were asked for, as before
	// missing values existed: not how many of them it lacked.
	if err := c.sendJSON(ctx, "score.done", scoreDone{Scored: res.Scored + res.Missing}); err != nil {
		return nil, err
	}
	if err := c.recvJSON(ctx, "score.done", &ack); err != nil {
		return nil, err
	}
	return res, nil
}

// RunScorePartner runs the partner side.
func RunScorePartner(ctx context.Context, t Transport, cfg ScorePartnerConfig, progress func(string, float64)) (*ScorePartnerResult, error) {
	c := newScoreChannel(t)
	var h scoreHello
	if err := c.recvJSON(ctx, "score.hello", &h); err != nil {
		return nil, err
	}
	L := len(cfg.Partial)
	switch {
	case cfg.Bands != nil:
		L = len(cfg.Bands)
	case cfg.BandValues != nil:
		L = len(cfg.BandValues)
	}
	sess, err := fedlearn.NewSession(fedlearn.Partner, cfg.Params, scoreSeed(cfg.JobID), cfg.Rand)
	if err != nil {
		return nil, err
	}
	switch {
	case h.L != L:
		return nil, c.refuseScore(ctx, fmt.Sprintf("alignment length %d, the partner's is %d", h.L, L))
	case h.ModelID != cfg.ModelID:
		return nil, c.refuseScore(ctx, fmt.Sprintf("model %s is not the job's model %s", h.ModelID, cfg.ModelID))
	case (h.Compare > 0) != (cfg.BandValues != nil):
		return nil, c.refuseScore(ctx, "the bank asks for scores of a bands-only job, or for bands only of a job that releases scores")
	case h.Compare > 0 && h.CompareWith != bands.Protocol:
		return nil, c.refuseScore(ctx, fmt.Sprintf("the bank's node compares bands by protocol %q, this node by %q: both nodes need the same Tandem release", h.CompareWith, bands.Protocol))
	case h.Compare > bands.MaxThresholds:
		return nil, c.refuseScore(ctx, fmt.Sprintf("%d band thresholds per row, at most %d", h.Compare, bands.MaxThresholds))
	case h.Compare == 0 && h.Chunks != sess.MaskedChunks(L):
		return nil, c.refuseScore(ctx, fmt.Sprintf("%d chunks for %d positions", h.Chunks, L))
	case (h.Bands > 0) != (cfg.Bands != nil):
		return nil, c.refuseScore(ctx, "the bank asks for per-row scores of a partner-only model, or for band counts of a split model")
	}
	if cfg.Approve != nil {
		if err := cfg.Approve(ctx); err != nil {
			return nil, c.refuseScore(ctx, err.Error())
		}
	}
	if err := c.sendJSON(ctx, "score.hello", struct{}{}); err != nil {
		return nil, err
	}
	if cfg.BandValues != nil {
		return runScoreBandsPartner(ctx, c, cfg, h.Compare, progress)
	}
	if err := c.ckg(ctx, sess, "score.ckg"); err != nil {
		return nil, err
	}
	res := &ScorePartnerResult{Length: L}
	if cfg.Bands != nil {
		if err := bandCountsPartner(ctx, c, sess, cfg, h.Bands); err != nil {
			return nil, err
		}
		return res, nil
	}
	u, clipped, err := fixedPoint(cfg.Partial)
	if err != nil {
		return nil, err
	}
	res.Clipped = clipped
	batches, err := c.maskedAnswer(ctx, sess, u, "score.mask", "score.rel", cfg.OnRelease, progress)
	if err != nil {
		return nil, err
	}
	res.Batches = batches
	if res.Scored, err = c.partnerDone(ctx, L); err != nil {
		return nil, err
	}
	return res, nil
}

// bandCountsBank (acquisition mode, bank): Enc(match indicator) in
// coefficient packing to the partner, which returns one inner product per
// band (Σ_i m_i·[band_i = b]) with its release share, and its user count
// per band in the clear.
func bandCountsBank(ctx context.Context, c *scoreChannel, sess *fedlearn.Session, cfg ScoreBankConfig) (*ScoreBankResult, error) {
	m := make([]int64, len(cfg.Mask))
	for i, b := range cfg.Mask {
		if b {
			m[i] = 1
		}
	}
	chunks, err := sess.EncryptVector(m)
	if err != nil {
		return nil, err
	}
	if err := c.sendBlob(ctx, "score.match", joinBlobs(chunks)); err != nil {
		return nil, err
	}
	var tot scoreBandTotals
	if err := c.recvJSON(ctx, "score.bands", &tot); err != nil {
		return nil, err
	}
	B := cfg.PartnerBands
	result, err := c.recvBlob(ctx, "score.bres", 64+B*8*4*(sess.N()+1))
	if err != nil {
		return nil, err
	}
	share, err := c.recvBlob(ctx, "score.bshare", 4096+B*64)
	if err != nil {
		return nil, err
	}
	shared, err := sess.Decrypt(result, share)
	if err != nil {
		return nil, fmt.Errorf("protocol: score: band counts: %w", err)
	}
	if len(tot.Users) != B || len(shared) != B {
		return nil, fmt.Errorf("%w: %d band totals and %d counts for %d bands", ErrUnexpected, len(tot.Users), len(shared), B)
	}
	for b := range B {
		if shared[b] < 0 || tot.Users[b] < shared[b] {
			return nil, fmt.Errorf("%w: band %d: %d customers among %d users", ErrUnexpected, b+1, shared[b], tot.Users[b])
		}
	}
	if err := c.sendJSON(ctx, "score.done", scoreDone{}); err != nil {
		return nil, err
	}
	var ack struct{}
	if err := c.recvJSON(ctx, "score.done", &ack); err != nil {
		return nil, err
	}
	return &ScoreBankResult{BandUsers: tot.Users, BandShared: shared, Batches: 1}, nil
}

// bandCountsPartner is the partner's side: the inner products of the
// bank's encrypted indicator with its band indicator columns, released to
// the bank after OnRelease (policy and audit), plus its users per band.
func bandCountsPartner(ctx context.Context, c *scoreChannel, sess *fedlearn.Session, cfg ScorePartnerConfig, B int) error {
	L := len(cfg.Bands)
	users := make([]int64, B)
	cols := make([][]int64, B)
	for b := range cols {
		cols[b] = make([]int64, L)
	}
	for i, b := range cfg.Bands {
		switch {
		case b == 0: // no score (a missing: drop model's user with a missing feature): in no band
			continue
		case b < 1 || b > B:
			return fmt.Errorf("protocol: score: band %d at a position, want 0 (none) or 1..%d", b, B)
		}
		cols[b-1][i] = 1
		users[b-1]++
	}
	n := sess.MaskedChunks(L)
	in, err := c.recvBlob(ctx, "score.match", 64+n*(64+2*sess.N()*8*8))
	if err != nil {
		return err
	}
	chunks, err := splitBlobs(in, n)
	if err != nil {
		return err
	}
	result, err := sess.InnerProducts([][][]byte{chunks}, cols)
	if err != nil {
		return fmt.Errorf("protocol: score: band counts: %w", err)
	}
	if cfg.OnRelease != nil {
		d := sha256.Sum256(result)
		if err := cfg.OnRelease(ctx, ScoreRelease{Positions: L, Statistic: "band_counts", Values: B, Digest: d[:]}); err != nil {
			return err
		}
	}
	share, err := sess.ReleaseShare(result, fedlearn.Bank)
	if err != nil {
		return fmt.Errorf("protocol: score: %w", err)
	}
	if err := c.sendJSON(ctx, "score.bands", scoreBandTotals{Users: users}); err != nil {
		return err
	}
	if err := c.sendBlob(ctx, "score.bres", result); err != nil {
		return err
	}
	if err := c.sendBlob(ctx, "score.bshare", share); err != nil {
		return err
	}
	var done scoreDone
	if err := c.recvJSON(ctx, "score.done", &done); err != nil {
		return err
	}
	return c.sendJSON(ctx, "score.done", struct{}{})
}

// maskedQuery is the bank's side of a masked release over the channel:
// it streams Enc(mask) in batches of ≤ scoreBatch chunks under maskStep and
// decrypts the answers received under relStep. It returns m_i·u_i (fixed
// point) for every position and the number of batches.
//
// One batch is in flight ahead: batch b+1 is encrypted and sent before
// batch b's answer is read, so the partner answers b+1 while the bank
// decrypts b. In lock step each side idled while the other computed its
// part of every round.
func (c *trainChannel) maskedQuery(ctx context.Context, sess *fedlearn.Session, mask []bool, maskStep, relStep string, progress func(string, float64)) ([]int64, int, error) {
	chunks := sess.MaskedChunks(len(mask))
	nb := (chunks + scoreBatch - 1) / scoreBatch
	out := make([]int64, len(mask))
	ct := 64 + 2*sess.N()*8*8
	limit := 64 + scoreBatch*(ct+64)
	snd := c.startSender(ctx, maskStep, 2, 0) // grown by the first batches, then reused
	finished := false
	defer func() {
		if !finished {
			snd.abort()
		}
	}()
	var sent [2]map[int][32]byte // batch b's digests in sent[b%2]
	query := func(b int) error {
		lo, hi := b*scoreBatch, min((b+1)*scoreBatch, chunks)
		msgs, err := sess.EncryptMask(mask, lo, hi)
		if err != nil {
			return err
		}
		sent[b%2] = make(map[int][32]byte, len(msgs))
		for i, d := range fedlearn.MaskDigests(msgs) {
			sent[b%2][lo+i] = d
		}
		buf, err := snd.buffer(ctx)
		if err != nil {
			return err
		}
		snd.send(appendBlobs(buf, msgs))
		return nil
	}
	open := func(b int) error {
		lo, hi := b*scoreBatch, min((b+1)*scoreBatch, chunks)
		in, err := c.recvBlob(ctx, relStep, limit)
		if err != nil {
			return err
		}
		rels, err := splitBlobs(in, hi-lo)
		if err != nil {
			return err
		}
		// In order, each once: a chunk answered twice would leave
		// another's positions unanswered (0).
		for i, r := range rels {
			if k, err := fedlearn.MaskChunkIndex(r); err != nil || k != lo+i {
				return fmt.Errorf("%w: %s batch %d holds chunk %d at %d", ErrUnexpected, relStep, b, k, lo+i)
			}
		}
		if err := sess.DecryptMasked(rels, sent[b%2], out); err != nil {
			return fmt.Errorf("protocol: %s: partner's release: %w", relStep, err)
		}
		if progress != nil {
			progress("scoring", float64(hi)/float64(chunks))
		}
		return nil
	}
	for b := range nb {
		if err := query(b); err != nil {
			return nil, 0, err
		}
		if b > 0 {
			if err := open(b - 1); err != nil {
				return nil, 0, err
			}
		}
	}
	if nb > 0 {
		if err := open(nb - 1); err != nil {
			return nil, 0, err
		}
	}
	finished = true
	if err := snd.finish(); err != nil {
		return nil, 0, err
	}
	return out, nb, nil
}

// maskedAnswer is the partner's side: for each batch of mask chunks (in
// order) it runs onRelease (policy and audit; an error aborts without a
// release) and answers with MaskedRelease of u. An answer goes out in the
// background while the next batch is read and answered.
func (c *trainChannel) maskedAnswer(ctx context.Context, sess *fedlearn.Session, u []int64, maskStep, relStep string,
	onRelease func(context.Context, ScoreRelease) error, progress func(string, float64)) (int, error) {
	chunks := sess.MaskedChunks(len(u))
	ct := 64 + 2*sess.N()*8*8
	limit := 64 + scoreBatch*(ct+64)
	snd := c.startSender(ctx, relStep, 2, 0)
	finished := false
	defer func() {
		if !finished {
			snd.abort()
		}
	}()
	batches := 0
	for b, lo := 0, 0; lo < chunks; b, lo = b+1, lo+scoreBatch {
		hi := min(lo+scoreBatch, chunks)
		in, err := c.recvBlob(ctx, maskStep, limit)
		if err != nil {
			return 0, err
		}
		msgs, err := splitBlobs(in, hi-lo)
		if err != nil {
			return 0, err
		}
		for i, m := range msgs {
			if k, err := fedlearn.MaskChunkIndex(m); err != nil || k != lo+i {
				return 0, fmt.Errorf("%w: %s batch %d holds chunk %d at %d", ErrUnexpected, maskStep, b, k, lo+i)
			}
		}
		if onRelease != nil {
			d := sha256.Sum256(in)
			rel := ScoreRelease{Batch: b, FirstPos: lo * sess.N(), Positions: min(hi*sess.N(), len(u)) - lo*sess.N(), Statistic: "partial_predictor", Digest: d[:]}
			if err := onRelease(ctx, rel); err != nil {
				return 0, err
			}
		}
		rels, err := sess.MaskedRelease(msgs, u)
		if err != nil {
			return 0, fmt.Errorf("protocol: %s: %w", relStep, err)
		}
		buf, err := snd.buffer(ctx)
		if err != nil {
			return 0, err
		}
		snd.send(appendBlobs(buf, rels))
		batches++
		if progress != nil {
			progress("scoring", float64(hi)/float64(chunks))
		}
	}
	finished = true
	if err := snd.finish(); err != nil {
		return 0, err
	}
	return batches, nil
}

// fixedPoint converts u (logit units) to the masked-release fixed point,
// clipping |u| to ScoreClip, NaN (no value) to missingMark; it returns the
// number of clipped values.
func fixedPoint(u []float64) ([]int64, int, error) {
	out := make([]int64, len(u))
	clipped := 0
	for i, v := range u {
		if math.IsNaN(v) {
			out[i] = missingMark
			continue
		}
		if math.Abs(v) > ScoreClip {
			v = math.Copysign(ScoreClip, v)
			clipped++
		}
		out[i] = int64(math.Round(v * (1 << ScoreScaleBits)))
	}
	return out, clipped, nil
}

// scoreChannel is the training channel (sequence numbers per step, pieces
// of ≤ MaxPayload) with the score job's refusal message.
type scoreChannel struct{ *trainChannel }

func newScoreChannel(t Transport) *scoreChannel { return &scoreChannel{newTrainChannel(t)} }

// partnerDone reads the bank's score.done (how many of the L positions it
// scored) and acknowledges it.
func (c *scoreChannel) partnerDone(ctx context.Context, L int) (int, error) {
	var done scoreDone
	if err := c.recvJSON(ctx, "score.done", &done); err != nil {
		return 0, err
	}
	if done.Scored < 0 || done.Scored > L {
		return 0, fmt.Errorf("%w: bank reports %d scored positions of %d", ErrUnexpected, done.Scored, L)
	}
	return done.Scored, c.sendJSON(ctx, "score.done", struct{}{})
}

func (c *scoreChannel) refuseScore(ctx context.Context, reason string) error {
	c.refuse(ctx, reason)
	return fmt.Errorf("%w: %s", ErrScoreRefused, reason)
}

// joinBlobs frames messages as u32 length ‖ bytes.
func joinBlobs(msgs [][]byte) []byte {
	n := 0
	for _, m := range msgs {
		n += 4 + len(m)
	}
	return appendBlobs(make([]byte, 0, n), msgs)
}

// appendBlobs appends msgs to dst, framed as joinBlobs frames them.
func appendBlobs(dst []byte, msgs [][]byte) []byte {
	for _, m := range msgs {
		dst = append(dst, byte(len(m)), byte(len(m)>>8), byte(len(m)>>16), byte(len(m)>>24))
		dst = append(dst, m...)
	}
	return dst
}

// splitBlobs parses exactly want framed messages (peer input).
func splitBlobs(b []byte, want int) ([][]byte, error) {
	out := make([][]byte, 0, want)
	for len(b) > 0 {
		if len(b) < 4 || len(out) == want {
			return nil, fmt.Errorf("%w: bad framing", ErrUnexpected)
		}
		n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16 | int(b[3])<<24
		if n < 0 || n > len(b)-4 {
			return nil, fmt.Errorf("%w: bad framing", ErrUnexpected)
		}
		out = append(out, b[4:4+n])
		b = b[4+n:]
	}
	if len(out) != want {
		return nil, fmt.Errorf("%w: %d messages, want %d", ErrUnexpected, len(out), want)
	}
	return out, nil
}
