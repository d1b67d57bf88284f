package protocol

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/tandem-dev/tandem/fedlearn"
	"github.com/tandem-dev/tandem/fedlearn/vlr"
)

// Training protocol (issue 6, DESIGN §4; the math, the per-step functions
// and the leakage table are in fedlearn/vlr/README.md). Bank B (initiator:
// label, match indicator, bank features), partner P (responder: partner
// features over all L aligned positions; in a partner-only model the bank
// has no features and contributes the label, match indicator and
// intercept, and its release per step is 2 statistics):
//
//	1. B→P train.hello {L, spec digest, feature counts}
//	   P: checks them against its signed spec and alignment, asks its policy
//	      to approve the job (columns granted) before any key exists;
//	      refusal: P→B train.refused {reason}, both fail.
//	   P→B train.hello {}
//	2. B→P train.ckg, P→B train.ckg       collective key (fedlearn K1/K2)
//	   missing: drop only: B→P train.cmask#…, P→B train.crel#…, a masked
//	   release (as in scoring) of the partner's completeness indicator at
//	   the bank's matched positions, approved by the partner's policy; the
//	   bank leaves the incomplete rows out
//	3. per step s (one epoch in full batch):
//	   B→P train.terms#…   the bank's sealed terms z_0…z_D (vlr B1; ≤ 1 MiB pieces)
//	   P→B train.resid#…   Enc(r), r = Σ_a z_a·u_P^a·2^(e_a−k) (vlr P1)
//	   then both sides in parallel:
//	   B→P train.bres#…    the bank's Result        (vlr B2)
//	   P→B train.pres#…    the partner's Result     (vlr P2)
//	   each side: its Policy approves the release of the PEER's gradient,
//	      OnRelease (audit record, digest of the Result), then its share;
//	      refusal: train.refused {reason} instead of the share, both fail
//	   B→P train.bshare#…  share of the partner's Result (vlr B3)
//	   P→B train.pshare#…  share of the bank's Result    (vlr P3)
//	   B: ApplyGradient (vlr B4, validation loss, early stopping)
//	   P: ApplyGradient (vlr P4)
//	   B→P train.step#s {epoch, end_of_epoch, stop}
//	4. B→P train.done, P→B train.done (partner-only model: the bank's
//	   message carries its intercept, a release approved by its policy)
//
// What each side learns beyond its input: its own gradient per step (and
// the bank the loss aggregate over the validation rows, or the training
// rows without a hold-out), the public metadata of the vlr README
// (partner: L and n_step per step; the scale exponents on both sides are
// fixed by the spec's degree and range, not by data), and from train.step
// the epoch structure and when the bank stopped. The partner never learns
// a label, the match indicator, the bank's weights, the residual or the
// loss; the bank never learns a partner row, u_P per row or the partner's
// weights (with missing: drop it learns which of its matched rows the
// partner lacks a feature for, one bit per matched row).

// ValidationPartial names the release of the partner's partial predictor
// at the bank's held-out positions (spec validation_auc).
const ValidationPartial = "(validation_partial_predictor)"

// CompleteRows names the release of the partner's completeness indicator
// (1 where it has every feature of the model) at the bank's matched
// positions, for spec missing: drop.
const CompleteRows = "(complete_rows)"

// ErrTrainRefused is returned on both sides when a party's policy refuses
// the job or a gradient release. The job fails; the refused release was
// not shared.
var ErrTrainRefused = errors.New("protocol: training release refused by policy")

// TrainRelease describes one gradient release: the releasing side's share
// of the peer's Result, which lets the peer decrypt exactly its gradient.
type TrainRelease struct {
	Step, Epoch int
	// Batch numbers the batches of a validation-AUC release (Statistics =
	// [ValidationPartial]); 0 for gradient releases.
	Batch      int
	To         string   // "bank" or "partner": the receiver
	Statistics []string // what the receiver decrypts, in order
	Digest     []byte   // SHA-256 of the Result being shared
}

// TrainEpoch is one step's report. ValLoss is the bank's validation loss
// (NaN on the partner, which never learns it); GradNorm is the reporting
// side's own gradient norm.
type TrainEpoch struct {
	Epoch   int     `json:"epoch"`
	Step    int     `json:"step"`
	ValLoss float64 `json:"-"`
	// OnTraining: ValLoss is the training loss (no rows held out).
	OnTraining bool    `json:"-"`
	ValAUC     float64 `json:"-"` // NaN unless the spec asks for validation_auc (bank only)
	GradNorm   float64 `json:"grad_norm"`
	EndOfEpoch bool    `json:"end_of_epoch"`
	Stop       bool    `json:"stop"`
	// Elapsed is the wall time from the start of the run (set-up included)
	// to the end of this step, on the reporting side.
	Elapsed time.Duration `json:"-"`
}

