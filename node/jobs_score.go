package node

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/tandem-dev/tandem/audit"
	"github.com/tandem-dev/tandem/bands"
	"github.com/tandem-dev/tandem/fedlearn"
	"github.com/tandem-dev/tandem/internal/radix"
	"github.com/tandem-dev/tandem/node/dataset"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

// scoreKind scores the bank's matched rows of a PSI job with a split model
// trained between the same two nodes (issue 6): the partner computes its
// partial predictor over all aligned positions from its own part, the
// bank receives it only at its matched positions (protocol/score.go, a
// masked release the partner's policy approves and records), adds its own
// part and writes the scores next to its own row keys. The partner learns
// how many rows were scored, never which.
type scoreKind struct{}

// ScoreJobResult is what `job result` shows for a score job.
type ScoreJobResult struct {
	ModelID string `json:"model_id"`
	PSIJob  string `json:"psi_job"`
	Side    string `json:"side"`
	Dataset string `json:"dataset"`
	Length  int    `json:"alignment_length"`
	Scored  int    `json:"scored"`
	// Partner only: positions whose partial predictor was clipped to the
	// model's clip range.
	Clipped int `json:"clipped,omitempty"`
	// Bank only.
	Output string `json:"output,omitempty"` // CSV: row, id columns, score[, band] (bands-only: band); empty for a row without a score
	// BandsOnly: the bank learnt each row's band and no score.
	BandsOnly bool `json:"bands_only,omitempty"`
	// A missing: drop model gives no score to a row with a missing feature
	// (as R's predict gives NA): on the bank's side, and on the partner's.
	IncompleteBank    int         `json:"incomplete_bank_rows,omitempty"`
	IncompletePartner int         `json:"incomplete_partner_rows,omitempty"`
	MeanScore         float64     `json:"mean_score,omitempty"`
	Bands             []ScoreBand `json:"bands,omitempty"`
	ValidationAUC     *float64    `json:"validation_auc,omitempty"` // on the model's held-out rows, when scored
	ValidationN       int         `json:"validation_rows,omitempty"`
	// LabelledAUC is the AUC over every scored row with a 0/1 label, the
	// model's training rows included (in-sample): the figure to compare
	// with a model fitted on all the joined data, such as R's glm.
	LabelledAUC *float64 `json:"labelled_auc,omitempty"`
	LabelledN   int      `json:"labelled_rows,omitempty"`
	// Acquisition mode (partner-only model): per band of the partner's
	// own scores, its users and how many of them are the bank's customers.
	PartnerBands []PartnerBand `json:"partner_bands,omitempty"`
	Releases     int           `json:"releases"`
	BytesSent    int64         `json:"bytes_sent"`
	Transcript   string        `json:"transcript_digest"`
}

// ScoreBand is one equal-count band of the scored rows (band 1 holds the
// highest scores), with its lowest and highest score; in a bands-only job
// a band of fixed edges, MinScore ≤ score < MaxScore.
type ScoreBand struct {
	Band     int     `json:"band"`
	Rows     int     `json:"rows"`
	MinScore float64 `json:"min_score"`
	MaxScore float64 `json:"max_score"`
}

// PartnerBand is one band of a partner-only model's scores over the
// partner's users (band 1 = highest), as the bank learns it: counts only.
// Counts below the agreement's minimum cell size k are suppressed (null),
// and then so is the other count of the band (it would give it away).
type PartnerBand struct {
	Band         int    `json:"band"`
	Users        *int64 `json:"partner_users"`
	Customers    *int64 `json:"bank_customers"`
	NotCustomers *int64 `json:"not_bank_customers"`
	Suppressed   bool   `json:"suppressed,omitempty"`
}

const maxScoreBands = 100

// partnerOnly reports whether a stored model part belongs to a partner-only
// model (no bank features).
func (m *storedModel) partnerOnly() bool {
	return len(m.Card.BankFeatures) == 0 && len(m.Card.PartnerFeatures) > 0
}

