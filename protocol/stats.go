package protocol

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"

	"github.com/tandem-dev/tandem/fedlearn"
)

// Statistics protocol (issue 5, DESIGN §4), bank B (initiator: group and
// label columns, match indicator) and partner P (responder: plaintext
// feature columns), over the L positions of a PSI alignment:
//
//	1. B→P stats.hello   {L, G groups, label vectors?, spec digest}
//	   P: derives the releases from the signed spec, asks its policy engine
//	      to approve ALL of them (columns, groups, ε) before any key exists;
//	      refusal: P→B stats.refused {reason}, both fail, nothing released.
//	   P→B stats.hello   {}
//	2. B→P stats.ckg, P→B stats.ckg      fedlearn K1/K2: collective key
//	   P: starts planning and NTT-encoding the columns of every release
//	      that depends only on its data (all but quantile rounds > 1) in
//	      the background, bounded by EncodeBudget (stats_partner.go)
//	3. B→P stats.vec#0..  fedlearn E1: ⌈L/N⌉ ciphertexts per bank vector
//	      (m⊙[group=g] for each group, then m⊙[label=0], m⊙[label=1]),
//	      one 262 KB ciphertext per message
//	4. per release q (numeric entries asking the same kinds share one
//	   release; a quantile entry is `rounds` releases):
//	   quantile round r > 1 only: B→P stats.refine#q {targets: indices of
//	      round r-1 bins to split}; empty: nothing to refine, both skip q
//	   P: C0 plan + C1 inner products (in parts of ≤ half the encode
//	      budget's columns, one Result each) + C2 DP noise, then
//	      onRelease (the node's audit record, digest of all parts) and R1
//	      one decryption share per part
//	   P→B stats.meta#q {plan, bin labels, published range, noise, parts},
//	   then per part stats.result#… (≤ 1 MiB pieces) and stats.share#…
//	   B: R2 decrypt, S1 decode, k-suppression, WOE/IV, TGI, quantiles
//	5. P→B stats.done, B→P stats.done
//
// What each side learns (semi-honest; beyond its own input):
//
//   - Partner: L (it already has it), the number of bank groups G and
//     whether label vectors are used (from the vector count), the spec (it
//     signed it), cmax = 1 of every bank vector. No group name, no match
//     indicator, no statistic: it never decrypts anything. Quantiles: the
//     refinement requests, i.e. for each round which of its bins hold a
//     requested quantile of the matched rows of some group (or overall) —
//     coarse quantile locations of the bank's customers among its users,
//     at the resolution of the previous round, without knowing which
//     group or probability each bin serves. Bounded: at most
//     (G+1)·|probabilities| bins per round (MaxTargets), checked.
//   - Bank: per release, the released aggregates per group: matched-and-
//     present counts, missing counts, Σx and Σx² at 2^-s precision,
//     histogram/crosstab cells, the label histogram behind WOE/IV; plus the
//     public plan (scale exponent s ≈ ⌈log2 max|x|⌉ over the partner's
//     column, whether it has missing values) and the crosstab category
//     names.
//   - Bank, quantiles (histogram refinement): round 1 releases the
//     per-group histogram of the column over 16 equal bins of the
//     partner's published range (or the spec's bins inside it), where the
//     range is the min and max of the partner's whole column (all its
//     users, not only matched ones) rounded outwards to a multiple of
//     2^(e-4), 2^e > max|x| — about 4 bits of each extreme beyond s. Round
//     r > 1 releases the per-group counts of 16 sub-bins (fewer when many
//     bins are refined) of each refined bin. So the bank node holds these
//     coarse and refined histograms (decrypted, in memory) exactly like a
//     histogram release; the job result shows only, per group and
//     probability, the finest interval holding ≥ k rows with its row count
//     and an interpolated value (type-1 quantile: the ⌈p·n⌉-th smallest
//     value lies in the interval). Each round is a release: approved by
//     the policy with the job, audited, counted against ε (with DP the
//     counts are noisy and the quantile derived).

// Minimum cell size k, honestly: the bank node decrypts exact (or DP-
// noised) totals, and suppression runs on the bank, after decryption
// (decodeRelease): cells below k, and complementary cells so that shown
// totals minus shown cells do not give them back, are withheld from the
// job result (value and row count cleared). That protects small cells from
// the bank's analysts, reports and anything downstream of the result, not
// from a dishonest bank node, which can read the decrypted totals in
// memory or choose one-hot vectors. Against the bank node itself the
// partner's protections are its policy (which columns and groups, how
// many releases) and DP noise added under encryption before its share.

