package audit

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/tandem-dev/tandem/audit/merkle"
)

// Bundle file names. A bundle is a directory holding exactly these files.
const (
	BundleCheckpoint = "checkpoint.txt" // signed C2SP checkpoint at the bundle's size
	BundleBase       = "base.json"      // log name, since, size, compact range at since
	BundleEntries    = "entries.jsonl"  // {"seq","crc32c","raw"} per entry, raw = base64 canonical bytes
	BundleLeaves     = "leaves.txt"     // hex RFC 6962 leaf hash per entry (authenticated by the root)
	BundleProof      = "proof.txt"      // hex consistency proof from since to size
	BundleReceipts   = "receipts.jsonl" // {"job","raw"} signed receipts referenced by receipt entries
	BundleKeys       = "keys.txt"       // note verifier keys, one per line
	BundleJobs       = "jobs.csv"       // human-readable summary, one row per job (not verified)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type bundleBase struct {
	Log   string   `json:"log"`
	Since uint64   `json:"since"`
	Size  uint64   `json:"size"`
	Peaks []string `json:"peaks"` // hex, compact range of [0, since), largest first
}

type bundleLine struct {
	Seq    uint64 `json:"seq"`
	CRC32C uint32 `json:"crc32c"`
	Raw    string `json:"raw"`
}

type receiptLine struct {
	Job string `json:"job"`
	Raw string `json:"raw"`
}

// Export writes a self-contained, offline-verifiable bundle of log entries
// [since, size) to dir (created if needed), where size is the log size when
// the checkpoint is signed. The bundle holds the signed checkpoint, the raw
// canonical entry bytes, their leaf hashes, the compact range at since (so
// an auditor who verified up to since pays only for new entries), a
// consistency proof since → size, the receipts referenced by receipt
// entries, verifier keys and jobs.csv. Errors: ErrInvalidKey without a
// signer, ErrRange if since exceeds the log, I/O or store errors. Safe for
// concurrent use with appends.
func Export(ctx context.Context, s *Store, log, dir string, since uint64) error {
	cp, err := s.Checkpoint(log)
	if err != nil {
		return err
	}
	text, _, err := ParseNote(cp)
	if err != nil {
		return err
	}
	head, err := ParseHead(text)
	if err != nil {
		return err
	}
	if since > head.Size {
		return fmt.Errorf("%w: since %d beyond size %d", ErrRange, since, head.Size)
	}
	var peaks []merkle.Hash
	if err := s.withNodes(log, since, func(r merkle.NodeReader) error {
		peaks, err = merkle.PeaksAt(r, since)
		return err
	}); err != nil {
		return err
	}
	proof, err := s.ConsistencyProof(log, since, head.Size)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	w := &bundleWriter{dir: dir}
	w.file(BundleCheckpoint, cp)

	base := bundleBase{Log: log, Since: since, Size: head.Size}
	for _, p := range peaks {
		base.Peaks = append(base.Peaks, hex.EncodeToString(p[:]))
	}
	bb, _ := json.MarshalIndent(base, "", "  ")
	w.file(BundleBase, append(bb, '\n'))

	var proofTxt []byte
	for _, p := range proof {
		proofTxt = append(proofTxt, hex.EncodeToString(p[:])+"\n"...)
	}
	w.file(BundleProof, proofTxt)

	ef, lf := w.create(BundleEntries), w.create(BundleLeaves)
	jobs := newJobTable()
	var receiptJobs []string
	const chunk = 4096
	for from := since; from < head.Size && w.err == nil; from += chunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		to := min(from+chunk, head.Size)
		raws, err := s.EntryBytes(log, from, to)
		if err != nil {
			return err
		}
		for i, raw := range raws {
			seq := from + uint64(i)
			line, _ := json.Marshal(bundleLine{Seq: seq, CRC32C: crc32.Checksum(raw, castagnoli), Raw: base64.StdEncoding.EncodeToString(raw)})
			ef.Write(append(line, '\n'))
			leaf := merkle.HashLeaf(raw)
			lf.WriteString(hex.EncodeToString(leaf[:]) + "\n")
			e, err := ParseEntry(raw)
			if err != nil {
				return fmt.Errorf("audit: export: stored entry %d: %w", seq, err)
			}
			jobs.add(e)
			if e.Kind == KindReceipt && e.JobID != "" {
				receiptJobs = append(receiptJobs, e.JobID)
			}
		}
	}
	w.close(ef)
	w.close(lf)

	rf := w.create(BundleReceipts)
	seen := map[string]bool{}
	for _, job := range receiptJobs {
		if seen[job] {
			continue
		}
		seen[job] = true
		r, err := s.Receipt(job)
		if err != nil {
			return fmt.Errorf("audit: export: receipt for job: %w", err)
		}
		raw, err := r.MarshalBinary()
		if err != nil {
			return err
		}
		line, _ := json.Marshal(receiptLine{Job: job, Raw: base64.StdEncoding.EncodeToString(raw)})
		rf.Write(append(line, '\n'))
		jobs.receipt(job, r)
	}
	w.close(rf)

	var keys []byte
	if vk, ok := s.opts.Signer.(interface{ VerifierKey() string }); ok {
		keys = append(keys, vk.VerifierKey()+"\n"...)
	}
	for _, k := range s.opts.PeerKeys {
		keys = append(keys, k+"\n"...)
	}
	w.file(BundleKeys, keys)

	jf := w.create(BundleJobs)
	if jf != nil {
		jobs.writeCSV(jf)
	}
	w.close(jf)
	return w.err
}