func (n *Node) prepareScore(p *tandemv1.JobProposal) error {
	if p.Score == nil || p.Score.PsiJobId == "" || p.Score.ModelId == "" {
		return fmt.Errorf("%w: score needs --psi-job and --model", errInvalid)
	}
	if p.Score.Bands < 0 || p.Score.Bands > maxScoreBands {
		return fmt.Errorf("%w: --bands must be 0..%d", errInvalid, maxScoreBands)
	}
	if _, _, err := n.alignmentJob(p, "score", p.Score.PsiJobId, "initiator", p.Responder); err != nil {
		return fmt.Errorf("%w: %v", errInvalid, err)
	}
	if err := checkScoreRelease(n, p); err != nil {
		return fmt.Errorf("%w: %v", errInvalid, err)
	}
	m, err := n.scoreModel(p.Score.ModelId, "bank", p.Responder)
	if err != nil {
		return fmt.Errorf("%w: %v", errInvalid, err)
	}
	if m.partnerOnly() && p.Score.Bands < 1 {
		return fmt.Errorf("%w: model %s is partner-only (the partner holds the whole model and scores its users itself): ask for per-band counts with --bands", errInvalid, m.ID)
	}
	if m.partnerOnly() && p.Score.BandsOnly {
		return fmt.Errorf("%w: model %s is partner-only: its --bands counts never carry a score already; --bands-only is for split models", errInvalid, m.ID)
	}
	return nil
}

// checkScoreRelease checks a score proposal's bands-only parameters and
// the agreement's score_release (both nodes run it).
func checkScoreRelease(n *Node, p *tandemv1.JobProposal) error {
	s := p.Score
	if !s.BandsOnly {
		if len(s.BandEdges) > 0 {
			return errors.New("--band-edges needs --bands-only (equal-count bands come from the scores)")
		}
		if a, err := n.agreement(p.AgreementId); err == nil && a.Agreement.ScoreRelease == "bands" {
			return fmt.Errorf("agreement %s gives the bank score bands only (score_release: bands): ask with --bands-only", p.AgreementId)
		}
		return nil
	}
	if s.Bands < 2 || s.Bands > bands.MaxThresholds {
		return fmt.Errorf("--bands-only needs --bands 2..%d", bands.MaxThresholds)
	}
	if len(s.BandEdges) > 0 && len(s.BandEdges) != int(s.Bands)-1 {
		return fmt.Errorf("--band-edges: %d edges for %d bands, want %d", len(s.BandEdges), s.Bands, s.Bands-1)
	}
	for i, e := range s.BandEdges {
		if !(e > 0 && e < 1) || i > 0 && !(e > s.BandEdges[i-1]) {
			return fmt.Errorf("--band-edges: want ascending probabilities strictly between 0 and 1, got %v", s.BandEdges)
		}
	}
	return nil
}

// bandEdges are a bands-only job's edges as probabilities, ascending: the
// proposal's, or k/B.
func bandEdges(s *tandemv1.ScoreParams) []float64 {
	if len(s.BandEdges) > 0 {
		return s.BandEdges
	}
	e := make([]float64, s.Bands-1)
	for k := range e {
		e[k] = float64(k+1) / float64(s.Bands)
	}
	return e
}

func (n *Node) checkScoreResponder(p *tandemv1.JobProposal) error {
	if p.Score == nil {
		return errors.New("score parameters missing")
	}
	if _, _, err := n.alignmentJob(p, "score", p.Score.PsiJobId, "responder", p.Initiator); err != nil {
		return err
	}
	m, err := n.scoreModel(p.Score.ModelId, "partner", p.Initiator)
	if err != nil {
		return err
	}
	if m.partnerOnly() && p.Score.BandsOnly {
		return fmt.Errorf("model %s is partner-only: --bands-only is for split models", m.ID)
	}
	return checkScoreRelease(n, p)
}

// scoreModel finds this node's part of a model trained with peer.
func (n *Node) scoreModel(id, side, peer string) (*storedModel, error) {
	m, err := n.model(id)
	if err != nil {
		return nil, fmt.Errorf("model %s is not known on %s", id, n.cfg.Name)
	}
	if m.Side != side || m.Card.Peer != peer {
		return nil, fmt.Errorf("model %s was trained with %s as the %s side; this score job needs %s with %s", id, m.Card.Peer, m.Side, side, peer)
	}
	return m, nil
}

// partialScores computes Σ_j w_j·(x_j − mean_j)/sd_j over the L positions
// for the model part's features (a missing value counts as the mean, or
// makes the value NaN for a missing: drop model; so do positions without
// a row).
func partialScores(ctx context.Context, in *alignedInputs, part ModelPart) ([]float64, error) {
	p, rows := partialPass(in, part)
	if _, err := dataset.Read(ctx, in.dspec, p); err != nil {
		return nil, fmt.Errorf("node: features of dataset %s: %w", in.ds.Spec.Name, err)
	}
	return alignedPartial(in, part, *rows), nil
}