// ErrStatsRefused is returned on both sides when the partner's policy
// engine refuses a release. The job fails; nothing was released. The
// operator must change the spec or the agreement.
var ErrStatsRefused = errors.New("protocol: stats release refused by the partner's policy")

// StatsData gives the partner's columns over the L aligned positions.
type StatsData interface {
	// Numeric returns a numeric column: values and presence per position.
	// Both methods may be called concurrently and repeatedly for a column;
	// callers do not modify the slices.
	Numeric(ctx context.Context, column string) (values []float64, present []bool, err error)
	// Categorical returns a column's text per position ("" = missing).
	Categorical(ctx context.Context, column string) ([]string, error)
}

// StatsDecision is the partner policy's answer for one release.
type StatsDecision struct {
	// Epsilon > 0 adds Laplace noise under encryption before the share
	// (ε split evenly over the release's components); 0 releases exactly.
	Epsilon float64
	// Checks names the policy checks applied (for the audit record).
	Checks []string
}

// StatsBankConfig parameterises the bank side.
type StatsBankConfig struct {
	JobID  string
	Spec   *StatsSpec
	Params fedlearn.Params
	Rand   io.Reader // key share; nil = crypto/rand
	// Match is the match indicator over the L positions.
	Match []bool
	// Group is the group index per position (-1: no group); nil = one
	// group. GroupNames names them (the partner never sees the names).
	Group      []int
	GroupNames []string
	// Label is the 0/1 label per position (-1: missing); needed when the
	// spec asks for woe_iv.
	Label []int8
	// MinCellSize k: cells with fewer rows are suppressed in the result.
	MinCellSize int64
}

// StatsPartnerConfig parameterises the partner side.
type StatsPartnerConfig struct {
	JobID  string
	Spec   *StatsSpec
	Params fedlearn.Params
	Rand   io.Reader // key share, flooding and DP noise; nil = crypto/rand
	Length int       // L of the alignment
	Data   StatsData
	// Policy approves every release before any key is generated, all or
	// none; an error refuses the job (its text goes to the bank).
	Policy func(ctx context.Context, rel []StatsRelease) ([]StatsDecision, error)
	// OnRelease runs right before the shares of a release are produced
	// (the node writes its audit record); an error aborts without a share.
	// digest is SHA-256 of the release's Result parts, in order.
	OnRelease func(ctx context.Context, r StatsRelease, d StatsDecision, values int, digest []byte) error
	// EncodeBudget bounds the bytes of encoded columns held at once
	// (0: DefaultEncodeBudget); see stats_partner.go.
	EncodeBudget int64
}

// StatsNoise describes DP noise added to a statistic: Laplace noise of
// scale Scale (in the statistic's units) from ε = Epsilon. "derived"
// marks a statistic computed from noisy ones.
type StatsNoise struct {
	Mechanism string  `json:"mechanism"`
	Epsilon   float64 `json:"epsilon,omitempty"`
	Scale     float64 `json:"scale,omitempty"`
}

// StatsCell is one value of the result: a statistic of a column for a
// group (and bin), the rows it rests on and the noise added. Value is nil
// when suppressed or undefined.
type StatsCell struct {
	Column     string      `json:"column"`
	Statistic  string      `json:"statistic"`
	Group      string      `json:"group"`
	Bin        string      `json:"bin,omitempty"`
	Value      *float64    `json:"value"`
	Exact      string      `json:"exact,omitempty"` // exact rational for sums
	Rows       int64       `json:"rows"`
	Suppressed bool        `json:"suppressed,omitempty"`
	Noise      *StatsNoise `json:"noise,omitempty"`
	// Quantiles: the probability, and the interval [lo, hi) that holds the
	// quantile (Rows are the rows in it; Value is interpolated inside it).
	Probability float64   `json:"probability,omitempty"`
	Interval    []float64 `json:"interval,omitempty"`
}

// StatsResult is the bank's answer.
type StatsResult struct {
	Length      int         `json:"alignment_length"`
	Matched     int         `json:"matched"`
	GroupBy     string      `json:"group_by,omitempty"`
	Groups      []string    `json:"groups"`
	Label       string      `json:"label,omitempty"`
	MinCellSize int64       `json:"min_cell_size"`
	Releases    int         `json:"releases"`
	Epsilon     float64     `json:"epsilon_spent"`
	Cells       []StatsCell `json:"cells"`
}

// StatsPartnerResult is the partner's summary: what it released, no value
// and nothing about membership.
type StatsPartnerResult struct {
	Length   int                 `json:"alignment_length"`
	Groups   int                 `json:"bank_groups"`
	Releases []StatsReleaseEntry `json:"releases"`
	Epsilon  float64             `json:"epsilon_spent"`
}

