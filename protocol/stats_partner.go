package protocol

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/tandem-dev/tandem/fedlearn"
)

// Partner pipeline. The multiplier columns of a release (step C0) depend
// only on the partner's data, the public spec and Params, except for
// quantile rounds after the first (they depend on the bank's refinement
// request). So, right after the policy approved the job, a producer
// goroutine plans those releases and NTT-encodes their columns
// (fedlearn.EncodeColumns) while the collective key is generated and the
// bank's vectors arrive; the release loop multiplies the encoded batches
// (InnerProductsEncoded) as they come and frees them.
//
// Memory, per aligned position and per multiplier column: 16 bytes for an
// encoding (two 64-bit residues), 8 bytes for the int64 multiplier column
// while a batch is being built; plus the node's cached partner columns
// (9 bytes per position per data column). Encodings in flight are bounded
// by StatsPartnerConfig.EncodeBudget (default 1 GiB): columns are encoded
// in batches of at most half the budget, so when a job's columns do not
// fit (1e6 positions × 121 columns is 1.9 GB) the producer waits for the
// kernel to free a batch. Each batch is one part of its release: its own
// Result and its own decryption share (different ciphertexts, so never two
// shares of one ciphertext).

// DefaultEncodeBudget bounds the partner's encoded columns in flight.
const DefaultEncodeBudget = 1 << 30

// maxBatchColumns caps the columns of one part.
const maxBatchColumns = 512

// statsPart describes one part of a release on the wire.
type statsPart struct {
	Bytes   int `json:"bytes"`
	Columns int `json:"columns"`
}

// colSource produces a release's multiplier columns in order, a few at a
// time (next returns none at the end), then its public metadata.
type colSource struct {
	next   func() ([][]int64, error)
	finish func() (statsMeta, error)
}

// precomputable tells whether a release's columns depend only on the
// partner's side (everything but quantile rounds after the first).
func precomputable(rel StatsRelease) bool { return !rel.Quantile() || rel.Round == 1 }

func numericColumn(ctx context.Context, cfg *StatsPartnerConfig, col string) ([]float64, []bool, error) {
	vals, pres, err := cfg.Data.Numeric(ctx, col)
	if err != nil {
		return nil, nil, err
	}
	if len(vals) != cfg.Length || len(pres) != cfg.Length {
		return nil, nil, errors.New("column length differs from the alignment")
	}
	return vals, pres, nil
}

// source builds a release's column source (step C0). ivs are the bins of
// a quantile round after the first.
func source(ctx context.Context, cfg *StatsPartnerConfig, rel StatsRelease, ivs []StatsInterval) (*colSource, error) {
	meta := statsMeta{Index: rel.Index}
	if !rel.Binned {
		cols := rel.ColumnList()
		var plan fedlearn.NumericPlan
		f := 0
		return &colSource{
			next: func() ([][]int64, error) {
				if f == len(cols) {
					return nil, nil
				}
				vals, pres, err := numericColumn(ctx, cfg, cols[f])
				if err != nil {
					return nil, fmt.Errorf("column %s: %w", cols[f], err)
				}
				pl, mult, err := fedlearn.PlanNumeric(cfg.Params, []fedlearn.NumericColumn{{Values: vals, Present: pres, Bits: numericBits}})
				if err != nil {
					return nil, fmt.Errorf("column %s: %w", cols[f], err)
				}
				if f == 0 {
					plan = pl
				} else {
					plan.Features = append(plan.Features, pl.Features...)
					mult = mult[1:] // one all-ones count column per release
				}
				f++
				return mult, nil
			},
			finish: func() (statsMeta, error) {
				meta.Plan, _ = plan.MarshalBinary()
				return meta, nil
			},
		}, nil
	}
	bins := make([]int, cfg.Length)
	var nb int
	switch {
	case rel.Quantile():
		vals, pres, err := numericColumn(ctx, cfg, rel.Column)
		if err != nil {
			return nil, err
		}
		if rel.Round == 1 {
			lo, hi, err := quantileRange(vals, pres)
			if err != nil {
				return nil, err
			}
			meta.Range = []float64{lo, hi}
			ivs = round1Intervals(lo, hi, rel.Bins)
		}
		for i, x := range vals {
			bins[i] = -1
			if pres[i] {
				bins[i] = intervalOf(ivs, x)
			}
		}
		nb = len(ivs)
		meta.Labels = intervalLabels(ivs)
	case len(rel.Bins) > 0:
		vals, pres, err := numericColumn(ctx, cfg, rel.Column)
		if err != nil {
			return nil, err
		}
		for i, x := range vals {
			bins[i] = -1
			if pres[i] {
				bins[i] = binOf(rel.Bins, x)
			}
		}
		nb = len(rel.Bins) + 1
		meta.Labels = binLabels(rel.Bins)
	default:
		vals, err := cfg.Data.Categorical(ctx, rel.Column)
		if err != nil {
			return nil, err
		}
		if len(vals) != cfg.Length {
			return nil, errors.New("column length differs from the alignment")
		}
		cats := map[string]int{}
		for _, v := range vals {
			if v != "" {
				cats[v] = 0
			}
		}
		if len(cats) > maxCategories {
			return nil, fmt.Errorf("%d distinct values; crosstab allows at most %d (use histogram with bins)", len(cats), maxCategories)
		}
		if len(cats) == 0 {
			return nil, errors.New("column has no values")
		}
		for c := range cats {
			meta.Labels = append(meta.Labels, c)
		}
		sort.Strings(meta.Labels)
		for i, c := range meta.Labels {
			cats[c] = i
		}
		for i, v := range vals {
			bins[i] = -1
			if v != "" {
				bins[i] = cats[v]
			}
		}
		nb = len(meta.Labels)
	}
	if nb < 1 || nb > maxRoundBins {
		return nil, fmt.Errorf("%d bins (want 1..%d)", nb, maxRoundBins)
	}
	// Multipliers as fedlearn.PlanBinned lays them out (all-ones, then one
	// 0/1 indicator per bin), built a few bins at a time.
	b := -1
	const perCall = 8
	return &colSource{
		next: func() ([][]int64, error) {
			if b == -1 {
				b = 0
				ones := make([]int64, cfg.Length)
				for i := range ones {
					ones[i] = 1
				}
				return [][]int64{ones}, nil
			}
			if b == nb {
				return nil, nil
			}
			n := min(perCall, nb-b)
			cols := make([][]int64, n)
			for j := range cols {
				cols[j] = make([]int64, cfg.Length)
			}
			for i, x := range bins {
				if x >= b && x < b+n {
					cols[x-b][i] = 1
				}
			}
			b += n
			return cols, nil
		},
		finish: func() (statsMeta, error) {
			meta.Plan, _ = fedlearn.BinnedPlan{L: cfg.Length, NumBins: []int{nb}}.MarshalBinary()
			return meta, nil
		},
	}, nil
}