// partialPass is a dataset pass that computes the part's partial
// predictor of every row of the file into *rows as it reads, keeping no
// feature column: a column is 9 bytes a row, and on this machine
// memory's first touch costs more than parsing the numbers.
func partialPass(in *alignedInputs, part ModelPart) (dataset.Pass, *[]float64) {
	rows := make([]float64, 0, in.ds.Profile.Rows) // the row count at registration, a capacity hint
	return dataset.Pass{Columns: part.Features, Each: func(_ int64, vals []float64, present []bool) error {
		rows = append(rows, part.rowPartial(vals, present))
		return nil
	}}, &rows
}

// alignedPartial places the partial predictor of each row (by row) at its
// position, plus the intercept; a position without a row has none (0, or
// NaN for a missing: drop model).
func alignedPartial(in *alignedInputs, part ModelPart, byRow []float64) []float64 {
	u := make([]float64, in.al.Length)
	if part.Missing == protocol.MissingDrop {
		for i := range u {
			u[i] = math.NaN()
		}
	}
	for i, pos := range in.al.Positions {
		if r := in.al.Rows[i]; r < uint64(len(byRow)) {
			u[pos] = byRow[r]
		}
	}
	if part.Intercept != nil {
		for i := range u {
			u[i] += *part.Intercept
		}
	}
	return u
}

// bankScoreInputs is what the bank's score job reads from its file, in
// one pass (each pass over a 1e6-row CSV costs about as much as the
// scoring protocol).
type bankScoreInputs struct {
	u     []float64 // the bank's partial predictor by position
	label labelColumn
	// order lists the matched positions' indices in in.al by increasing
	// dataset row, the order of the output; ids has those rows' id cells.
	order []int
	ids   *dataset.Cells
}

// readWhileScoring runs the bank's pass over its file (readBankScore)
// alongside the score protocol. A model that imputes missing features has
// u_B at every row, so the mask does not wait for the file, and the pass
// (the longest part of the bank's work) overlaps the partner's own pass
// and the encryption; a `missing: drop` model first unmasks the rows it
// cannot score, so it reads first. When one side fails the other is
// cancelled and the first cause is returned.
func readWhileScoring(ctx context.Context, j *jobRun, in *alignedInputs, m *storedModel, cfg protocol.ScoreBankConfig) (*bankScoreInputs, *protocol.ScoreBankResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type read struct {
		bi  *bankScoreInputs
		err error
	}
	done := make(chan read, 1)
	go func() {
		bi, err := readBankScore(ctx, in, m, true)
		if err != nil {
			cancel()
		}
		done <- read{bi, err}
	}()
	res, err := protocol.RunScoreBank(ctx, j.t, cfg, j.progress)
	if err != nil {
		cancel()
	}
	r := <-done
	if err := firstCause(r.err, err); err != nil {
		return nil, nil, err
	}
	return r.bi, res, nil
}

// firstCause picks the error to report of two tasks that cancel each
// other when one fails: the one that is not the other's cancellation (a
// and b both failing on their own, a).
func firstCause(a, b error) error {
	if a != nil && (b == nil || !errors.Is(a, context.Canceled)) {
		return a
	}
	return b
}

// readBankScore reads the model part's features, the id columns of the
// matched rows and, if wantLabel and the model was trained on this
// dataset, its label (for the AUCs; a label column no longer in the file
// only leaves them out).
func readBankScore(ctx context.Context, in *alignedInputs, m *storedModel, wantLabel bool) (*bankScoreInputs, error) {
	al := in.al
	if uint64(len(al.Rows)) > math.MaxUint32 {
		return nil, fmt.Errorf("node: score: %d matched rows, at most %d", len(al.Rows), uint64(math.MaxUint32))
	}
	order, rows := sortByRow(al.Rows)
	p, byRow := partialPass(in, m.Part)
	p.CellColumns, p.CellRows = idColumns(in.dspec), rows
	if wantLabel && m.Card.Training.Dataset == in.ds.Spec.Name {
		p.Label = m.Card.Label
	}
	r, err := dataset.Read(ctx, in.dspec, p)
	var le *dataset.LineError
	if p.Label != "" && errors.As(err, &le) && errors.Is(err, dataset.ErrSchema) && le.Column == p.Label {
		p.Label = ""
		*byRow = (*byRow)[:0]
		r, err = dataset.Read(ctx, in.dspec, p)
	}
	if err != nil {
		return nil, fmt.Errorf("node: dataset %s: %w", in.ds.Spec.Name, err)
	}
	return &bankScoreInputs{u: alignedPartial(in, m.Part, *byRow), label: labelColumn{r.Label, r.LabelPresent}, order: order, ids: r.Cells}, nil
}