// StatsReleaseEntry is one approved release on the partner.
type StatsReleaseEntry struct {
	Column  string   `json:"column"`
	Columns []string `json:"columns,omitempty"`
	Kinds   []string `json:"kinds"`
	Round   int      `json:"round,omitempty"`
	Values  int      `json:"values"`
	Epsilon float64  `json:"epsilon"`
}

type statsHello struct {
	L      int    `json:"length"`
	Groups int    `json:"groups"`
	Label  bool   `json:"label"`
	Spec   []byte `json:"spec_digest"`
}

type statsRefused struct {
	Reason string `json:"reason"`
}

type statsNoiseComp struct {
	Component   string  `json:"component"` // count, present, sum, sumsq, bins
	Column      string  `json:"column,omitempty"`
	Epsilon     float64 `json:"epsilon"`
	Sensitivity float64 `json:"sensitivity"` // in encoded (fixed-point) units
}

type statsMeta struct {
	Index   int              `json:"index"`
	Plan    []byte           `json:"plan"`
	Labels  []string         `json:"labels,omitempty"`
	Range   []float64        `json:"range,omitempty"` // quantile round 1: published [lo, hi)
	Parts   []statsPart      `json:"parts"`
	Epsilon float64          `json:"epsilon"`
	Noise   []statsNoiseComp `json:"noise,omitempty"`
}

// statsSeed is the public seed of the collective key's common random
// polynomial: both sides derive it from the job id.
func statsSeed(jobID string) [32]byte {
	return sha256.Sum256([]byte("tandem/v1 stats ckg\n" + jobID))
}

// numericBits is the fixed-point magnitude of partner values (max|x̂| <
// 2^numericBits), fedlearn's default.
const numericBits = 30

// RunStatsBank runs the bank side and returns the statistics.
func RunStatsBank(ctx context.Context, t Transport, cfg StatsBankConfig, progress func(string, float64)) (*StatsResult, error) {
	if progress == nil {
		progress = func(string, float64) {}
	}
	L := len(cfg.Match)
	groups := 1
	if cfg.Group != nil {
		groups = len(cfg.GroupNames)
		if len(cfg.Group) != L || groups < 1 || groups > MaxStatsGroups {
			return nil, fmt.Errorf("protocol: stats: %d groups over %d positions (want 1..%d)", groups, len(cfg.Group), MaxStatsGroups)
		}
	}
	needLabel := cfg.Spec.NeedsLabel()
	if needLabel && len(cfg.Label) != L {
		return nil, errors.New("protocol: stats: woe_iv needs the label over every position")
	}
	res := &StatsResult{Length: L, GroupBy: cfg.Spec.GroupBy, MinCellSize: cfg.MinCellSize}
	if needLabel {
		res.Label = cfg.Spec.Label
	}
	res.Groups = []string{"all"}
	if cfg.Group != nil {
		res.Groups = slices.Clone(cfg.GroupNames)
	}
	for _, m := range cfg.Match {
		if m {
			res.Matched++
		}
	}
	// 1. hello
	if err := sendJSON(ctx, t, "stats.hello", statsHello{L: L, Groups: groups, Label: needLabel, Spec: cfg.Spec.Digest()}); err != nil {
		return nil, err
	}
	m, err := t.Recv(ctx)
	if err != nil {
		return nil, err
	}
	if m.Step == "stats.refused" {
		var r statsRefused
		json.Unmarshal(m.Payload, &r)
		return nil, fmt.Errorf("%w: %s", ErrStatsRefused, r.Reason)
	}
	if m.Step != "stats.hello" {
		return nil, outOfOrder(m, "stats.hello", 0)
	}
	// 2. collective key
	sess, err := fedlearn.NewSession(fedlearn.Bank, cfg.Params, statsSeed(cfg.JobID), cfg.Rand)
	if err != nil {
		return nil, err
	}
	if err := exchangeCKG(ctx, t, sess); err != nil {
		return nil, err
	}
	// 3. encrypted vectors: E0 then E1
	progress("encrypting", 0.05)
	vecs := bankVectors(cfg, groups, needLabel)
	var seq uint64
	for v, vec := range vecs {
		cts, err := sess.EncryptVector(vec)
		if err != nil {
			return nil, err
		}
		for k, ct := range cts {
			last := v == len(vecs)-1 && k == len(cts)-1
			if err := t.Send(ctx, Msg{Step: "stats.vec", Seq: seq, Payload: ct, Last: last, Total: uint64(len(vecs) * len(cts))}); err != nil {
				return nil, err
			}
			seq++
		}
		progress("encrypting", 0.05+0.25*float64(v+1)/float64(len(vecs)))
	}
	// 4. releases
	rels := cfg.Spec.Releases(groups)
	var resSeq, shareSeq uint64
	var chain *quantileChain
	for q, rel := range rels {
		if rel.Quantile() {
			if rel.Round == 1 {
				chain = newQuantileChain(rel, res.Groups)
			} else {
				chain.targets = chain.nextTargets(cfg.MinCellSize, rel.Precision)
				if len(chain.ivs) == 0 {
					chain.targets = nil
				}
				rb, _ := json.Marshal(statsRefine{Index: q, Targets: chain.targets})
				if err := t.Send(ctx, Msg{Step: "stats.refine", Seq: uint64(q), Payload: rb, Last: true}); err != nil {
					return nil, err
				}
			}
		}
		skipped := rel.Quantile() && rel.Round > 1 && len(chain.targets) == 0
		if !skipped {
			totals, meta, err := recvRelease(ctx, t, q, rel, &resSeq, &shareSeq, sess, len(cfg.Match))
			if err != nil {
				return nil, err
			}
			var cells []StatsCell
			if rel.Quantile() {
				err = chain.decode(rel, meta, totals, len(cfg.Match))
			} else {
				cells, err = decodeRelease(cfg, rel, meta, totals, res.Groups)
			}
			if err != nil {
				return nil, fmt.Errorf("protocol: stats release %d (%s): %w", q, rel.Column, err)
			}
			res.Cells = append(res.Cells, cells...)
			res.Releases++
			res.Epsilon += meta.Epsilon
		} else {
			chain.ivs = nil
		}
		if rel.Quantile() && rel.Round == rel.Rounds {
			res.Cells = append(res.Cells, chain.cells(cfg.MinCellSize, rel.Precision)...)
		}
		progress("releasing", 0.3+0.7*float64(q+1)/float64(len(rels)))
	}
	// 5. done
	var done psiDone
	if err := recvJSON(ctx, t, "stats.done", &done); err != nil {
		return nil, err
	}
	if err := sendJSON(ctx, t, "stats.done", psiDone{N: int64(res.Releases)}); err != nil {
		return nil, err
	}
	return res, nil
}

