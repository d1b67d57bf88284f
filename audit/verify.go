package audit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tandem-dev/tandem/audit/merkle"
)

// Class is the kind of tampering VerifyBundle detected.
type Class uint8

// Tamper classes. See VerifyBundle for how each is decided.
const (
	BitFlip            Class = iota + 1 // entry bytes corrupted (checksum, structure or chain broken at that entry)
	Deletion                            // entries missing from the middle (sequence gap)
	Truncation                          // entries missing at the end (fewer entries than the checkpoint)
	Reordering                          // genuine entries in the wrong order or duplicated
	Forged                              // bad signature, or a well-formed re-chained entry not in the signed tree
	MissingCoSignature                  // receipt missing or lacking a co-signature the log recorded
	Inconsistent                        // bundle contradicts the trusted checkpoint (fork or rollback)
)

var classNames = [...]string{"", "bit-flip", "deletion", "truncation", "reordering", "forged",
	"missing-co-signature", "inconsistent"}

// String returns the class name, e.g. "bit-flip".
func (c Class) String() string {
	if int(c) < len(classNames) && c != 0 {
		return classNames[c]
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// ExitCode maps the class to a distinct process exit code for CLIs:
//
//	BitFlip 10, Deletion 11, Truncation 12, Reordering 13, Forged 14,
//	MissingCoSignature 15, Inconsistent 16.
//
// Unknown classes map to 1.
func (c Class) ExitCode() int {
	if c >= BitFlip && c <= Inconsistent {
		return 9 + int(c)
	}
	return 1
}

// VerifyError reports tampering found by VerifyBundle. Index is the log
// sequence number of the first affected entry, or -1 when the failure is not
// tied to an entry (checkpoint signature, unlocalisable forgery); for
// Inconsistent it is the tree size at which the bundle contradicts the
// trusted checkpoint.
type VerifyError struct {
	Index int64
	Class Class
	Err   error // detail, may be nil
}

func (e *VerifyError) Error() string {
	msg := fmt.Sprintf("audit: bundle verification failed: %s at index %d", e.Class, e.Index)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *VerifyError) Unwrap() error { return e.Err }

func verr(index uint64, c Class, format string, args ...any) *VerifyError {
	return &VerifyError{Index: int64(index), Class: c, Err: fmt.Errorf(format, args...)}
}

// VerifyOptions configures VerifyBundle.
type VerifyOptions struct {
	// PubKey verifies the log's checkpoint and the node's receipt
	// signatures. Required; it must come from a trusted source, not from
	// the bundle's keys.txt.
	PubKey Verifier
	// PeerKeys verify peer co-signatures on receipts. If nil, keys.txt is
	// used (trust on first use).
	PeerKeys []Verifier
	// TrustedCheckpoint is an optional checkpoint signed by PubKey from an
	// earlier verification. The bundle must extend it; for an incremental
	// bundle (since > 0) its size must lie in [since, size].
	TrustedCheckpoint []byte
	// Origin, if set, must equal the checkpoint origin.
	Origin string
}

// BundleReport summarises a verified bundle.
type BundleReport struct {
	Log         string
	Since, Size uint64
	Root        merkle.Hash
	Checkpoint  []byte   // the bundle's signed checkpoint, to pass as TrustedCheckpoint next time
	Receipts    int      // receipts checked
	Unilateral  []string // job ids whose receipts carry one signature, as the log recorded
	Cosigned    []string // job ids with both signatures
}

type bundleEntry struct {
	outer    uint64
	crcOK    bool
	lineOK   bool
	raw      []byte
	leaf     merkle.Hash
	e        *Entry // nil if raw does not parse
	parseErr error
}

// VerifyBundle verifies an export bundle offline using only public keys. It
// checks the checkpoint signature, every entry's checksum, canonical
// encoding, sequence number and previous-hash link, that the entries fold
// into the signed Merkle root, the consistency proof, consistency with
// opts.TrustedCheckpoint (incremental: only entries after since are hashed),
// and every receipt referenced by a receipt entry against the digest and
// signature count the log recorded.
//
// Classification. Leaf hashes in leaves.txt are authenticated when they fold
// into the signed root; entry i is then compared with leaf i:
//
//   - bytes that are no leaf of the tree and fail their checksum, do not
//     parse, or break the hash chain → BitFlip at i;
//   - such bytes that are well formed and re-chained (the chain is intact
//     around i) → Forged at i;
//   - a genuine leaf j > i at position i whose own leaf i is absent → Deletion at i;
//   - a genuine leaf at the wrong position otherwise → Reordering at i;
//   - every present entry in place but fewer than the checkpoint size →
//     Truncation at the first missing sequence number;
//   - checkpoint signature failure → Forged at -1;
//   - receipt absent, or fewer valid signatures than logged →
//     MissingCoSignature at the receipt entry; receipt altered or badly
//     signed → Forged at the receipt entry;
//   - root at the trusted size differs, or the bundle is shorter than the
//     trusted checkpoint → Inconsistent.
//
// On tampering it returns a *VerifyError; malformed bundles that cannot be
// read at all (missing files, bad base.json) and bad options yield plain
// errors wrapping ErrMalformed or describing the problem. Safe for
// concurrent use.
func VerifyBundle(dir string, opts VerifyOptions) (*BundleReport, error) {
	if opts.PubKey == nil {
		return nil, errors.New("audit: VerifyOptions.PubKey is required")
	}
	cp, err := os.ReadFile(filepath.Join(dir, BundleCheckpoint))
	if err != nil {
		return nil, fmt.Errorf("%w: bundle: %v", ErrMalformed, err)
	}
	head, err := OpenCheckpoint(cp, opts.PubKey)
	if err != nil {
		return nil, &VerifyError{Index: -1, Class: Forged, Err: err}
	}
	if opts.Origin != "" && head.Origin != opts.Origin {
		return nil, &VerifyError{Index: -1, Class: Forged, Err: fmt.Errorf("origin %q", head.Origin)}
	}
	var base bundleBase
	bb, err := os.ReadFile(filepath.Join(dir, BundleBase))
	if err == nil {
		err = json.Unmarshal(bb, &base)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: base.json: %v", ErrMalformed, err)
	}
	if base.Since > head.Size {
		return nil, &VerifyError{Index: int64(head.Size), Class: Truncation, Err: errors.New("base beyond checkpoint")}
	}
	var peaks []merkle.Hash
	for _, p := range base.Peaks {
		b, err := hex.DecodeString(p)
		if err != nil || len(b) != merkle.HashSize {
			return nil, fmt.Errorf("%w: base.json peaks", ErrMalformed)
		}
		peaks = append(peaks, merkle.Hash(b))
	}
	baseTree, err := merkle.NewCompact(base.Since, peaks)
	if err != nil {
		return nil, fmt.Errorf("%w: base.json: %v", ErrMalformed, err)
	}
	since := base.Since
	want := head.Size - since

	var trusted *Head
	if opts.TrustedCheckpoint != nil {
		th, err := OpenCheckpoint(opts.TrustedCheckpoint, opts.PubKey)
		if err != nil {
			return nil, fmt.Errorf("audit: trusted checkpoint: %w", err)
		}
		if th.Origin != head.Origin {
			return nil, &VerifyError{Index: -1, Class: Inconsistent, Err: errors.New("origin differs from trusted checkpoint")}
		}
		if th.Size < since {
			return nil, fmt.Errorf("audit: trusted checkpoint (size %d) predates the bundle base %d; export with since <= %d", th.Size, since, th.Size)
		}
		trusted = &th
	}

	entries, err := readEntries(filepath.Join(dir, BundleEntries))
	if err != nil {
		return nil, err
	}

	// Fold computed leaves into the tree, noting the root at the trusted size.
	tree := baseTree.Clone()
	var trustedRoot *merkle.Hash
	checkTrusted := func() {
		if trusted != nil && trustedRoot == nil && tree.Size() == trusted.Size {
			r := tree.Root()
			trustedRoot = &r
		}
	}
	checkTrusted()
	for i := range entries {
		tree.Append(entries[i].leaf, nil)
		checkTrusted()
	}
	if uint64(len(entries)) != want || tree.Root() != head.Root {
		return nil, classify(dir, since, head, baseTree, entries)
	}
	// Entries are exactly the signed ones. Check their internal structure:
	// anything wrong now was signed by the log key itself.
	for i := range entries {
		be := &entries[i]
		seq := since + uint64(i)
		if !be.lineOK || !be.crcOK || be.outer != seq {
			return nil, verr(seq, BitFlip, "entry line metadata corrupted")
		}
		if be.e == nil {
			return nil, verr(seq, Forged, "signed entry does not parse: %v", be.parseErr)
		}
		if be.e.Seq != seq {
			return nil, verr(seq, Forged, "signed entry carries seq %d", be.e.Seq)
		}
		if i > 0 && be.e.PrevHash != entries[i-1].leaf || seq == 0 && be.e.PrevHash != (merkle.Hash{}) {
			return nil, verr(seq, Forged, "signed entry breaks the hash chain")
		}
	}
	if err := verifyProof(dir, since, head, baseTree.Root()); err != nil {
		return nil, err
	}
	rep := &BundleReport{Log: base.Log, Since: since, Size: head.Size, Root: head.Root, Checkpoint: cp}
	if err := verifyReceipts(dir, opts, entries, since, rep); err != nil {
		return nil, err
	}
	if trusted != nil {
		switch {
		case trusted.Size > head.Size:
			return nil, verr(head.Size, Inconsistent, "bundle size %d is below trusted size %d (rollback)", head.Size, trusted.Size)
		case trustedRoot == nil || *trustedRoot != trusted.Root:
			return nil, verr(trusted.Size, Inconsistent, "root at trusted size %d differs (fork)", trusted.Size)
		}
	}
	return rep, nil
}

func readEntries(path string) ([]bundleEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: bundle: %v", ErrMalformed, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 4<<20)
	var out []bundleEntry
	for sc.Scan() {
		var l bundleLine
		be := bundleEntry{}
		if err := json.Unmarshal(sc.Bytes(), &l); err == nil {
			be.lineOK = true
			be.outer = l.Seq
			if raw, err := base64.StdEncoding.Strict().DecodeString(l.Raw); err == nil {
				be.raw = raw
				be.crcOK = crc32.Checksum(raw, castagnoli) == l.CRC32C
			} else {
				be.lineOK = false
			}
		}
		if !be.lineOK {
			be.raw = append([]byte(nil), sc.Bytes()...)
		}
		be.leaf = merkle.HashLeaf(be.raw)
		if be.lineOK {
			be.e, be.parseErr = ParseEntry(be.raw)
		}
		out = append(out, be)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: entries: %v", ErrMalformed, err)
	}
	return out, nil
}

func readLeaves(path string) ([]merkle.Hash, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var out []merkle.Hash
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		h, err := hex.DecodeString(line)
		if err != nil || len(h) != merkle.HashSize {
			return nil, false
		}
		out = append(out, merkle.Hash(h))
	}
	return out, true
}

// classify localises and classifies a bundle whose entries do not fold into
// the signed root. See VerifyBundle for the rules.
func classify(dir string, since uint64, head Head, base *merkle.Compact, entries []bundleEntry) *VerifyError {
	want := head.Size - since
	listed, ok := readLeaves(filepath.Join(dir, BundleLeaves))
	if ok && uint64(len(listed)) == want {
		t := base.Clone()
		for _, l := range listed {
			t.Append(l, nil)
		}
		ok = t.Root() == head.Root
	} else {
		ok = false
	}
	if !ok {
		return classifyUnauthenticated(since, want, entries)
	}
	listedPos := make(map[merkle.Hash]uint64, len(listed))
	for j, l := range listed {
		if _, dup := listedPos[l]; !dup {
			listedPos[l] = uint64(j)
		}
	}
	computedPos := make(map[merkle.Hash][]uint64, len(entries))
	for k := range entries {
		computedPos[entries[k].leaf] = append(computedPos[entries[k].leaf], uint64(k))
	}
	for k := range entries {
		be := &entries[k]
		i := uint64(k)
		seq := since + i
		if i >= want {
			return verr(seq, Forged, "entry beyond the signed tree size")
		}
		if be.leaf == listed[i] {
			continue
		}
		if j, genuine := listedPos[be.leaf]; genuine {
			if j < i {
				return verr(seq, Reordering, "entry %d appears at position %d", since+j, seq)
			}
			for _, p := range computedPos[listed[i]] {
				if p > i {
					return verr(seq, Reordering, "entry %d appears at position %d", since+j, seq)
				}
			}
			return verr(seq, Deletion, "entries %d..%d missing", seq, since+j-1)
		}
		// Bytes that are not in the signed tree.
		if !be.lineOK || !be.crcOK || be.e == nil {
			return verr(seq, BitFlip, "entry corrupted")
		}
		chained := be.e.Seq == seq
		if k > 0 {
			chained = chained && be.e.PrevHash == entries[k-1].leaf
		} else if since == 0 {
			chained = chained && be.e.PrevHash == (merkle.Hash{})
		}
		if k+1 < len(entries) && entries[k+1].e != nil {
			chained = chained && entries[k+1].e.PrevHash == be.leaf
		}
		if chained {
			return verr(seq, Forged, "well-formed, re-chained entry not in the signed tree")
		}
		return verr(seq, BitFlip, "entry modified; hash chain broken")
	}
	if uint64(len(entries)) < want {
		return verr(since+uint64(len(entries)), Truncation, "%d entries missing at the end", want-uint64(len(entries)))
	}
	return &VerifyError{Index: -1, Class: Forged, Err: errors.New("entries do not match the signed root")}
}

// classifyUnauthenticated is the fallback when leaves.txt is missing or was
// itself altered: it relies on checksums, sequence numbers and the chain.
func classifyUnauthenticated(since, want uint64, entries []bundleEntry) *VerifyError {
	present := map[uint64]bool{}
	for _, be := range entries {
		if be.lineOK {
			present[be.outer] = true
		}
	}
	for k := range entries {
		be := &entries[k]
		seq := since + uint64(k)
		if !be.lineOK || !be.crcOK || be.e == nil {
			return verr(seq, BitFlip, "entry corrupted")
		}
		if be.outer != seq {
			if present[seq] || be.outer < seq {
				return verr(seq, Reordering, "entry %d at position %d", be.outer, seq)
			}
			return verr(seq, Deletion, "sequence gap at %d", seq)
		}
		if be.e.Seq != seq || k > 0 && be.e.PrevHash != entries[k-1].leaf {
			return verr(seq, BitFlip, "hash chain broken")
		}
	}
	if uint64(len(entries)) < want {
		return verr(since+uint64(len(entries)), Truncation, "entries missing at the end")
	}
	return &VerifyError{Index: -1, Class: Forged, Err: errors.New("entries do not match the signed root")}
}

func verifyProof(dir string, since uint64, head Head, baseRoot merkle.Hash) error {
	b, err := os.ReadFile(filepath.Join(dir, BundleProof))
	if err != nil {
		return fmt.Errorf("%w: bundle: %v", ErrMalformed, err)
	}
	var proof []merkle.Hash
	for _, line := range strings.Fields(string(b)) {
		h, err := hex.DecodeString(line)
		if err != nil || len(h) != merkle.HashSize {
			return &VerifyError{Index: -1, Class: Forged, Err: errors.New("consistency proof malformed")}
		}
		proof = append(proof, merkle.Hash(h))
	}
	if err := merkle.VerifyConsistency(since, head.Size, baseRoot, head.Root, proof); err != nil {
		return &VerifyError{Index: -1, Class: Forged, Err: err}
	}
	return nil
}

func verifyReceipts(dir string, opts VerifyOptions, entries []bundleEntry, since uint64, rep *BundleReport) error {
	keys := []Verifier{opts.PubKey}
	if opts.PeerKeys != nil {
		keys = append(keys, opts.PeerKeys...)
	} else if b, err := os.ReadFile(filepath.Join(dir, BundleKeys)); err == nil {
		for _, line := range strings.Fields(string(b)) {
			if v, err := ParseVerifierKey(line); err == nil && v.Name() != opts.PubKey.Name() {
				keys = append(keys, v)
			}
		}
	}
	receipts := map[string][]byte{}
	if b, err := os.ReadFile(filepath.Join(dir, BundleReceipts)); err == nil {
		for _, line := range bytes.Split(b, []byte("\n")) {
			var rl receiptLine
			if len(line) == 0 || json.Unmarshal(line, &rl) != nil {
				continue
			}
			if raw, err := base64.StdEncoding.Strict().DecodeString(rl.Raw); err == nil {
				receipts[rl.Job] = raw
			}
		}
	}
	status := map[string]bool{}
	for k := range entries {
		e := entries[k].e
		if e.Kind != KindReceipt {
			continue
		}
		seq := since + uint64(k)
		raw, ok := receipts[e.JobID]
		if !ok {
			return verr(seq, MissingCoSignature, "receipt missing from bundle")
		}
		r, err := ParseReceipt(raw)
		if err != nil {
			return verr(seq, Forged, "receipt: %v", err)
		}
		if d, _ := r.Digest(); d != e.Detail["receipt"] || r.JobID != e.JobID {
			return verr(seq, Forged, "receipt differs from the logged digest")
		}
		wantSigs, _ := strconv.Atoi(e.Detail["signatures"])
		if len(r.Sigs) < wantSigs {
			return verr(seq, MissingCoSignature, "receipt has %d signatures, log recorded %d", len(r.Sigs), wantSigs)
		}
		unilateral, err := r.Verify(keys)
		if err != nil {
			return verr(seq, Forged, "receipt: %v", err)
		}
		status[e.JobID] = unilateral
		rep.Receipts++
	}
	for _, k := range sortedKeys(status) {
		if status[k] {
			rep.Unilateral = append(rep.Unilateral, k)
		} else {
			rep.Cosigned = append(rep.Cosigned, k)
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