// sortByRow orders the indices of rows (fewer than 2^32) by increasing row
// and returns them with the rows in that order.
func sortByRow(rows []uint64) (order []int, sorted []int64) {
	keys, idx := slices.Clone(rows), make([]uint32, len(rows))
	for i := range idx {
		idx[i] = uint32(i)
	}
	radix.Pairs(keys, idx)
	order, sorted = make([]int, len(rows)), make([]int64, len(rows))
	for k, i := range idx {
		order[k], sorted[k] = int(i), int64(keys[k])
	}
	return order, sorted
}

// write writes the job's output file name in its job directory, one line
// per matched row in row order (writeScores), and returns its path.
func (bi *bankScoreInputs) write(j *jobRun, spec dataset.Spec, name string, scores []float64, bands []int) (string, error) {
	dir, err := j.n.jobDir(j.rec.ID)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	j.progress("writing", 1)
	if err := writeScores(idColumns(spec), bi.ids.Rows, scores, bands, path, eachCells(bi.ids)); err != nil {
		return "", fmt.Errorf("node: score: writing %s: %w", path, err)
	}
	return path, nil
}

// eachCells walks c's rows for writeScores.
func eachCells(c *dataset.Cells) func(fn func(row int64, cells []string) error) error {
	return func(fn func(row int64, cells []string) error) error {
		var buf []string
		for i, row := range c.Rows {
			buf = c.Row(i, buf)
			if err := fn(row, buf); err != nil {
				return err
			}
		}
		return nil
	}
}

// labelColumn is a 0/1 label by dataset row (values nil: not read).
type labelColumn struct {
	values  []float64
	present []bool
}

func (scoreKind) initiate(ctx context.Context, j *jobRun) (any, error) {
	n := j.n
	j.progress("loading", 0)
	in, err := n.loadAligned(j, "score", j.prop.Score.PsiJobId)
	if err != nil {
		return nil, err
	}
	m, err := n.scoreModel(j.prop.Score.ModelId, "bank", j.rec.Peer)
	if err != nil {
		return nil, fmt.Errorf("node: score: %w", err)
	}
	L := int(in.al.Length)
	mask := make([]bool, L)
	for _, pos := range in.al.Positions {
		mask[pos] = true
	}
	if m.partnerOnly() {
		return partnerBandsBank(ctx, j, &in, m, mask)
	}
	scoreCfg := protocol.ScoreBankConfig{JobID: j.rec.ID, ModelID: m.ID, Mask: mask}
	var bi *bankScoreInputs
	var res *protocol.ScoreBankResult
	incompleteBank := 0
	if j.prop.Score.BandsOnly || m.Part.Missing == protocol.MissingDrop {
		if bi, err = readBankScore(ctx, &in, m, !j.prop.Score.BandsOnly); err != nil {
			return nil, err
		}
		// A missing: drop model scores no row with a missing feature (u_B
		// NaN): the partner's value there is not asked for.
		for pos, ok := range mask {
			if ok && math.IsNaN(bi.u[pos]) {
				mask[pos] = false
				incompleteBank++
			}
		}
		if j.prop.Score.BandsOnly {
			return scoreBandsBank(ctx, j, &in, m, mask, bi, incompleteBank)
		}
		if res, err = protocol.RunScoreBank(ctx, j.t, scoreCfg, j.progress); err != nil {
			return nil, err
		}
	} else if bi, res, err = readWhileScoring(ctx, j, &in, m, scoreCfg); err != nil {
		return nil, err
	}
	uB := bi.u
	// One row per matched position, by dataset row: its score (NaN = no
	// score).
	keys, scores := bi.ids.Rows, make([]float64, len(bi.order))
	var sum float64
	for k, i := range bi.order {
		s := math.NaN()
		if pos := in.al.Positions[i]; mask[pos] {
			s = 1 / (1 + math.Exp(-(uB[pos] + res.Partial[pos]))) // NaN if the partner has no value
		}
		scores[k] = s
		if !math.IsNaN(s) {
			sum += s
		}
	}
	out := &ScoreJobResult{ModelID: m.ID, PSIJob: in.psiRec.ID, Side: "bank", Dataset: in.ds.Spec.Name, Length: L, Scored: res.Scored,
		IncompleteBank: incompleteBank, IncompletePartner: res.Missing,
		Releases: res.Batches, BytesSent: j.t.BytesSent(), Transcript: fmt.Sprintf("%x", j.t.Digest())}
	if res.Scored > 0 {
		out.MeanScore = sum / float64(res.Scored)
	}
	// The AUCs (two sorts) while the bands are assigned and the file is
	// written.
	var metrics sync.WaitGroup
	if bi.label.values != nil {
		metrics.Go(func() {
			if auc, nv, ok := labelAUC(bi.label, m.ValidationRows, keys, scores); ok {
				out.ValidationAUC, out.ValidationN = &auc, nv
			}
			if auc, nl, ok := labelAUC(bi.label, keys, keys, scores); ok {
				out.LabelledAUC, out.LabelledN = &auc, nl
			}
		})
	}
	bands, table := assignBands(scores, int(j.prop.Score.Bands))
	out.Bands = table
	out.Output, err = bi.write(j, in.dspec, "scores.csv", scores, bands)
	j.progress("metrics", 1)
	metrics.Wait()
	if err != nil {
		return nil, err
	}
	return out, nil
}

