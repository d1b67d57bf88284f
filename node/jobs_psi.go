package node

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"

	"github.com/tandem-dev/tandem/node/dataset"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
	"github.com/tandem-dev/tandem/psi"
	"github.com/tandem-dev/tandem/psi/ident"
)

// psiKind runs private set intersection jobs (issue 3). The alignment each
// side keeps is written to DATA/jobs/<id>/alignment.bin.
type psiKind struct{}

var revealByName = map[string]psi.Reveal{"initiator": psi.RevealInitiator, "both": psi.RevealBoth, "count": psi.RevealCount}

// PSIJobResult is what `job result` shows for a PSI job on either side:
// sizes and digests only.
type PSIJobResult struct {
	protocol.PSIResult
	Dataset         string           `json:"dataset"`
	DatasetDigest   string           `json:"dataset_digest"`
	DatasetRows     int64            `json:"dataset_rows"`
	IDColumns       []string         `json:"id_columns"`
	InvalidIDs      map[string]int64 `json:"invalid_ids"`   // per column, all reasons
	DuplicateIDs    map[string]int64 `json:"duplicate_ids"` // per column
	AlignmentFile   string           `json:"alignment_file,omitempty"`
	AlignmentBytes  int64            `json:"alignment_bytes,omitempty"`
	AlignmentDigest string           `json:"alignment_digest,omitempty"`
}

func (n *Node) preparePSI(p *tandemv1.JobProposal) error {
	ps := p.Psi
	if ps == nil {
		return fmt.Errorf("%w: psi parameters missing", errInvalid)
	}
	if ps.Reveal == "" {
		ps.Reveal = "initiator"
	}
	if _, ok := revealByName[ps.Reveal]; !ok {
		return fmt.Errorf("%w: reveal %q (want initiator, both or count)", errInvalid, ps.Reveal)
	}
	if ps.Suite == "" {
		ps.Suite = psi.FastSuite().Name()
	}
	if _, err := psi.SuiteByName(ps.Suite); err != nil {
		return fmt.Errorf("%w: %v", errInvalid, err)
	}
	if ps.PeerDataset == "" {
		return fmt.Errorf("%w: --peer-dataset is required", errInvalid)
	}
	ds, err := n.dataset(ps.Dataset)
	if err != nil {
		return fmt.Errorf("%w: %v", errInvalid, err)
	}
	spec, err := ds.Spec.spec()
	if err != nil {
		return err
	}
	for _, c := range ps.IdColumns {
		if !slices.ContainsFunc(spec.IDs, func(id dataset.IDColumn) bool { return id.Column == c }) {
			return fmt.Errorf("%w: %q is not an id column of dataset %s", errInvalid, c, ps.Dataset)
		}
	}
	return nil
}

func (n *Node) checkPSIResponder(p *tandemv1.JobProposal) error {
	ps := p.Psi
	if _, ok := revealByName[ps.Reveal]; !ok {
		return fmt.Errorf("unknown reveal mode %q", ps.Reveal)
	}
	if _, err := psi.SuiteByName(ps.Suite); err != nil {
		return err
	}
	if _, err := n.dataset(ps.PeerDataset); err != nil {
		return fmt.Errorf("dataset %s is not registered on %s", ps.PeerDataset, n.cfg.Name)
	}
	return nil
}

// jobDir is the job's private working directory (alignment, spill files,
// seed).
func (n *Node) jobDir(id string) (string, error) {
	d := filepath.Join(n.cfg.path(n.cfg.DataDir), "jobs", id)
	if err := os.MkdirAll(filepath.Join(d, "tmp"), 0o700); err != nil {
		return "", err
	}
	return d, nil
}

// jobSeed returns the job's persisted secret seed, creating it once. A
// resumed job reuses it, so its shuffle (and so its result) is unchanged.
func (n *Node) jobSeed(dir string) ([32]byte, error) {
	var seed [32]byte
	path := filepath.Join(dir, "seed")
	if b, err := os.ReadFile(path); err == nil && len(b) == 32 {
		copy(seed[:], b)
		return seed, nil
	}
	if _, err := rand.Read(seed[:]); err != nil {
		return seed, err
	}
	return seed, writeFileAtomic(path, seed[:], 0o600)
}