// TrainBankConfig parameterises the bank side.
type TrainBankConfig struct {
	JobID  string
	Spec   *TrainSpec
	Params fedlearn.Params
	Rand   io.Reader // key share, encryption, flooding; nil = crypto/rand
	// Features are the bank's raw columns, column-major over the L
	// positions (ignored at unmatched positions; no NaN: impute before),
	// named by FeatureNames: Spec.BankFeatures with categorical columns
	// expanded into indicators (CheckExpansion); nil means exactly
	// Spec.BankFeatures. Label is 0/1 at matched positions.
	Features     [][]float64
	FeatureNames []string
	Label        []float64
	Match        []bool
	// With Spec.Missing drop, Match must already leave out the bank's rows
	// with a missing label or feature; the partner's are left out here.
	// Policy approves each release of the partner's gradient; an error
	// refuses it (the partner is told the reason, both fail).
	Policy func(ctx context.Context, r TrainRelease) error
	// OnRelease runs right before each share is produced (audit record);
	// an error aborts without a share.
	OnRelease func(ctx context.Context, r TrainRelease) error
	// OnStep reports every step (validation loss at the end of epochs).
	OnStep func(TrainEpoch)
}

// TrainPartnerConfig parameterises the partner side.
type TrainPartnerConfig struct {
	JobID    string
	Spec     *TrainSpec
	Params   fedlearn.Params
	Rand     io.Reader
	Length   int         // L of the alignment
	Features [][]float64 // over all L positions, no NaN, named by FeatureNames
	// FeatureNames: Spec.PartnerFeatures with categorical columns expanded
	// (CheckExpansion); nil means exactly Spec.PartnerFeatures.
	FeatureNames []string
	// Incomplete marks the positions where a partner feature is missing
	// (imputed in Features); with Spec.Missing drop the bank learns it at
	// its matched positions and leaves those rows out. nil: none.
	Incomplete []bool
	// Approve runs before any key exists; an error refuses the job.
	Approve   func(ctx context.Context) error
	Policy    func(ctx context.Context, r TrainRelease) error
	OnRelease func(ctx context.Context, r TrainRelease) error
	OnStep    func(TrainEpoch)
}

// TrainModelPart is one side's trained part: weights in standardised
// units with the owner's standardisation (raw coefficient = w/sd). The
// bank's part ends with the intercept.
type TrainModelPart struct {
	Features  []string  `json:"features"`
	Weights   []float64 `json:"weights"`
	Intercept *float64  `json:"intercept,omitempty"`
	Mean      []float64 `json:"mean"`
	SD        []float64 `json:"sd"`
}

// TrainBankResult is the bank's outcome.
type TrainBankResult struct {
	Part         TrainModelPart
	PartnerNames []string     // the partner's features as it announced them
	Steps        []TrainEpoch // every step, ValLoss set at the end of epochs
	Epochs       int
	Stopped      string // early_stopping or max_epochs
	Length       int
	Matched      int // matched rows used (train + validation)
	// PartnerIncomplete: matched rows left out because the partner lacks
	// one of its features there (Spec.Missing drop).
	PartnerIncomplete int
	TrainRows         []int // positions
	ValRows           []int
}

// TrainPartnerResult is the partner's outcome: its part and its own
// gradient norms; nothing about labels or membership.
type TrainPartnerResult struct {
	Part      TrainModelPart
	BankNames []string // the bank's features as it announced them
	Steps     []TrainEpoch
	Epochs    int
	Length    int
}

// trainHello opens a training job (bank → partner) and answers it
// (partner → bank, after its approval): each side announces its concrete
// features, its spec list with categorical columns expanded into
// indicators; the other checks them against the signed spec.
type trainHello struct {
	L       int    `json:"length,omitempty"`
	Spec    []byte `json:"spec_digest,omitempty"`
	Bank    int    `json:"bank_features,omitempty"`
	Partner int    `json:"partner_features,omitempty"`
	// Names are the sender's features (bank: its features; partner: its).
	Names []string `json:"names,omitempty"`
}

// trainDone ends a training job; for a partner-only model the bank's
// message carries its intercept, so the partner holds the whole model.
type trainDone struct {
	N         int64    `json:"n"`
	Intercept *float64 `json:"intercept,omitempty"`
}

type trainStep struct {
	Step       int  `json:"step"`
	Epoch      int  `json:"epoch"`
	EndOfEpoch bool `json:"end_of_epoch"`
	Stop       bool `json:"stop"`
}

func trainSeed(jobID string) [32]byte {
	return sha256.Sum256([]byte("tandem/v1 train ckg\n" + jobID))
}