// assignBands gives each score its equal-count band (band 1 = highest
// scores; ties by position) and the band table; nil, nil for B = 0. A NaN
// score (no score) gets band 0 and is in no band.
func assignBands(scores []float64, B int) ([]int, []ScoreBand) {
	if B <= 0 || len(scores) == 0 {
		return nil, nil
	}
	// Descending by score; a stable sort keeps equal scores by position.
	keys, order := make([]uint64, 0, len(scores)), make([]uint32, 0, len(scores))
	for i, s := range scores {
		if !math.IsNaN(s) {
			keys, order = append(keys, ^radix.Float(s)), append(order, uint32(i))
		}
	}
	radix.Pairs(keys, order)
	bands := make([]int, len(scores))
	var table []ScoreBand
	for r, i := range order {
		b, s := r*B/len(order)+1, scores[i]
		bands[i] = b
		if len(table) < b {
			table = append(table, ScoreBand{Band: b, MinScore: s, MaxScore: s})
		}
		sb := &table[b-1]
		sb.Rows++
		sb.MinScore = min(sb.MinScore, s)
	}
	return bands, table
}

// writeScores writes row, the id columns idCols, score and band (when
// bands is not nil) for rows (strictly increasing; scores and bands
// aligned with it), atomically (tmp + rename); each calls its function
// with the id cells of every row, in order. With scores nil (a bands-only
// job) it writes the band alone, empty for band 0 (none).
func writeScores(idCols []string, rows []int64, scores []float64, bands []int, path string, each func(fn func(row int64, cells []string) error) error) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	bw := bufio.NewWriterSize(f, 256<<10)
	hdr := append([]string{"row"}, idCols...)
	if scores != nil {
		hdr = append(hdr, "score")
	}
	if bands != nil {
		hdr = append(hdr, "band")
	}
	// Lines are formatted by hand (appendCSVField quotes as csv.Writer
	// does): csv.Writer and strconv's string formatting took 88 ms at
	// 2.8e5 rows, at the end of the job where nothing else runs.
	line := appendCSVLine(nil, hdr)
	bw.Write(line)
	k := 0
	err = each(func(row int64, cells []string) error {
		for k < len(rows) && rows[k] != row { // each visits rows in order
			k++
		}
		if k == len(rows) {
			return fmt.Errorf("node: dataset returned row %d that was not asked for", row)
		}
		line = strconv.AppendInt(line[:0], row, 10)
		for _, c := range cells {
			line = appendCSVField(append(line, ','), c)
		}
		switch {
		case scores == nil && bands[k] == 0:
			line = append(line, ',')
		case scores == nil:
			line = strconv.AppendInt(append(line, ','), int64(bands[k]), 10)
		case math.IsNaN(scores[k]): // no score: score and band empty, as R writes NA
			line = append(line, ',')
			if bands != nil {
				line = append(line, ',')
			}
		default:
			line = strconv.AppendFloat(append(line, ','), scores[k], 'f', 6, 64)
			if bands != nil {
				line = strconv.AppendInt(append(line, ','), int64(bands[k]), 10)
			}
		}
		_, err := bw.Write(append(line, '\n'))
		return err
	})
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// appendCSVLine appends fields as one CSV line.
func appendCSVLine(dst []byte, fields []string) []byte {
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendCSVField(dst, f)
	}
	return append(dst, '\n')
}