// idSource builds the protocol's view of a dataset's identifiers: one slot
// per id column (optionally restricted), counted in a first pass so the
// tag length is exact.
func idSource(ctx context.Context, ds *datasetRecord, columns []string) (protocol.IDSource, error) {
	spec, err := ds.Spec.spec()
	if err != nil {
		return protocol.IDSource{}, err
	}
	var cols []dataset.IDColumn
	for _, c := range spec.IDs {
		if len(columns) == 0 || slices.Contains(columns, c.Column) {
			cols = append(cols, c)
		}
	}
	kinds := make([]string, len(cols))
	for i, c := range cols {
		kinds[i] = c.Kind.String()
	}
	// One slot per id column; eachSlot refuses two columns of one kind.
	each := func(ctx context.Context, fn func(row int64, slot int, canon []byte) error) error {
		return eachSlot(ctx, spec, cols, fn)
	}
	var count int64
	if err := each(ctx, func(int64, int, []byte) error { count++; return nil }); err != nil {
		return protocol.IDSource{}, err
	}
	return protocol.IDSource{Rows: ds.Profile.Rows, Kinds: kinds, Count: count, Each: each}, nil
}

// eachSlot enumerates (row, slot, canonical id) in row order, streaming in
// constant memory. Repeated ids are kept: the PSI matching gives every
// shared position at most one row and every row at most one position.
func eachSlot(ctx context.Context, spec dataset.Spec, cols []dataset.IDColumn, fn func(row int64, slot int, canon []byte) error) error {
	byKind := map[ident.Kind][]int{}
	names := make([]string, len(cols))
	for i, c := range cols {
		byKind[c.Kind] = append(byKind[c.Kind], i)
		names[i] = c.Column
	}
	for _, slots := range byKind {
		if len(slots) > 1 {
			return fmt.Errorf("node: psi: %d id columns of kind %s; match on one per kind (--id)", len(slots), cols[slots[0]].Kind)
		}
	}
	return dataset.EachIDStream(ctx, spec, names, func(row int64, kind ident.Kind, canon []byte) error {
		return fn(row, byKind[kind][0], canon)
	})
}

func psiConfig(j *jobRun, dir string) (protocol.PSIConfig, error) {
	suite, err := psi.SuiteByName(j.prop.Psi.Suite)
	if err != nil {
		return protocol.PSIConfig{}, err
	}
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		return protocol.PSIConfig{}, err
	}
	return protocol.PSIConfig{JobID: j.rec.ID, Reveal: revealByName[j.prop.Psi.Reveal], Suite: suite, TempDir: filepath.Join(dir, "tmp"), StateDir: state}, nil
}

func (psiKind) initiate(ctx context.Context, j *jobRun) (any, error) {
	ds, err := j.n.dataset(j.prop.Psi.Dataset)
	if err != nil {
		return nil, err
	}
	j.progress("reading dataset", 0)
	src, err := idSource(ctx, ds, j.prop.Psi.IdColumns)
	if err != nil {
		return nil, err
	}
	return runPSISide(ctx, j, ds, src.Kinds, func(cfg protocol.PSIConfig, out *os.File) (protocol.PSIResult, error) {
		return protocol.RunPSIInitiator(ctx, j.t, cfg, src, out, j.progress)
	})
}

func (psiKind) respond(ctx context.Context, j *jobRun) (any, error) {
	ds, err := j.n.dataset(j.prop.Psi.PeerDataset)
	if err != nil {
		return nil, err
	}
	var used []string
	return runPSISide(ctx, j, ds, nil, func(cfg protocol.PSIConfig, out *os.File) (protocol.PSIResult, error) {
		return protocol.RunPSIResponder(ctx, j.t, cfg, func(theirs []string) (protocol.IDSource, error) {
			spec, err := ds.Spec.spec()
			if err != nil {
				return protocol.IDSource{}, err
			}
			own := make([]string, len(spec.IDs))
			for i, c := range spec.IDs {
				own[i] = c.Kind.String()
			}
			slots, err := protocol.CommonSlots(own, theirs)
			if err != nil {
				return protocol.IDSource{}, err
			}
			for _, s := range slots {
				used = append(used, spec.IDs[s].Column)
			}
			return idSource(ctx, ds, used)
		}, out, j.progress)
	})
}