// trainChannel tracks the sequence numbers of each step name per direction
// and turns a peer's train.refused into ErrTrainRefused.
type trainChannel struct {
	t    Transport
	sent map[string]uint64
	recv map[string]uint64
	bufs map[string][]byte // per step, the memory of the last blob received (recvBlob)
}

func newTrainChannel(t Transport) *trainChannel {
	return &trainChannel{t: t, sent: map[string]uint64{}, recv: map[string]uint64{}, bufs: map[string][]byte{}}
}

func (c *trainChannel) next(ctx context.Context, step string) (Msg, error) {
	m, err := c.t.Recv(ctx)
	if err != nil {
		return Msg{}, err
	}
	if m.Step == "train.refused" {
		var r statsRefused
		json.Unmarshal(m.Payload, &r)
		return Msg{}, fmt.Errorf("%w: %s", ErrTrainRefused, r.Reason)
	}
	if want := c.recv[step]; m.Step != step || m.Seq != want {
		return Msg{}, outOfOrder(m, step, want)
	}
	if len(m.Payload) > MaxPayload {
		return Msg{}, fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrUnexpected, len(m.Payload), MaxPayload)
	}
	c.recv[step]++
	return m, nil
}

func (c *trainChannel) sendJSON(ctx context.Context, step string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.sendBlob(ctx, step, b)
}

func (c *trainChannel) recvJSON(ctx context.Context, step string, v any) error {
	b, err := c.recvBlob(ctx, step, MaxPayload)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnexpected, step, err)
	}
	return nil
}

// sendBlob sends b as ≤ MaxPayload pieces of one step (at least one).
func (c *trainChannel) sendBlob(ctx context.Context, step string, b []byte) error {
	n, err := sendPieces(ctx, c.t, step, c.sent[step], b)
	c.sent[step] = n
	return err
}

// sendPieces sends b from sequence number seq on; returns the next one.
func sendPieces(ctx context.Context, t Transport, step string, seq uint64, b []byte) (uint64, error) {
	pieces := max((len(b)+MaxPayload-1)/MaxPayload, 1)
	for k := range pieces {
		lo, hi := k*MaxPayload, min((k+1)*MaxPayload, len(b))
		if err := t.Send(ctx, Msg{Step: step, Seq: seq, Payload: b[lo:hi], Last: k == pieces-1, Total: uint64(pieces)}); err != nil {
			return seq, err
		}
		seq++
	}
	return seq, nil
}

// recvBlob reassembles one blob of at most limit bytes. The blob is valid
// until the next recvBlob of the same step, which reuses its memory: a
// training step receives ≈ 320 MB at 1e6 rows, and growing a fresh buffer
// piece by piece every step cost more CPU than the step's cryptography
// (the copies of the doublings, then the page faults of new memory). The
// first blob of a step is allocated whole from its pieces' count; from
// the second on, each piece is copied once into memory already there,
// and dropped.
func (c *trainChannel) recvBlob(ctx context.Context, step string, limit int) ([]byte, error) {
	buf := c.bufs[step][:0]
	for {
		m, err := c.next(ctx, step)
		if err != nil {
			return nil, err
		}
		if len(buf)+len(m.Payload) > limit {
			return nil, fmt.Errorf("%w: %s longer than %d bytes", ErrUnexpected, step, limit)
		}
		if len(buf) == 0 && m.Total > 1 {
			// The first piece tells how many there are: take the
			// blob's memory at once (at most limit). Growing a 320 MB
			// blob by appends copied it five times into fresh memory,
			// in copies long enough to hold up the garbage collector.
			n := uint64(limit)
			if m.Total < n/MaxPayload {
				n = m.Total * MaxPayload
			}
			if uint64(cap(buf)) < n {
				buf = make([]byte, 0, n)
			}
		}
		buf = append(buf, m.Payload...)
		recycle(c.t, m.Payload)
		if m.Last {
			c.bufs[step] = buf
			return buf, nil
		}
	}
}

// exchange sends out under sendStep while receiving one blob under
// recvStep (both sides send large blobs at the same time; sequential
// sends could block each other on flow control).
func (c *trainChannel) exchange(ctx context.Context, sendStep string, out []byte, recvStep string, limit int) ([]byte, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type sendResult struct {
		next uint64
		err  error
	}
	done := make(chan sendResult, 1)
	seq := c.sent[sendStep]
	go func() {
		n, err := sendPieces(sctx, c.t, sendStep, seq, out)
		done <- sendResult{n, err}
	}()
	in, rerr := c.recvBlob(ctx, recvStep, limit)
	if rerr != nil {
		cancel()
	}
	sr := <-done
	c.sent[sendStep] = sr.next
	if rerr != nil {
		return nil, rerr
	}
	if sr.err != nil {
		return nil, sr.err
	}
	return in, nil
}