// appendCSVField appends field as csv.Writer writes it with a comma
// delimiter: in quotes, with quotes doubled, if it holds a comma, a quote,
// a line break or starts with a space, or is `\.`; as it is otherwise.
// TestAppendCSVField holds it to csv.Writer.
func appendCSVField(dst []byte, field string) []byte {
	if !csvNeedsQuotes(field) {
		return append(dst, field...)
	}
	dst = append(dst, '"')
	for {
		i := strings.IndexByte(field, '"')
		if i < 0 {
			break
		}
		dst = append(append(dst, field[:i]...), '"', '"')
		field = field[i+1:]
	}
	return append(append(dst, field...), '"')
}

func csvNeedsQuotes(field string) bool {
	if field == "" {
		return false
	}
	if field == `\.` {
		return true
	}
	for i := 0; i < len(field); i++ { // strings.ContainsAny took a fifth of the writing
		switch field[i] {
		case ',', '"', '\r', '\n':
			return true
		}
	}
	r, _ := utf8.DecodeRuneInString(field)
	return unicode.IsSpace(r)
}

// labelAUC is the AUC of the scores over the given rows that were scored
// and carry a 0/1 value of the label (the bank's own data). keys are the
// scored rows, strictly increasing, and scores their scores (NaN: none).
func labelAUC(label labelColumn, rows, keys []int64, scores []float64) (float64, int, bool) {
	if len(rows) == 0 {
		return 0, 0, false
	}
	s, y := make([]float64, 0, len(rows)), make([]float64, 0, len(rows))
	add := func(r int64, sc float64) {
		if math.IsNaN(sc) || r >= int64(len(label.values)) || !label.present[r] || (label.values[r] != 0 && label.values[r] != 1) {
			return
		}
		s, y = append(s, sc), append(y, label.values[r])
	}
	if slices.IsSorted(rows) { // a merge: the scored rows themselves, or a stored split
		k := 0
		for _, r := range rows {
			for k < len(keys) && keys[k] < r {
				k++
			}
			if k < len(keys) && keys[k] == r {
				add(r, scores[k])
			}
		}
	} else {
		for _, r := range rows {
			if k, ok := slices.BinarySearch(keys, r); ok {
				add(r, scores[k])
			}
		}
	}
	auc := fedlearn.AUC(s, y)
	return auc, len(s), !math.IsNaN(auc)
}