// bankVectors builds the bank's 0/1 vectors (step E0): one per group, then
// the label vectors.
func bankVectors(cfg StatsBankConfig, groups int, label bool) [][]int64 {
	L := len(cfg.Match)
	var out [][]int64
	if cfg.Group == nil {
		v := make([]int64, L)
		for i, m := range cfg.Match {
			if m {
				v[i] = 1
			}
		}
		out = append(out, v)
	} else {
		out, _ = fedlearn.GroupVectors(cfg.Match, cfg.Group, groups)
	}
	if label {
		lab := make([]int, L)
		for i, l := range cfg.Label {
			lab[i] = int(l)
		}
		lv, _ := fedlearn.GroupVectors(cfg.Match, lab, 2)
		out = append(out, lv...)
	}
	return out
}

// recvRelease receives release q (meta, then each part's Result and
// share), decrypts the parts and returns the totals in [vector][multiplier]
// order with the meta.
func recvRelease(ctx context.Context, t Transport, q int, rel StatsRelease, resSeq, shareSeq *uint64, sess *fedlearn.Session, L int) ([]int64, statsMeta, error) {
	var meta statsMeta
	mm, err := expect(ctx, t, "stats.meta", uint64(q))
	if err != nil {
		return nil, meta, err
	}
	if err := json.Unmarshal(mm.Payload, &meta); err != nil || meta.Index != q {
		return nil, meta, fmt.Errorf("%w: stats.meta#%d", ErrUnexpected, q)
	}
	var mults int
	if rel.Binned {
		pl, err := fedlearn.ParseBinnedPlan(meta.Plan, L)
		if err != nil {
			return nil, meta, fmt.Errorf("protocol: stats release %d: %w", q, err)
		}
		mults = pl.Multipliers()
	} else {
		pl, err := fedlearn.ParseNumericPlan(meta.Plan, L)
		if err != nil {
			return nil, meta, fmt.Errorf("protocol: stats release %d: %w", q, err)
		}
		mults = pl.Multipliers()
	}
	sum := 0
	for _, p := range meta.Parts {
		if p.Columns < 1 || p.Columns > mults {
			sum = -1
			break
		}
		sum += p.Columns
	}
	if sum != mults {
		return nil, meta, fmt.Errorf("%w: stats.meta#%d: parts do not cover the plan's %d multipliers", ErrUnexpected, q, mults)
	}
	nv := len(rel.Vectors)
	totals := make([]int64, nv*mults)
	off := 0
	for _, p := range meta.Parts {
		result, next, err := recvResult(ctx, t, *resSeq, p.Bytes, nv*p.Columns)
		if err != nil {
			return nil, meta, err
		}
		*resSeq = next
		sm, err := expect(ctx, t, "stats.share", *shareSeq)
		if err != nil {
			return nil, meta, err
		}
		*shareSeq++
		part, err := sess.Decrypt(result, sm.Payload)
		if err != nil {
			return nil, meta, fmt.Errorf("protocol: stats release %d: %w", q, err)
		}
		if len(part) != nv*p.Columns {
			return nil, meta, fmt.Errorf("%w: stats release %d: part of %d values, want %d", ErrUnexpected, q, len(part), nv*p.Columns)
		}
		for v := range nv {
			copy(totals[v*mults+off:], part[v*p.Columns:(v+1)*p.Columns])
		}
		off += p.Columns
	}
	return totals, meta, nil
}