// sender sends the blobs of one step in the background, in order, from a
// fixed set of buffers, so that the caller builds the next blob while one
// goes out: a blob of several MB spends as long in protobuf, the
// transcript hash, HTTP/2 and TLS as it took to compute. The caller must
// not send on the step itself until finish.
type sender struct {
	c      *trainChannel
	step   string
	q      chan []byte
	free   chan []byte
	done   chan error
	seq    uint64
	cancel context.CancelFunc
}

func (c *trainChannel) startSender(ctx context.Context, step string, buffers, size int) *sender {
	sctx, cancel := context.WithCancel(ctx)
	s := &sender{c: c, step: step, q: make(chan []byte, buffers), free: make(chan []byte, buffers), done: make(chan error, 1),
		seq: c.sent[step], cancel: cancel}
	for range buffers {
		s.free <- make([]byte, 0, size)
	}
	go func() {
		var err error
		for b := range s.q {
			if err == nil {
				// After an error, keep taking blobs (and freeing their
				// buffers) so the caller never blocks; it learns of the
				// error from finish, and meanwhile from its own receives.
				s.seq, err = sendPieces(sctx, c.t, step, s.seq, b)
			}
			s.free <- b[:0]
		}
		s.done <- err
	}()
	return s
}

// buffer returns an empty buffer to fill and pass to send.
func (s *sender) buffer(ctx context.Context) ([]byte, error) {
	select {
	case b := <-s.free:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// send queues b, a buffer from buffer.
func (s *sender) send(b []byte) { s.q <- b }

// finish waits until every queued blob is sent and returns the first
// error.
func (s *sender) finish() error {
	close(s.q)
	err := <-s.done
	s.cancel()
	s.c.sent[s.step] = s.seq
	return err
}

// abort is for a caller that returns early: what is queued is dropped
// (the sends see a cancelled context) and the caller does not wait for a
// send blocked in the transport, which ends with the job's stream.
func (s *sender) abort() {
	s.cancel()
	close(s.q)
}

func (c *trainChannel) refuse(ctx context.Context, reason string) error {
	b, _ := json.Marshal(statsRefused{Reason: reason})
	c.t.Send(ctx, Msg{Step: "train.refused", Payload: b, Last: true})
	return fmt.Errorf("%w: %s", ErrTrainRefused, reason)
}

// approve runs this side's policy on a release of the peer's gradient (a
// refusal is sent to the peer) and then its audit hook, before any share.
func (c *trainChannel) approve(ctx context.Context, policy, onRelease func(context.Context, TrainRelease) error, rel TrainRelease) error {
	if policy != nil {
		if err := policy(ctx, rel); err != nil {
			return c.refuse(ctx, err.Error())
		}
	}
	if onRelease != nil {
		return onRelease(ctx, rel)
	}
	return nil
}

// ckg exchanges the collective-key shares under step (train.ckg,
// score.ckg).
func (c *trainChannel) ckg(ctx context.Context, sess *fedlearn.Session, step string) error {
	share, err := sess.KeyGenShare()
	if err != nil {
		return err
	}
	peer, err := c.exchange(ctx, step, share, step, 8<<20)
	if err != nil {
		return err
	}
	if err := sess.SetPeerKeyGenShare(peer); err != nil {
		return fmt.Errorf("protocol: %s: peer key share: %w", step, err)
	}
	return nil
}

// trainLimits bounds the peer's blobs before they are buffered: vectors of
// ⌈L/(N/2)⌉ packed chunks (a chunk is at most 2 polynomials of N residues
// of 8 primes here, generously), Results and shares of a known statistic
// count.
type trainLimits struct{ chunks, ct int }

func newTrainLimits(sess *fedlearn.Session, L int) trainLimits {
	n := sess.N()
	return trainLimits{chunks: (L + n/2 - 1) / (n / 2), ct: 64 + 2*n*8*8}
}

func (l trainLimits) vectors(k int) int   { return 64 + k*(6+l.chunks*(4+l.ct)) }
func (trainLimits) result(values int) int { return 64 + values*(1<<15+1)*8*4 }
func (trainLimits) share(values int) int  { return 4096 + values*4096 }

func digestOf(b []byte) []byte {
	d := sha256.Sum256(b)
	return d[:]
}

// bankStatistics names what the bank's Result releases to the bank.
func bankStatistics(bankNames []string) []string {
	return append(slices.Clone(bankNames), "(intercept)", "(validation_loss)")
}

// featureNames returns the configured names, or the spec's list when none.
func featureNames(names, spec []string) []string {
	if names == nil {
		return slices.Clone(spec)
	}
	return names
}

// RunTrainBank runs the bank side of a training job and returns its model
// part and the per-step reports.
func RunTrainBank(ctx context.Context, t Transport, cfg TrainBankConfig, progress func(string, float64)) (*TrainBankResult, error) {
	start := time.Now()
	if progress == nil {
		progress = func(string, float64) {}
	}
	spec := cfg.Spec
	L := len(cfg.Match)
	names := featureNames(cfg.FeatureNames, spec.BankFeatures)
	pB := len(names)
	if err := CheckExpansion(spec.BankFeatures, names); err != nil {
		return nil, err
	}
	if len(cfg.Features) != pB || len(cfg.Label) != L {
		return nil, fmt.Errorf("protocol: train: %d bank columns and %d labels over %d positions; the bank has %d features", len(cfg.Features), len(cfg.Label), L, pB)
	}
	if err := spec.checkShape(); err != nil {
		return nil, err
	}
	sess, err := fedlearn.NewSession(fedlearn.Bank, cfg.Params, trainSeed(cfg.JobID), cfg.Rand)
	if err != nil {
		return nil, err
	}
	c := newTrainChannel(t)
	if err := c.sendJSON(ctx, "train.hello", trainHello{L: L, Spec: spec.Digest(), Bank: pB, Names: names}); err != nil {
		return nil, err
	}
	var ph trainHello
	if err := c.recvJSON(ctx, "train.hello", &ph); err != nil {
		return nil, err
	}
	if err := CheckExpansion(spec.PartnerFeatures, ph.Names); err != nil {
		return nil, c.refuse(ctx, fmt.Sprintf("partner features: %v", err))
	}
	if ph.Partner != len(ph.Names) {
		return nil, c.refuse(ctx, fmt.Sprintf("partner features: %d announced, %d named", ph.Partner, len(ph.Names)))
	}
	pP := len(ph.Names)
	newBank := func(match []bool) (*vlr.Bank, error) {
		b, err := vlr.NewBank(sess, spec.Config(), cfg.Features, cfg.Label, match, pP)
		if err != nil {
			return nil, c.refuse(ctx, fmt.Sprintf("bank data: %v", err))
		}
		return b, nil
	}
	var b *vlr.Bank
	match := cfg.Match
	if !spec.DropsIncomplete() { // refuse bad data before any key exists
		if b, err = newBank(match); err != nil {
			return nil, err
		}
	}
	if err := c.ckg(ctx, sess, "train.ckg"); err != nil {
		return nil, err
	}
	res := &TrainBankResult{Length: L, PartnerNames: ph.Names}
	if spec.DropsIncomplete() {
		if match, res.PartnerIncomplete, err = completeRows(ctx, c, sess, match); err != nil {
			return nil, err
		}
		if b, err = newBank(match); err != nil {
			return nil, err
		}
	}
	res.TrainRows, res.ValRows = b.TrainRows(), b.ValRows()
	for _, m := range match {
		if m {
			res.Matched++
		}
	}
	lim := newTrainLimits(sess, L)
	progress("training", 0.05)
	epoch := 0
	for step := 0; !b.Done(); step++ {
		terms, err := b.EncryptResidualTerms()
		if err != nil {
			return nil, err
		}
		resid, err := c.exchange(ctx, "train.terms", terms, "train.resid", lim.vectors(1))
		if err != nil {
			return nil, err
		}
		bres, err := b.EvaluateBankGradient(resid)
		if err != nil {
			return nil, fmt.Errorf("protocol: train step %d: %w", step, err)
		}
		pres, err := c.exchange(ctx, "train.bres", bres, "train.pres", lim.result(pP))
		if err != nil {
			return nil, err
		}
		rel := TrainRelease{Step: step, Epoch: epoch, To: "partner", Statistics: slices.Clone(ph.Names), Digest: digestOf(pres)}
		if err := c.approve(ctx, cfg.Policy, cfg.OnRelease, rel); err != nil {
			return nil, err
		}
		bshare, err := b.ShareForPartner(pres)
		if err != nil {
			return nil, fmt.Errorf("protocol: train step %d: %w", step, err)
		}
		pshare, err := c.exchange(ctx, "train.bshare", bshare, "train.pshare", lim.share(pB+2))
		if err != nil {
			return nil, err
		}
		rep, err := b.ApplyGradient(bres, pshare)
		if err != nil {
			return nil, fmt.Errorf("protocol: train step %d: %w", step, err)
		}
		if err := c.sendJSON(ctx, "train.step", trainStep{Step: step, Epoch: rep.Epoch, EndOfEpoch: rep.EndOfEpoch, Stop: rep.Stop}); err != nil {
			return nil, err
		}
		te := TrainEpoch{Epoch: rep.Epoch, Step: step, ValLoss: rep.ValLoss, OnTraining: rep.OnTraining, ValAUC: math.NaN(), GradNorm: rep.GradNorm, EndOfEpoch: rep.EndOfEpoch, Stop: rep.Stop}
		if rep.EndOfEpoch && spec.ValidationAUC {
			if te.ValAUC, err = validationAUC(ctx, c, sess, b, cfg); err != nil {
				return nil, err
			}
		}
		te.Elapsed = time.Since(start)
		res.Steps = append(res.Steps, te)
		if cfg.OnStep != nil {
			cfg.OnStep(te)
		}
		if rep.EndOfEpoch {
			epoch++
			kind := "val_loss"
			if rep.OnTraining {
				kind = "train_loss"
			}
			msg := fmt.Sprintf("epoch %d/%d %s %.5f", epoch, spec.Epochs, kind, rep.ValLoss)
			if !math.IsNaN(te.ValAUC) {
				msg += fmt.Sprintf(" val_auc %.4f", te.ValAUC)
			}
			progress(msg, 0.05+0.9*float64(epoch)/float64(spec.Epochs))
		}
	}
	res.Epochs = epoch
	res.Stopped = "max_epochs"
	if epoch < spec.Epochs {
		res.Stopped = "early_stopping"
	}
	w := b.Weights()
	mean, sd := b.Standardisation()
	ic := w[pB]
	done := trainDone{N: int64(len(res.Steps))}
	if spec.PartnerOnly {
		// A partner-only model is the partner's to use: it gets the
		// intercept, the bank's whole part (one release, approved and
		// recorded like the gradients).
		rel := TrainRelease{Step: len(res.Steps), Epoch: epoch, To: "partner", Statistics: []string{"(intercept)"}, Digest: digestOf([]byte(fmt.Sprint(ic)))}
		if err := c.approve(ctx, cfg.Policy, cfg.OnRelease, rel); err != nil {
			return nil, err
		}
		done.Intercept = &ic
	}
	if err := c.sendJSON(ctx, "train.done", done); err != nil {
		return nil, err
	}
	var ack trainDone
	if err := c.recvJSON(ctx, "train.done", &ack); err != nil {
		return nil, err
	}
	res.Part = TrainModelPart{Features: slices.Clone(names), Weights: w[:pB], Intercept: &ic, Mean: slices.Clone(mean), SD: slices.Clone(sd)}
	progress("done", 1)
	return res, nil
}

// RunTrainPartner runs the partner side of a training job.
func RunTrainPartner(ctx context.Context, t Transport, cfg TrainPartnerConfig, progress func(string, float64)) (*TrainPartnerResult, error) {
	start := time.Now()
	if progress == nil {
		progress = func(string, float64) {}
	}
	spec := cfg.Spec
	names := featureNames(cfg.FeatureNames, spec.PartnerFeatures)
	pP := len(names)
	c := newTrainChannel(t)
	var h trainHello
	if err := c.recvJSON(ctx, "train.hello", &h); err != nil {
		return nil, err
	}
	shapeErr := spec.checkShape()
	bankErr := CheckExpansion(spec.BankFeatures, h.Names)
	switch {
	case !bytes.Equal(h.Spec, spec.Digest()):
		return nil, c.refuse(ctx, "model spec differs from the signed proposal")
	case h.L != cfg.Length:
		return nil, c.refuse(ctx, fmt.Sprintf("alignment length %d, this node has %d", h.L, cfg.Length))
	case shapeErr != nil:
		return nil, c.refuse(ctx, shapeErr.Error())
	case bankErr != nil:
		return nil, c.refuse(ctx, fmt.Sprintf("bank features: %v", bankErr))
	case h.Bank != len(h.Names):
		return nil, c.refuse(ctx, fmt.Sprintf("bank features: %d announced, %d named", h.Bank, len(h.Names)))
	case CheckExpansion(spec.PartnerFeatures, names) != nil || len(cfg.Features) != pP:
		return nil, c.refuse(ctx, "partner columns do not match the spec")
	}
	pB := len(h.Names)
	if cfg.Approve != nil {
		if err := cfg.Approve(ctx); err != nil {
			return nil, c.refuse(ctx, err.Error())
		}
	}
	sess, err := fedlearn.NewSession(fedlearn.Partner, cfg.Params, trainSeed(cfg.JobID), cfg.Rand)
	if err != nil {
		return nil, err
	}
	p, err := vlr.NewPartner(sess, spec.Config(), cfg.Features, pB)
	if err != nil {
		return nil, c.refuse(ctx, fmt.Sprintf("partner data: %v", err))
	}
	if err := c.sendJSON(ctx, "train.hello", trainHello{Partner: pP, Names: names}); err != nil {
		return nil, err
	}
	if err := c.ckg(ctx, sess, "train.ckg"); err != nil {
		return nil, err
	}
	if spec.DropsIncomplete() {
		if err := answerComplete(ctx, c, sess, cfg); err != nil {
			return nil, err
		}
	}
	lim := newTrainLimits(sess, cfg.Length)
	// Steps are bounded by the spec: epochs × steps per epoch.
	perEpoch := 1
	if spec.Batch > 0 {
		perEpoch = (cfg.Length + spec.Batch - 1) / spec.Batch
	}
	maxSteps := spec.Epochs * perEpoch
	res := &TrainPartnerResult{Length: cfg.Length, BankNames: h.Names}
	prevW, prevV := p.Weights(), make([]float64, pP)
	progress("training", 0.05)
	epoch := 0
	for step := 0; ; step++ {
		if step >= maxSteps {
			return nil, fmt.Errorf("%w: more than %d training steps", ErrUnexpected, maxSteps)
		}
		terms, err := c.recvBlob(ctx, "train.terms", lim.vectors(spec.Degree+1))
		if err != nil {
			return nil, err
		}
		resid, err := p.Residual(terms)
		if err != nil {
			return nil, fmt.Errorf("protocol: train step %d: %w", step, err)
		}
		if err := c.sendBlob(ctx, "train.resid", resid); err != nil {
			return nil, err
		}
		pres, err := p.EvaluatePartnerGradient()
		if err != nil {
			return nil, fmt.Errorf("protocol: train step %d: %w", step, err)
		}
		bres, err := c.exchange(ctx, "train.pres", pres, "train.bres", lim.result(pB+2))
		if err != nil {
			return nil, err
		}
		rel := TrainRelease{Step: step, Epoch: epoch, To: "bank", Statistics: bankStatistics(h.Names), Digest: digestOf(bres)}
		if err := c.approve(ctx, cfg.Policy, cfg.OnRelease, rel); err != nil {
			return nil, err
		}
		pshare, err := p.ShareForBank(bres)
		if err != nil {
			return nil, fmt.Errorf("protocol: train step %d: %w", step, err)
		}
		bshare, err := c.exchange(ctx, "train.pshare", pshare, "train.bshare", lim.share(pP))
		if err != nil {
			return nil, err
		}
		if err := p.ApplyGradient(pres, bshare); err != nil {
			return nil, fmt.Errorf("protocol: train step %d: %w", step, err)
		}
		// Own gradient from the heavy-ball update: v = w − w_prev,
		// g = (μ·v_prev − v)/η (λ·w included).
		w := p.Weights()
		var norm float64
		for j := range w {
			v := w[j] - prevW[j]
			g := (spec.Momentum*prevV[j] - v) / p.StepSize()
			norm += g * g
			prevV[j] = v
		}
		prevW = w
		var st trainStep
		if err := c.recvJSON(ctx, "train.step", &st); err != nil {
			return nil, err
		}
		if st.Step != step || st.Epoch != epoch || st.Epoch >= spec.Epochs {
			return nil, fmt.Errorf("%w: train.step %d of epoch %d, expected step %d of epoch %d", ErrUnexpected, st.Step, st.Epoch, step, epoch)
		}
		if st.EndOfEpoch && spec.ValidationAUC {
			if err := answerValidation(ctx, c, sess, p, cfg, st.Step, st.Epoch); err != nil {
				return nil, err
			}
		}
		te := TrainEpoch{Epoch: st.Epoch, Step: step, ValLoss: math.NaN(), ValAUC: math.NaN(), GradNorm: math.Sqrt(norm), EndOfEpoch: st.EndOfEpoch, Stop: st.Stop}
		te.Elapsed = time.Since(start)
		res.Steps = append(res.Steps, te)
		if cfg.OnStep != nil {
			cfg.OnStep(te)
		}
		if st.EndOfEpoch {
			epoch++
			progress(fmt.Sprintf("epoch %d/%d", epoch, spec.Epochs), 0.05+0.9*float64(epoch)/float64(spec.Epochs))
		}
		if st.Stop {
			break
		}
	}
	res.Epochs = epoch
	var done trainDone
	if err := c.recvJSON(ctx, "train.done", &done); err != nil {
		return nil, err
	}
	switch {
	case spec.PartnerOnly && (done.Intercept == nil || math.IsNaN(*done.Intercept) || math.IsInf(*done.Intercept, 0)):
		return nil, fmt.Errorf("%w: partner-only model without a finite intercept", ErrUnexpected)
	case !spec.PartnerOnly && done.Intercept != nil:
		return nil, fmt.Errorf("%w: intercept sent for a split model", ErrUnexpected)
	}
	if err := c.sendJSON(ctx, "train.done", trainDone{N: int64(len(res.Steps))}); err != nil {
		return nil, err
	}
	mean, sd := p.Standardisation()
	res.Part = TrainModelPart{Features: slices.Clone(names), Weights: p.Weights(), Intercept: done.Intercept, Mean: slices.Clone(mean), SD: slices.Clone(sd)}
	progress("done", 1)
	return res, nil
}

// validationAUC (bank, end of an epoch, spec validation_auc) learns the
// partner's current partial predictor at the held-out positions by a
// masked release and returns the AUC of u_B + u_P there (the partner's
// fixed point, 2^-20, cannot change the ranking beyond ties).
func validationAUC(ctx context.Context, c *trainChannel, sess *fedlearn.Session, b *vlr.Bank, cfg TrainBankConfig) (float64, error) {
	val := b.ValRows()
	mask := make([]bool, len(cfg.Match))
	for _, i := range val {
		mask[i] = true
	}
	uP, _, err := c.maskedQuery(ctx, sess, mask, "train.vmask", "train.vrel", nil)
	if err != nil {
		return 0, err
	}
	uB := b.UB()
	score, y := make([]float64, len(val)), make([]float64, len(val))
	for k, i := range val {
		score[k] = uB[i] + float64(uP[i])/(1<<ScoreScaleBits)
		y[k] = cfg.Label[i]
	}
	return fedlearn.AUC(score, y), nil
}

// answerValidation (partner) answers the bank's validation-AUC query with
// its current clipped partial predictor; each batch is approved by its
// policy and recorded before the release.
func answerValidation(ctx context.Context, c *trainChannel, sess *fedlearn.Session, p *vlr.Partner, cfg TrainPartnerConfig, step, epoch int) error {
	u, _, err := fixedPoint(p.UP())
	if err != nil {
		return err
	}
	onBatch := func(ctx context.Context, r ScoreRelease) error {
		rel := TrainRelease{Step: step, Epoch: epoch, Batch: r.Batch, To: "bank", Statistics: []string{ValidationPartial}, Digest: r.Digest}
		return c.approve(ctx, cfg.Policy, cfg.OnRelease, rel)
	}
	_, err = c.maskedAnswer(ctx, sess, u, "train.vmask", "train.vrel", onBatch, nil)
	return err
}

// completeRows (bank, spec missing: drop) learns the partner's
// completeness indicator at its matched positions by a masked release and
// returns match without the incomplete rows, and how many it left out.
func completeRows(ctx context.Context, c *trainChannel, sess *fedlearn.Session, match []bool) ([]bool, int, error) {
	ok, _, err := c.maskedQuery(ctx, sess, match, "train.cmask", "train.crel", nil)
	if err != nil {
		return nil, 0, err
	}
	out := slices.Clone(match)
	dropped := 0
	for i, m := range match {
		switch {
		case !m:
		case ok[i] == 1:
		case ok[i] == 0:
			out[i] = false
			dropped++
		default:
			return nil, 0, fmt.Errorf("%w: train.crel: completeness indicator %d at a matched position", ErrUnexpected, ok[i])
		}
	}
	if !slices.Contains(out, true) {
		return nil, 0, c.refuse(ctx, "missing: drop leaves no matched row with every feature")
	}
	return out, dropped, nil
}

// answerComplete (partner, spec missing: drop) answers the bank's
// completeness query: 1 where it has every feature of the model, 0 where
// one is missing; each batch is approved by its policy and recorded.
func answerComplete(ctx context.Context, c *trainChannel, sess *fedlearn.Session, cfg TrainPartnerConfig) error {
	if cfg.Incomplete != nil && len(cfg.Incomplete) != cfg.Length {
		return fmt.Errorf("protocol: train: completeness of %d positions, the alignment has %d", len(cfg.Incomplete), cfg.Length)
	}
	u := make([]int64, cfg.Length)
	for i := range u {
		if cfg.Incomplete == nil || !cfg.Incomplete[i] {
			u[i] = 1
		}
	}
	onBatch := func(ctx context.Context, r ScoreRelease) error {
		rel := TrainRelease{Batch: r.Batch, To: "bank", Statistics: []string{CompleteRows}, Digest: r.Digest}
		return c.approve(ctx, cfg.Policy, cfg.OnRelease, rel)
	}
	_, err := c.maskedAnswer(ctx, sess, u, "train.cmask", "train.crel", onBatch, nil)
	return err
}