func (scoreKind) respond(ctx context.Context, j *jobRun) (any, error) {
	n := j.n
	j.progress("loading", 0)
	in, err := n.loadAligned(j, "score", j.prop.Score.PsiJobId)
	if err != nil {
		return nil, err
	}
	L := int(in.al.Length)
	if len(in.al.Positions) != L {
		return nil, fmt.Errorf("node: score: alignment maps %d of %d positions", len(in.al.Positions), L)
	}
	m, err := n.scoreModel(j.prop.Score.ModelId, "partner", j.rec.Peer)
	if err != nil {
		return nil, fmt.Errorf("node: score: %w", err)
	}
	u, clipped, err := partnerPartial(ctx, &in, m.Part)
	if err != nil {
		return nil, err
	}
	approve := func(ctx context.Context) error {
		a := in.agr.Agreement
		if !slices.Contains(a.JobKinds, "score") {
			return n.releaseRefused(ctx, j, fmt.Sprintf("agreement %s does not allow score jobs", a.Id))
		}
		if a.ScoreRelease == "bands" && !j.prop.Score.BandsOnly {
			return n.releaseRefused(ctx, j, fmt.Sprintf("agreement %s gives the bank score bands only (score_release: bands)", a.Id))
		}
		granted, ok := grantColumns(a, n.cfg.Name, in.ds.Spec.Name)
		for _, c := range m.Part.Features {
			if !ok || !columnGranted(granted, c) {
				return n.releaseRefused(ctx, j, fmt.Sprintf("column %s of dataset %s is not granted by agreement %s", c, in.ds.Spec.Name, a.Id))
			}
		}
		return nil
	}
	releases := 0
	onRelease := func(ctx context.Context, r protocol.ScoreRelease) error {
		e := audit.Entry{Kind: audit.KindRelease, JobID: j.rec.ID, AgreementID: j.rec.AgreementID, Peer: j.rec.Peer,
			Actor: audit.Actor{Kind: audit.ActorNode, Name: n.cfg.Name}, DatasetDigests: []string{in.ds.Profile.Digest},
			Release: &audit.Release{To: j.rec.Peer, Values: uint64(r.Positions), Digest: hex.EncodeToString(r.Digest),
				Checks: []string{"agreement_kind=score", "model_columns", "masked_by_peer", "share_guard"}},
			Detail: map[string]string{"release": fmt.Sprint(r.Batch), "model": m.ID, "first_position": fmt.Sprint(r.FirstPos),
				"statistics": r.Statistic}}
		if r.Statistic == "band_comparisons" {
			// Per position, K one-time-padded comparison bits against the
			// bank's thresholds: the bank opens its band, nothing more.
			e.Release.Values = uint64(r.Values)
			e.Release.Checks = []string{"agreement_kind=score", "model_columns", "bands_only", "oblivious_transfer"}
		}
		if r.Statistic == "band_counts" {
			// Per band: how many of this node's users the bank's encrypted
			// indicator marks; B counts, nothing per position.
			e.Release.Values = uint64(r.Values)
			e.Release.Checks = []string{"agreement_kind=score", "model_columns", "band_counts_only", "share_guard"}
		}
		key := audit.IdemKey{Job: j.rec.ID, Event: fmt.Sprintf("release/%d", r.Batch), Attempt: uint32(j.rec.Attempt)}
		if _, _, err := n.audit.Append(context.WithoutCancel(ctx), peerLog(j.rec.Peer), key, e); err != nil {
			return fmt.Errorf("node: audit: %w", err)
		}
		releases++
		return nil
	}
	cfg := protocol.ScorePartnerConfig{JobID: j.rec.ID, ModelID: m.ID, Partial: u, Approve: approve, OnRelease: onRelease}
	if j.prop.Score.BandsOnly {
		// Only bands leave: the partner's value enters comparisons with
		// the bank's thresholds, never a release of u_P.
		cfg.BandValues, cfg.Partial = make([]uint16, L), nil
		for i, v := range u {
			var c bool
			if cfg.BandValues[i], c = protocol.BandValue(v); c {
				clipped++
			}
		}
	}
	if m.partnerOnly() {
		// Acquisition mode: the partner's own scores (whole model) band its
		// users; only per-band counts leave, under encryption.
		if j.prop.Score.Bands < 1 {
			return nil, fmt.Errorf("node: score: model %s is partner-only: the bank may ask for --bands counts only", m.ID)
		}
		scores := make([]float64, L)
		for i, v := range u {
			scores[i] = v + *m.Part.Intercept
		}
		cfg.Bands, _ = assignBands(scores, int(j.prop.Score.Bands))
		cfg.Partial = nil
	}
	res, err := protocol.RunScorePartner(ctx, j.t, cfg, j.progress)
	if err != nil {
		return nil, err
	}
	return &ScoreJobResult{ModelID: m.ID, PSIJob: in.psiRec.ID, Side: "partner", Dataset: in.ds.Spec.Name, Length: L,
		Scored: res.Scored, Clipped: clipped + res.Clipped, Releases: releases, BytesSent: j.t.BytesSent(), Transcript: fmt.Sprintf("%x", j.t.Digest())}, nil
}

// partnerPartial is the partner's partial predictor over all L positions,
// clipped to the model's clip range as in training.
func partnerPartial(ctx context.Context, in *alignedInputs, part ModelPart) ([]float64, int, error) {
	part.Intercept = nil // (a copy) added by the caller where the model is whole
	u, err := partialScores(ctx, in, part)
	if err != nil {
		return nil, 0, err
	}
	clipped := 0
	if r := part.ClipRange; r > 0 {
		for i, v := range u {
			if math.Abs(v) > r {
				u[i] = math.Copysign(r, v)
				clipped++
			}
		}
	}
	return u, clipped, nil
}

// partnerBandsBank runs the acquisition mode on the bank: it learns per
// band of the partner's scores the partner's users and how many are its
// customers, with the agreement's minimum cell size applied.
func partnerBandsBank(ctx context.Context, j *jobRun, in *alignedInputs, m *storedModel, mask []bool) (any, error) {
	B := int(j.prop.Score.Bands)
	if B < 1 {
		return nil, fmt.Errorf("node: score: model %s is partner-only (the partner holds the whole model): ask for per-band counts with --bands", m.ID)
	}
	res, err := protocol.RunScoreBank(ctx, j.t, protocol.ScoreBankConfig{JobID: j.rec.ID, ModelID: m.ID, Mask: mask, PartnerBands: B}, j.progress)
	if err != nil {
		return nil, err
	}
	k := in.agr.Agreement.GetMinCellSize()
	out := &ScoreJobResult{ModelID: m.ID, PSIJob: in.psiRec.ID, Side: "bank", Dataset: in.ds.Spec.Name, Length: len(mask),
		Releases: res.Batches, BytesSent: j.t.BytesSent(), Transcript: fmt.Sprintf("%x", j.t.Digest())}
	for b := range B {
		users, cust := res.BandUsers[b], res.BandShared[b]
		not := users - cust
		pb := PartnerBand{Band: b + 1}
		if cust < k || not < k {
			pb.Suppressed = true
			if users >= k {
				pb.Users = &users
			}
		} else {
			pb.Users, pb.Customers, pb.NotCustomers = &users, &cust, &not
		}
		out.PartnerBands = append(out.PartnerBands, pb)
	}
	return out, nil
}