func exchangeCKG(ctx context.Context, t Transport, sess *fedlearn.Session) error {
	share, err := sess.KeyGenShare()
	if err != nil {
		return err
	}
	if err := t.Send(ctx, Msg{Step: "stats.ckg", Payload: share, Last: true}); err != nil {
		return err
	}
	m, err := expect(ctx, t, "stats.ckg", 0)
	if err != nil {
		return err
	}
	if err := sess.SetPeerKeyGenShare(m.Payload); err != nil {
		return fmt.Errorf("protocol: stats: peer key share: %w", err)
	}
	return nil
}

// recvResult reassembles one Result of the given number of values from
// stats.result pieces.
func recvResult(ctx context.Context, t Transport, seq uint64, size, values int) ([]byte, uint64, error) {
	// An LWE ciphertext is at most (N+1) residues of a few primes (N ≤
	// 2^15); bound the announced size before allocating (fedlearn re-checks
	// exactly).
	limit := 64 + values*(1<<15+1)*8*4
	if size < 1 || size > limit {
		return nil, seq, fmt.Errorf("%w: result of %d bytes", ErrUnexpected, size)
	}
	buf := make([]byte, 0, min(size, 64<<20))
	for {
		m, err := expect(ctx, t, "stats.result", seq)
		if err != nil {
			return nil, seq, err
		}
		seq++
		buf = append(buf, m.Payload...)
		if len(buf) > size {
			return nil, seq, fmt.Errorf("%w: result longer than announced", ErrUnexpected)
		}
		if m.Last {
			break
		}
	}
	if len(buf) != size {
		return nil, seq, fmt.Errorf("%w: result of %d bytes, announced %d", ErrUnexpected, len(buf), size)
	}
	return buf, seq, nil
}

// statsNoise draws the DP noise of a release (step C2): ε is split evenly
// over its components, each with the L1 sensitivity of one row (a row is
// in at most one group vector and one label vector, so sensitivities
// double when both families are multiplied). Counts get discrete Laplace
// noise; fixed-point sums get Laplace noise rounded to an integer and
// split over the limbs.
func statsNoise(r io.Reader, rel StatsRelease, meta statsMeta, mults int, eps float64) ([]int64, []statsNoiseComp, error) {
	fam := 1.0
	if rel.Groups > 0 && rel.Label != "" {
		fam = 2
	}
	noise := make([]int64, len(rel.Vectors)*mults)
	if rel.Binned {
		comps := []statsNoiseComp{{Component: "count", Epsilon: eps / 2, Sensitivity: fam}, {Component: "bins", Epsilon: eps / 2, Sensitivity: fam}}
		for v := range rel.Vectors {
			for k := range mults {
				c := comps[min(k, 1)]
				x, err := fedlearn.DiscreteLaplace(r, c.Epsilon, c.Sensitivity, 1)
				if err != nil {
					return nil, nil, err
				}
				noise[v*mults+k] = x[0]
			}
		}
		return noise, comps, nil
	}
	plan, err := fedlearn.ParseNumericPlan(meta.Plan, math.MaxInt32)
	if err != nil {
		return nil, nil, err
	}
	cols := rel.ColumnList()
	if len(plan.Features) != len(cols) {
		return nil, nil, errors.New("plan does not match the release")
	}
	// Components: the shared count, then per column present?, sum, sumsq;
	// ε split evenly over all of them.
	comps := []statsNoiseComp{{Component: "count", Sensitivity: fam}}
	for f, fl := range plan.Features {
		if fl.Missing {
			comps = append(comps, statsNoiseComp{Component: "present", Column: cols[f], Sensitivity: fam})
		}
		comps = append(comps,
			statsNoiseComp{Component: "sum", Column: cols[f], Sensitivity: fam * math.Ldexp(1, numericBits)},
			statsNoiseComp{Component: "sumsq", Column: cols[f], Sensitivity: fam * math.Ldexp(1, 2*numericBits)})
	}
	for i := range comps {
		comps[i].Epsilon = eps / float64(len(comps))
	}
	for v := range rel.Vectors {
		k := v * mults
		f := -1
		for _, c := range comps {
			switch c.Component {
			case "count", "present":
				x, err := fedlearn.DiscreteLaplace(r, c.Epsilon, c.Sensitivity, 1)
				if err != nil {
					return nil, nil, err
				}
				noise[k] = x[0]
				k++
			case "sum", "sumsq":
				if c.Component == "sum" {
					f = slices.Index(cols, c.Column)
				}
				fl := plan.Features[f]
				limbs := fl.SumLimbs
				if c.Component == "sumsq" {
					limbs = fl.SqLimbs
				}
				x, err := laplace(r, c.Sensitivity/c.Epsilon)
				if err != nil {
					return nil, nil, err
				}
				splitLimbs(x, plan.LimbBits, noise[k:k+limbs])
				k += limbs
			}
		}
	}
	return noise, comps, nil
}