// batches feeds src's columns to fn in batches of size columns.
func batches(src *colSource, size int, fn func([][]int64) error) error {
	var pend [][]int64
	for {
		cols, err := src.next()
		if err != nil {
			return err
		}
		pend = append(pend, cols...)
		for len(pend) >= size || (len(cols) == 0 && len(pend) > 0) {
			n := min(size, len(pend))
			if err := fn(pend[:n:n]); err != nil {
				return err
			}
			pend = append([][]int64(nil), pend[n:]...) // drop the batch

		}
		if len(cols) == 0 {
			return nil
		}
	}
}

// byteBudget bounds the bytes of encodings in flight.
type byteBudget struct {
	mu          sync.Mutex
	cond        *sync.Cond
	free, limit int64
}

func newByteBudget(n int64) *byteBudget {
	b := &byteBudget{free: n, limit: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.free < n && ctx.Err() == nil {
		b.cond.Wait()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.free -= n
	return nil
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.cond.Broadcast()
	b.mu.Unlock()
}

// encItem is one encoded batch (ec set) or the end of a release (meta set)
// or a failure, from the producer to the release loop, in release order.
type encItem struct {
	q     int
	ec    *fedlearn.EncodedColumns
	cols  int
	bytes int64
	meta  *statsMeta
	err   error
}

// produce encodes the precomputable releases in order (see the file
// comment).
func produce(ctx context.Context, cfg *StatsPartnerConfig, sess *fedlearn.Session, rels []StatsRelease, bud *byteBudget, batchCols int, colBytes int64, out chan<- encItem) {
	send := func(it encItem) bool {
		select {
		case out <- it:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for q, rel := range rels {
		if !precomputable(rel) {
			continue
		}
		src, err := source(ctx, cfg, rel, nil)
		if err == nil {
			err = batches(src, batchCols, func(cols [][]int64) error {
				n := min(int64(len(cols))*colBytes, bud.total())
				if err := bud.acquire(ctx, n); err != nil {
					return err
				}
				ec, err := sess.EncodeColumns(cols)
				if err != nil {
					bud.release(n)
					return err
				}
				if !send(encItem{q: q, ec: ec, cols: len(cols), bytes: n}) {
					bud.release(n)
					return ctx.Err()
				}
				return nil
			})
		}
		var meta statsMeta
		if err == nil {
			meta, err = src.finish()
		}
		if err != nil {
			send(encItem{q: q, err: fmt.Errorf("protocol: stats release %d (%s): %w", q, rel.Column, err)})
			return
		}
		if !send(encItem{q: q, meta: &meta}) {
			return
		}
	}
}

func (b *byteBudget) total() int64 { return b.limit }

// RunStatsPartner runs the partner side.
func RunStatsPartner(ctx context.Context, t Transport, cfg StatsPartnerConfig, progress func(string, float64)) (*StatsPartnerResult, error) {
	if progress == nil {
		progress = func(string, float64) {}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	var h statsHello
	if err := recvJSON(ctx, t, "stats.hello", &h); err != nil {
		return nil, err
	}
	res := &StatsPartnerResult{Length: cfg.Length, Groups: h.Groups}
	refuse := func(reason string) error {
		sendJSON(ctx, t, "stats.refused", statsRefused{Reason: reason})
		return fmt.Errorf("%w: %s", ErrStatsRefused, reason)
	}
	switch {
	case !bytes.Equal(h.Spec, cfg.Spec.Digest()):
		return nil, refuse("spec differs from the signed proposal")
	case h.L != cfg.Length:
		return nil, refuse(fmt.Sprintf("alignment length %d, this node has %d", h.L, cfg.Length))
	case h.Groups < 1 || h.Groups > MaxStatsGroups:
		return nil, refuse(fmt.Sprintf("%d bank groups (at most %d)", h.Groups, MaxStatsGroups))
	case h.Label != cfg.Spec.NeedsLabel():
		return nil, refuse("label vectors do not match the spec")
	}
	rels := cfg.Spec.Releases(h.Groups)
	decs, err := cfg.Policy(ctx, rels)
	if err == nil && len(decs) != len(rels) {
		err = errors.New("policy answered for a different number of releases")
	}
	if err != nil {
		return nil, refuse(err.Error())
	}
	if err := sendJSON(ctx, t, "stats.hello", struct{}{}); err != nil {
		return nil, err
	}
	sess, err := fedlearn.NewSession(fedlearn.Partner, cfg.Params, statsSeed(cfg.JobID), cfg.Rand)
	if err != nil {
		return nil, err
	}
	// Start encoding while the key is generated and the vectors arrive.
	budget := cfg.EncodeBudget
	if budget <= 0 {
		budget = DefaultEncodeBudget
	}
	chunks := (cfg.Length + sess.N() - 1) / sess.N()
	colBytes := int64(chunks) * int64(sess.N()) * 16
	batchCols := int(min(max(budget/2/colBytes, 1), maxBatchColumns))
	bud := newByteBudget(budget)
	pctx, stop := context.WithCancel(ctx)
	items := make(chan encItem)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		produce(pctx, &cfg, sess, rels, bud, batchCols, colBytes, items)
	}()
	defer func() {
		stop()
		wg.Wait()
	}()

	if err := exchangeCKG(ctx, t, sess); err != nil {
		return nil, err
	}
	// 3. receive the bank's vectors: nvec × ⌈L/N⌉ ciphertexts.
	nvec := h.Groups
	if h.Label {
		nvec += 2
	}
	vecs := make([][][]byte, nvec)
	var seq uint64
	for v := range vecs {
		for k := range chunks {
			m, err := expect(ctx, t, "stats.vec", seq)
			if err != nil {
				return nil, err
			}
			seq++
			if m.Last != (v == nvec-1 && k == chunks-1) {
				return nil, fmt.Errorf("%w: stats.vec: %d vectors × %d chunks expected", ErrUnexpected, nvec, chunks)
			}
			vecs[v] = append(vecs[v], m.Payload)
		}
		progress("receiving", 0.3*float64(v+1)/float64(nvec))
	}
	// 4. releases.
	var resSeq, shareSeq uint64
	var qPrev []StatsInterval // bins of the latest quantile round
	for q, rel := range rels {
		fail := func(err error) error { return fmt.Errorf("protocol: stats release %d (%s): %w", q, rel.Column, err) }
		sel := make([][][]byte, len(rel.Vectors))
		for i, v := range rel.Vectors {
			sel[i] = vecs[v]
		}
		var parts [][]byte
		var partCols []int
		var meta statsMeta
		if precomputable(rel) {
			for done := false; !done; {
				var it encItem
				select {
				case it = <-items:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				switch {
				case it.err != nil:
					return nil, it.err
				case it.q != q:
					return nil, fail(errors.New("internal: encoded batch out of order"))
				case it.meta != nil:
					meta, done = *it.meta, true
				default:
					r, err := sess.InnerProductsEncoded(sel, it.ec)
					bud.release(it.bytes)
					if err != nil {
						return nil, fail(err)
					}
					parts, partCols = append(parts, r), append(partCols, it.cols)
				}
			}
			if rel.Quantile() {
				if err := checkRange(meta.Range); err != nil {
					return nil, fail(err)
				}
				qPrev = round1Intervals(meta.Range[0], meta.Range[1], rel.Bins)
			}
		} else {
			var rq statsRefine
			if err := recvJSONSeq(ctx, t, "stats.refine", uint64(q), &rq); err != nil {
				return nil, err
			}
			if rq.Index != q {
				return nil, fmt.Errorf("%w: stats.refine#%d for release %d", ErrUnexpected, q, rq.Index)
			}
			if err := checkTargets(rq.Targets, len(qPrev), rel.MaxTargets); err != nil {
				return nil, fail(err)
			}
			if len(rq.Targets) == 0 { // nothing left to refine: no release
				qPrev = nil
				continue
			}
			qPrev = refineIntervals(qPrev, rq.Targets)
			src, err := source(ctx, &cfg, rel, qPrev)
			if err != nil {
				return nil, fail(err)
			}
			err = batches(src, batchCols, func(cols [][]int64) error {
				r, err := sess.InnerProducts(sel, cols)
				parts, partCols = append(parts, r), append(partCols, len(cols))
				return err
			})
			if err == nil {
				meta, err = src.finish()
			}
			if err != nil {
				return nil, fail(err)
			}
		}
		if rel.Quantile() {
			rel.Intervals = qPrev
		}
		mults := 0
		for _, c := range partCols {
			mults += c
		}
		d := decs[q]
		meta.Epsilon = d.Epsilon
		nv := len(rel.Vectors)
		if d.Epsilon > 0 {
			noise, comps, err := statsNoise(cfg.Rand, rel, meta, mults, d.Epsilon)
			if err != nil {
				return nil, err
			}
			meta.Noise = comps
			off := 0
			for p, c := range partCols {
				pn := make([]int64, 0, nv*c)
				for v := range nv {
					pn = append(pn, noise[v*mults+off:v*mults+off+c]...)
				}
				if parts[p], err = sess.AddNoise(parts[p], pn); err != nil {
					return nil, err
				}
				off += c
			}
		}
		hd := sha256.New()
		for p, r := range parts {
			meta.Parts = append(meta.Parts, statsPart{Bytes: len(r), Columns: partCols[p]})
			hd.Write(r)
		}
		values := nv * mults
		if cfg.OnRelease != nil {
			if err := cfg.OnRelease(ctx, rel, d, values, hd.Sum(nil)); err != nil {
				return nil, err
			}
		}
		shares := make([][]byte, len(parts))
		for p, r := range parts {
			if shares[p], err = sess.ReleaseShare(r, fedlearn.Bank); err != nil {
				return nil, err // ErrShareReused: abort; a new attempt has new keys
			}
		}
		mb, err := json.Marshal(meta)
		if err != nil {
			return nil, err
		}
		if err := t.Send(ctx, Msg{Step: "stats.meta", Seq: uint64(q), Payload: mb, Last: true}); err != nil {
			return nil, err
		}
		for p, r := range parts {
			for off := 0; off < len(r); off += MaxPayload {
				end := min(off+MaxPayload, len(r))
				if err := t.Send(ctx, Msg{Step: "stats.result", Seq: resSeq, Payload: r[off:end], Last: end == len(r)}); err != nil {
					return nil, err
				}
				resSeq++
			}
			if err := t.Send(ctx, Msg{Step: "stats.share", Seq: shareSeq, Payload: shares[p], Last: p == len(parts)-1}); err != nil {
				return nil, err
			}
			shareSeq++
		}
		res.Releases = append(res.Releases, StatsReleaseEntry{Column: rel.Column, Columns: rel.Columns, Kinds: rel.Kinds, Round: rel.Round, Values: values, Epsilon: d.Epsilon})
		res.Epsilon += d.Epsilon
		progress("releasing", 0.3+0.7*float64(q+1)/float64(len(rels)))
	}
	if err := sendJSON(ctx, t, "stats.done", psiDone{N: int64(len(res.Releases))}); err != nil {
		return nil, err
	}
	var ack psiDone
	if err := recvJSON(ctx, t, "stats.done", &ack); err != nil {
		return nil, err
	}
	return res, nil
}

// recvJSONSeq receives step#seq and decodes its JSON payload.
func recvJSONSeq(ctx context.Context, t Transport, step string, seq uint64, v any) error {
	m, err := expect(ctx, t, step, seq)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(m.Payload, v); err != nil {
		return fmt.Errorf("%w: %s#%d: %v", ErrUnexpected, step, seq, err)
	}
	return nil
}