// rowPartial is one row's Σ_k w_k·(x_k − mean_k)/sd_k over the part's
// features (values in that order): a missing or non-finite value is the
// mean (standardised 0, no term), or makes it NaN (no score, as in
// training) for a missing: drop model.
func (p ModelPart) rowPartial(vals []float64, present []bool) float64 {
	var u float64
	for k, x := range vals {
		switch {
		case present[k] && !math.IsNaN(x) && !math.IsInf(x, 0):
			u += p.Weights[k] * (x - p.Mean[k]) / p.SD[k]
		case p.Missing == protocol.MissingDrop:
			return math.NaN()
		}
	}
	return u
}

// scoreBandsBank runs a bands-only score job on the bank: for each row it
// scores it learns which band edges u_B + u_P reaches (protocol
// score_bands.go), never the score, and writes row, id columns and band.
func scoreBandsBank(ctx context.Context, j *jobRun, in *alignedInputs, m *storedModel, mask []bool, bi *bankScoreInputs, incompleteBank int) (any, error) {
	uB := bi.u
	B := int(j.prop.Score.Bands)
	edges := bandEdges(j.prop.Score)
	// Thresholds: the B−1 edges, after, for a missing: drop model (whose
	// partner part has no value where a feature is missing), a first one
	// that asks whether the partner has a value at all.
	presence := m.Part.Missing == protocol.MissingDrop
	K, first := B-1, 0
	if presence {
		K, first = B, 1
	}
	L := len(mask)
	logits := make([]float64, len(edges))
	for k, e := range edges {
		logits[k] = math.Log(e / (1 - e))
	}
	thresholds := func(lo, hi int, th []uint32) {
		clear(th) // 0 where not scored: every bit 1, nothing learnt
		for pos := lo; pos < hi; pos++ {
			if !mask[pos] {
				continue
			}
			t := th[(pos-lo)*K : (pos-lo+1)*K]
			if presence {
				t[0] = 1
			}
			for k, l := range logits {
				t[first+k] = protocol.BandThreshold(l - uB[pos])
			}
		}
	}
	scored := 0
	for _, ok := range mask {
		if ok {
			scored++
		}
	}
	res, err := protocol.RunScoreBandsBank(ctx, j.t, protocol.ScoreBandsBankConfig{JobID: j.rec.ID, ModelID: m.ID, Rand: rand.Reader,
		K: K, L: L, Thresholds: thresholds, Scored: scored}, j.progress)
	if err != nil {
		return nil, err
	}
	out := &ScoreJobResult{ModelID: m.ID, PSIJob: in.psiRec.ID, Side: "bank", Dataset: in.ds.Spec.Name, Length: L,
		IncompleteBank: incompleteBank, BandsOnly: true, Releases: res.Batches, BytesSent: j.t.BytesSent(), Transcript: fmt.Sprintf("%x", j.t.Digest())}
	bandOf := make([]int, len(bi.order)) // by row, as bi.ids; band 0: none
	counts := make([]int, B+1)
	for k, i := range bi.order {
		pos := in.al.Positions[i]
		if !mask[pos] {
			continue
		}
		n, present, err := bands.Band(res.GE[pos], K, presence)
		if err != nil {
			return nil, fmt.Errorf("node: score: position %d: %w", pos, err)
		}
		if !present {
			out.IncompletePartner++
			continue
		}
		bandOf[k] = B - n // band 1 = highest scores
		counts[bandOf[k]]++
		out.Scored++
	}
	for b := 1; b <= B; b++ {
		sb := ScoreBand{Band: b, Rows: counts[b], MinScore: 0, MaxScore: 1}
		if k := B - b; k > 0 {
			sb.MinScore = edges[k-1]
		}
		if k := B - b; k < len(edges) {
			sb.MaxScore = edges[k]
		}
		out.Bands = append(out.Bands, sb)
	}
	if out.Output, err = bi.write(j, in.dspec, "bands.csv", nil, bandOf); err != nil {
		return nil, err
	}
	return out, nil
}