// laplace draws round(Laplace(0, b)) as a big integer (continuous Laplace
// by inverse CDF from 53 random bits, then rounded: post-processing).
func laplace(r io.Reader, b float64) (*big.Int, error) {
	var buf [8]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return nil, fmt.Errorf("protocol: reading randomness: %w", err)
	}
	u := (float64(binary.LittleEndian.Uint64(buf[:])>>11)+0.5)/(1<<53) - 0.5 // (-0.5, 0.5)
	x := -b * math.Copysign(math.Log(1-2*math.Abs(u)), u)
	bf := new(big.Float).SetFloat64(math.Round(x))
	out, _ := bf.Int(nil)
	return out, nil
}

// splitLimbs writes x = Σ dst[l]·2^(w·l) with dst[l] in [0, 2^w) for all
// but the top limb, which takes the (signed) rest.
func splitLimbs(x *big.Int, w int, dst []int64) {
	rest := new(big.Int).Set(x)
	mod := new(big.Int).Lsh(big.NewInt(1), uint(w))
	for l := range dst {
		if l == len(dst)-1 {
			dst[l] = rest.Int64()
			return
		}
		m := new(big.Int)
		rest.DivMod(rest, mod, m) // Euclidean: m in [0, 2^w)
		dst[l] = m.Int64()
	}
}