// VerifierKey returns the note verifier key of the signer, as written to
// keys.txt.
func (s *Ed25519Signer) VerifierKey() string { return s.Verifier().String() }

type bundleWriter struct {
	dir string
	err error
}

type bufFile struct {
	*bufio.Writer
	f *os.File
}

func (w *bundleWriter) file(name string, data []byte) {
	if w.err == nil {
		if err := os.WriteFile(filepath.Join(w.dir, name), data, 0o644); err != nil {
			w.err = fmt.Errorf("audit: export: %w", err)
		}
	}
}

func (w *bundleWriter) create(name string) *bufFile {
	if w.err != nil {
		return &bufFile{Writer: bufio.NewWriter(discard{})}
	}
	f, err := os.Create(filepath.Join(w.dir, name))
	if err != nil {
		w.err = fmt.Errorf("audit: export: %w", err)
		return &bufFile{Writer: bufio.NewWriter(discard{})}
	}
	return &bufFile{Writer: bufio.NewWriterSize(f, 1<<16), f: f}
}

func (w *bundleWriter) close(b *bufFile) {
	if b == nil || b.f == nil {
		return
	}
	if err := b.Flush(); err != nil && w.err == nil {
		w.err = fmt.Errorf("audit: export: %w", err)
	}
	if err := b.f.Sync(); err != nil && w.err == nil {
		w.err = fmt.Errorf("audit: export: %w", err)
	}
	if err := b.f.Close(); err != nil && w.err == nil {
		w.err = fmt.Errorf("audit: export: %w", err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// jobRow is one line of jobs.csv.
type jobRow struct {
	job, agreement, peer string
	first, last          uint64
	state                Kind
	entries, releases    int
	rows, values         uint64
	epsilon              float64
	receipt              string
}

type jobTable struct {
	rows  map[string]*jobRow
	order []string
}

func newJobTable() *jobTable { return &jobTable{rows: map[string]*jobRow{}} }

func (t *jobTable) add(e *Entry) {
	if e.JobID == "" {
		return
	}
	r, ok := t.rows[e.JobID]
	if !ok {
		r = &jobRow{job: e.JobID, first: e.Seq, receipt: "none"}
		t.rows[e.JobID] = r
		t.order = append(t.order, e.JobID)
	}
	r.last = e.Seq
	r.entries++
	if e.AgreementID != "" {
		r.agreement = e.AgreementID
	}
	if e.Peer != "" {
		r.peer = e.Peer
	}
	if e.Kind != KindReceipt && e.Kind != KindRelease {
		r.state = e.Kind
	}
	if e.Release != nil {
		r.releases++
		r.rows += e.Release.Rows
		r.values += e.Release.Values
		r.epsilon += e.Release.Epsilon
	}
}

func (t *jobTable) receipt(job string, r *Receipt) {
	if row, ok := t.rows[job]; ok {
		row.receipt = "cosigned"
		if r.Unilateral() {
			row.receipt = "unilateral"
		}
	}
}

func (t *jobTable) writeCSV(w *bufFile) {
	cw := csv.NewWriter(w)
	cw.Write([]string{"job_id", "agreement_id", "peer", "first_seq", "last_seq", "last_state",
		"entries", "releases", "rows_released", "values_released", "epsilon_spent", "receipt"})
	sort.SliceStable(t.order, func(i, j int) bool { return t.rows[t.order[i]].first < t.rows[t.order[j]].first })
	for _, id := range t.order {
		r := t.rows[id]
		cw.Write([]string{r.job, r.agreement, r.peer, strconv.FormatUint(r.first, 10), strconv.FormatUint(r.last, 10),
			string(r.state), strconv.Itoa(r.entries), strconv.Itoa(r.releases), strconv.FormatUint(r.rows, 10),
			strconv.FormatUint(r.values, 10), strconv.FormatFloat(r.epsilon, 'g', -1, 64), r.receipt})
	}
	cw.Flush()
}