// runPSISide runs one side with its alignment written to a temporary file
// that replaces the job's alignment only on success.
func runPSISide(ctx context.Context, j *jobRun, ds *datasetRecord, kinds []string, run func(protocol.PSIConfig, *os.File) (protocol.PSIResult, error)) (*PSIJobResult, error) {
	dir, err := j.n.jobDir(j.rec.ID)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(filepath.Join(dir, "tmp"))
	cfg, err := psiConfig(j, dir)
	if err != nil {
		return nil, err
	}
	if j.rec.Role == "responder" {
		if cfg.Seed, err = j.n.jobSeed(dir); err != nil {
			return nil, err
		}
	}
	final := filepath.Join(dir, "alignment.bin")
	f, err := os.CreateTemp(dir, "alignment-*.tmp")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	res, err := run(cfg, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	res.BytesSent = j.t.BytesSent()
	res.Transcript = fmt.Sprintf("%x", j.t.Digest())
	out := &PSIJobResult{PSIResult: res, Dataset: ds.Spec.Name, DatasetDigest: ds.Profile.Digest, DatasetRows: ds.Profile.Rows,
		InvalidIDs: map[string]int64{}, DuplicateIDs: map[string]int64{}}
	for _, id := range ds.Profile.IDs {
		if len(kinds) > 0 && !slices.Contains(kinds, id.Kind.String()) {
			continue
		}
		out.IDColumns = append(out.IDColumns, id.Column)
		var inv int64
		for _, c := range id.Invalid {
			inv += c
		}
		out.InvalidIDs[id.Column] = inv
		out.DuplicateIDs[id.Column] = id.Duplicates
	}
	if cfg.Reveal != psi.RevealCount {
		if err := os.Rename(f.Name(), final); err != nil {
			return nil, err
		}
		st, _ := os.Stat(final)
		out.AlignmentFile, out.AlignmentBytes = final, st.Size()
		if out.AlignmentDigest, err = fileDigest(final); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// exportMatches writes the initiator's own matched rows of a PSI job as
// CSV: the row index and the dataset's id columns, nothing from the
// partner.
func (n *Node) exportMatches(ctx context.Context, jobID, out, role string) (int64, error) {
	rec, err := n.jobs.get(jobID)
	if err != nil {
		return 0, err
	}
	if rec.Kind != "psi" || rec.State != stateSucceeded {
		return 0, fmt.Errorf("%w: job %s is a %s job in state %s; export needs a succeeded psi job", errInvalid, jobID, rec.Kind, rec.State)
	}
	if !filepath.IsAbs(out) {
		return 0, fmt.Errorf("%w: --out must be an absolute path", errInvalid)
	}
	prop, err := rec.proposal()
	if err != nil {
		return 0, err
	}
	name := prop.Psi.Dataset
	if rec.Role == "responder" {
		name = prop.Psi.PeerDataset
	}
	if rec.Role == "responder" && prop.Psi.Reveal != "both" {
		return 0, fmt.Errorf("%w: in %s mode this node does not learn which of its rows matched", errInvalid, prop.Psi.Reveal)
	}
	ds, err := n.dataset(name)
	if err != nil {
		return 0, err
	}
	dir, _ := n.jobDir(jobID)
	f, err := os.Open(filepath.Join(dir, "alignment.bin"))
	if err != nil {
		return 0, fmt.Errorf("%w: job %s keeps no alignment (count mode?)", errInvalid, jobID)
	}
	al, err := psi.ReadAlignment(f)
	f.Close()
	if err != nil {
		return 0, err
	}
	rows := make([]int64, len(al.Rows))
	for i, r := range al.Rows {
		rows[i] = int64(r)
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a] < rows[b] })
	spec, err := ds.Spec.spec()
	if err != nil {
		return 0, err
	}
	tmp := out + ".tmp"
	w, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp)
	cw := csv.NewWriter(w)
	ids := idColumns(spec)
	cw.Write(append([]string{"row"}, ids...))
	var count int64
	err = dataset.RowCells(ctx, spec, rows, ids, func(row int64, cells []string) error {
		line := append([]string{strconv.FormatInt(row, 10)}, cells...)
		count++
		return cw.Write(line)
	})
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return 0, err
	}
	n.record(ctx, event{Kind: "export", JobID: jobID, Actor: "operator:" + role, Detail: fmt.Sprintf("psi matches rows=%d to %s", count, out)})
	return count, nil
}

func (s *controlServer) ExportMatches(ctx context.Context, req *tandemv1.ExportMatchesRequest) (*tandemv1.ExportMatchesResponse, error) {
	n, err := s.n.exportMatches(ctx, req.JobId, req.Out, callerRole(ctx))
	if err != nil {
		return nil, toStatus(err)
	}
	return &tandemv1.ExportMatchesResponse{Out: req.Out, Rows: n}, nil
}

// checkInputsUnchanged refuses to start or resume a job whose input
// dataset file no longer has the digest it was registered with: a resumed
// job must compute over exactly the same rows as the first attempt.
func (n *Node) checkInputsUnchanged(rec *jobRecord) error {
	if rec.Kind != "psi" {
		return nil
	}
	prop, err := rec.proposal()
	if err != nil {
		return err
	}
	name := prop.Psi.Dataset
	if rec.Role == "responder" {
		name = prop.Psi.PeerDataset
	}
	ds, err := n.dataset(name)
	if err != nil {
		return err
	}
	d, err := fileDigest(ds.Spec.File)
	if err != nil {
		return fmt.Errorf("node: dataset %s: %w", name, err)
	}
	if d != ds.Profile.Digest {
		return fmt.Errorf("node: dataset %s changed since it was registered (digest %s, registered %s); register it again and start a new job", name, d, ds.Profile.Digest)
	}
	return nil
}