// decodeRelease turns a release's decrypted totals into result cells
// (step S1), with k-suppression and noise descriptions.
func decodeRelease(cfg StatsBankConfig, rel StatsRelease, meta statsMeta, totals []int64, groups []string) ([]StatsCell, error) {
	nv := len(rel.Vectors)
	if nv == 0 || len(totals)%nv != 0 {
		return nil, errors.New("result size does not match the release")
	}
	mults := len(totals) / nv
	per := make([][]int64, nv)
	for v := range per {
		per[v] = totals[v*mults : (v+1)*mults]
	}
	noiseOf := func(comp, col string, unit float64) *StatsNoise {
		for _, c := range meta.Noise {
			if c.Component == comp && c.Column == col {
				return &StatsNoise{Mechanism: "laplace", Epsilon: c.Epsilon, Scale: c.Sensitivity / c.Epsilon * unit}
			}
		}
		if meta.Epsilon > 0 {
			return &StatsNoise{Mechanism: "derived", Epsilon: meta.Epsilon}
		}
		return nil
	}
	k := cfg.MinCellSize
	if !rel.Binned {
		plan, err := fedlearn.ParseNumericPlan(meta.Plan, len(cfg.Match))
		if err != nil {
			return nil, err
		}
		cols := rel.ColumnList()
		if len(plan.Features) != len(cols) || plan.L != len(cfg.Match) || plan.Multipliers() != mults {
			return nil, errors.New("plan does not match the release")
		}
		st, err := plan.Decode(per)
		if err != nil {
			return nil, err
		}
		names := slices.Clone(groups)
		var all [][]fedlearn.NumericStat
		if len(groups) > 1 { // overall = Σ groups (exact, also under noise)
			sum := make([]int64, mults)
			for _, p := range per {
				for i, x := range p {
					sum[i] += x
				}
			}
			if all, err = plan.Decode([][]int64{sum}); err != nil {
				return nil, err
			}
			names = append(names, "all")
		}
		var out []StatsCell
		for f, col := range cols {
			cells := st[f]
			if all != nil {
				cells = append(cells, all[f][0])
			}
			suppressNumeric(k, cells, len(groups) > 1)
			fl := plan.Features[f]
			unit := math.Ldexp(1, -fl.ScaleBits)
			for g, s := range cells {
				add := func(stat string, v float64, exact string, rows int64, nz *StatsNoise) {
					c := StatsCell{Column: col, Statistic: stat, Group: names[g], Rows: rows, Suppressed: s.Suppressed, Noise: nz, Exact: exact}
					if !s.Suppressed && !math.IsNaN(v) && !math.IsInf(v, 0) {
						c.Value = &v
					} else {
						c.Exact = ""
					}
					out = append(out, c)
				}
				for _, kind := range rel.Kinds {
					switch kind {
					case "count":
						countNoise := noiseOf("present", col, 1)
						if !fl.Missing {
							countNoise = noiseOf("count", "", 1)
						}
						add("count", float64(s.Count), "", s.Count, countNoise)
						mc := StatsCell{Column: col, Statistic: "missing", Group: names[g], Rows: s.Missing, Suppressed: s.Suppressed || (k > 0 && s.Missing < k), Noise: derivedIf(meta)}
						if !mc.Suppressed {
							v := float64(s.Missing)
							mc.Value = &v
						}
						out = append(out, mc)
					case "sum":
						v, exact := math.NaN(), ""
						if s.Sum != nil {
							v, _ = s.Sum.Float64()
							exact = s.Sum.RatString()
						}
						add("sum", v, exact, s.Count, noiseOf("sum", col, unit))
					case "mean":
						add("mean", s.Mean, "", s.Count, derivedIf(meta))
					case "variance":
						add("variance", s.Variance, "", s.Count, derivedIf(meta))
					}
				}
			}
		}
		return withhold(out), nil
	}
	plan, err := fedlearn.ParseBinnedPlan(meta.Plan, len(cfg.Match))
	if err != nil {
		return nil, err
	}
	if len(plan.NumBins) != 1 || plan.L != len(cfg.Match) || plan.Multipliers() != mults || len(meta.Labels) != plan.NumBins[0] {
		return nil, errors.New("plan does not match the release")
	}
	labels := meta.Labels
	var out []StatsCell
	if rel.Groups > 0 {
		hs, err := plan.Decode(per[:rel.Groups])
		if err != nil {
			return nil, err
		}
		out = append(out, histogramCells(rel, hs[0], groups, labels, k, noiseOf("bins", "", 1), derivedIf(meta))...)
	}
	if rel.Label != "" {
		hs, err := plan.Decode(per[len(per)-2:])
		if err != nil {
			return nil, err
		}
		h := hs[0]
		good, bad := make([]int64, len(labels)), make([]int64, len(labels))
		var tg, tb int64
		for b := range labels {
			good[b], bad[b] = h.Counts[b][0], h.Counts[b][1]
			tg += good[b]
			tb += bad[b]
		}
		woe, iv := fedlearn.WOEIV(good, bad)
		nz := derivedIf(meta)
		for b, l := range labels {
			c := StatsCell{Column: rel.Column, Statistic: "woe", Group: "all", Bin: l, Rows: good[b] + bad[b], Noise: nz}
			if good[b] < k || bad[b] < k {
				c.Suppressed = true
			} else if w := woe[b]; !math.IsNaN(w) && !math.IsInf(w, 0) {
				c.Value = &w
			}
			out = append(out, c)
		}
		c := StatsCell{Column: rel.Column, Statistic: "iv", Group: "all", Rows: tg + tb, Noise: nz}
		if tg < k || tb < k {
			c.Suppressed = true
		} else if !math.IsNaN(iv) && !math.IsInf(iv, 0) {
			c.Value = &iv
		}
		out = append(out, c)
	}
	return withhold(out), nil
}

// withhold clears the value and row count of every suppressed cell, so
// nothing below k leaves the protocol layer.
func withhold(cells []StatsCell) []StatsCell {
	for i := range cells {
		if cells[i].Suppressed {
			cells[i].Value, cells[i].Rows, cells[i].Exact = nil, 0, ""
		}
	}
	return cells
}

func derivedIf(meta statsMeta) *StatsNoise {
	if meta.Epsilon > 0 {
		return &StatsNoise{Mechanism: "derived", Epsilon: meta.Epsilon}
	}
	return nil
}

// suppressNumeric applies the minimum cell size to per-group numeric
// cells (the last one is the overall total when withTotal): cells below k
// are withheld, and when exactly one group cell is withheld while the
// total is shown, the next smallest group is withheld too, so the total
// minus the shown groups does not give the withheld one back.
func suppressNumeric(k int64, cells []fedlearn.NumericStat, withTotal bool) {
	if k <= 0 {
		return
	}
	row := [][]fedlearn.NumericStat{cells}
	fedlearn.Suppress(k, row)
	if !withTotal {
		return
	}
	groups := cells[:len(cells)-1]
	n, small := 0, -1
	for i, c := range groups {
		if c.Suppressed {
			n++
		} else if small < 0 || c.Count < groups[small].Count {
			small = i
		}
	}
	if n == 1 && small >= 0 {
		groups[small] = fedlearn.NumericStat{Suppressed: true, Mean: math.NaN(), Variance: math.NaN()}
	}
}

// histogramCells renders a histogram [bin][group] with a missing row, an
// "all" column when there are several groups, TGI per cell, and
// suppression below k with complementary suppression: in every row and
// column whose total is shown, a single withheld cell drags the smallest
// shown cell with it, repeated until stable.
func histogramCells(rel StatsRelease, h fedlearn.Histogram, groups, labels []string, k int64, nz, derived *StatsNoise) []StatsCell {
	G, B := len(groups), len(labels)
	// table rows: bins then missing; columns: groups then all (G>1).
	cols := G
	if G > 1 {
		cols++
	}
	tab := make([][]int64, B+1)
	for b := range tab {
		tab[b] = make([]int64, cols)
		for g := range G {
			if b < B {
				tab[b][g] = h.Counts[b][g]
			} else {
				tab[b][g] = h.Missing[g]
			}
			if G > 1 {
				tab[b][G] += tab[b][g]
			}
		}
	}
	sup := make([][]bool, B+1)
	for b := range sup {
		sup[b] = make([]bool, cols)
		for c := range cols {
			sup[b][c] = k > 0 && tab[b][c] < k
		}
	}
	if k > 0 {
		complement(tab, sup, G)
	}
	var tgi [][]float64 // [group][bin]
	if G > 1 {
		for g := range G {
			tgi = append(tgi, fedlearn.TGI(h, g))
		}
	}
	name := func(c int) string {
		if c == G {
			return "all"
		}
		return groups[c]
	}
	var out []StatsCell
	stat := "histogram"
	if !slices.Contains(rel.Kinds, "histogram") {
		stat = "crosstab"
	}
	for b := range B + 1 {
		bin := "(missing)"
		if b < B {
			bin = labels[b]
		}
		for c := range cols {
			cell := StatsCell{Column: rel.Column, Statistic: stat, Group: name(c), Bin: bin, Rows: tab[b][c], Suppressed: sup[b][c], Noise: nz}
			if c == G {
				cell.Noise = derived
			}
			if !cell.Suppressed {
				v := float64(tab[b][c])
				cell.Value = &v
			}
			out = append(out, cell)
		}
	}
	for g := range tgi {
		for b := range B {
			cell := StatsCell{Column: rel.Column, Statistic: "tgi", Group: groups[g], Bin: labels[b], Rows: tab[b][g], Suppressed: sup[b][g], Noise: derived}
			if v := tgi[g][b]; !cell.Suppressed && !math.IsNaN(v) && !math.IsInf(v, 0) {
				cell.Value = &v
			}
			out = append(out, cell)
		}
	}
	return out
}

// complement performs the complementary suppression of histogramCells on
// a table whose rows and columns (groups 0..G-1 of each row, every row of
// each column) have published totals.
func complement(tab [][]int64, sup [][]bool, G int) {
	for changed := true; changed; {
		changed = false
		fix := func(cells [][2]int) {
			n, small := 0, -1
			for i, rc := range cells {
				if sup[rc[0]][rc[1]] {
					n++
				} else if small < 0 || tab[rc[0]][rc[1]] < tab[cells[small][0]][cells[small][1]] {
					small = i
				}
			}
			if n == 1 && small >= 0 {
				sup[cells[small][0]][cells[small][1]] = true
				changed = true
			}
		}
		if G > 1 {
			for b := range tab {
				var cells [][2]int
				for g := range G {
					cells = append(cells, [2]int{b, g})
				}
				fix(cells)
			}
		}
		for c := range tab[0] {
			var cells [][2]int
			for b := range tab {
				cells = append(cells, [2]int{b, c})
			}
			fix(cells)
		}
	}
}
