package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/maphash"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/tandem-dev/tandem/psi/ident"
)

// MaxFirstLines is how many offending line numbers a profile keeps per column.
const MaxFirstLines = 5

// maxCategories bounds the number of distinct values tracked per Attrs column.
const maxCategories = 10000

// Profile is the result of Scan: what the registry shows an operator about a
// dataset. It contains counts, line numbers and column names, and (for
// Attrs) the most frequent category values; it never contains an identifier.
type Profile struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	Format string `json:"format"` // "csv" or "parquet"
	// Delimiter is a CSV file's field separator when it is not a comma
	// (read from the header line: ";", "\t" or "|").
	Delimiter string   `json:"delimiter,omitempty"`
	Rows      int64    `json:"rows"`    // data rows (header excluded)
	Digest    string   `json:"digest"`  // "sha256:<hex>" of the file bytes
	Columns   []string `json:"columns"` // every column of the file, in file order

	IDs []IDProfile `json:"ids"`
	// Nulls counts missing cells per column named in the Spec (see isNull:
	// "", NA, N/A, NULL, NaN, None, \N; in Attrs "None" is a level, not a
	// null). Cells that fail to parse in Label, Features or Consent are
	// counted here too.
	Nulls map[string]int64 `json:"nulls"`

	Label    *LabelProfile        `json:"label,omitempty"`
	Features []NumericProfile     `json:"features,omitempty"`
	Attrs    []CategoricalProfile `json:"attrs,omitempty"`
	Consent  *ConsentProfile      `json:"consent,omitempty"`
}

// IDProfile describes one identifier column. Valid + Nulls + sum(Invalid) = Rows.
type IDProfile struct {
	Column string     `json:"column"`
	Kind   ident.Kind `json:"kind"`
	Valid  int64      `json:"valid"`
	Nulls  int64      `json:"nulls"`
	// Invalid counts non-null cells ident rejects, by ident.Reason string
	// ("bad_checksum", "bad_length", ...).
	Invalid map[string]int64 `json:"invalid"`
	// FirstInvalidLines are the line numbers of the first MaxFirstLines
	// invalid cells (CSV: 1-based physical line, header is line 1; Parquet:
	// 1-based row).
	FirstInvalidLines []int64 `json:"first_invalid_lines,omitempty"`
	// Duplicates counts valid rows whose canonical id already appeared on an
	// earlier row of this column; Distinct = Valid - Duplicates. Both are
	// exact up to 64-bit hash collisions (expected < 0.001 at 1e8 rows).
	Duplicates int64 `json:"duplicates"`
	Distinct   int64 `json:"distinct"`
}

// NumericProfile describes a Features column over its parseable cells.
type NumericProfile struct {
	Column string `json:"column"`
	Count  int64  `json:"count"` // parseable, finite cells
	Nulls  int64  `json:"nulls"` // missing cells plus Bad
	// Bad counts non-null cells that are not numbers ("bad numeric"); they
	// are treated as nulls by Column.
	Bad           int64   `json:"bad"`
	FirstBadLines []int64 `json:"first_bad_lines,omitempty"`
	Min           float64 `json:"min"`
	Max           float64 `json:"max"`
	Mean          float64 `json:"mean"`
	Std           float64 `json:"std"` // population standard deviation
}

// LabelProfile describes the 0/1 Label column.
type LabelProfile struct {
	Column        string  `json:"column"`
	Positives     int64   `json:"positives"`
	Negatives     int64   `json:"negatives"`
	Nulls         int64   `json:"nulls"` // missing cells plus Bad
	Bad           int64   `json:"bad"`   // non-null cells that are not 0/1 (boolean-ish words accepted)
	FirstBadLines []int64 `json:"first_bad_lines,omitempty"`
}

// ConsentProfile describes the boolean-ish Consent column.
type ConsentProfile struct {
	Column        string  `json:"column"`
	Yes           int64   `json:"yes"`
	No            int64   `json:"no"`
	Nulls         int64   `json:"nulls"` // missing cells plus Bad
	Bad           int64   `json:"bad"`
	FirstBadLines []int64 `json:"first_bad_lines,omitempty"`
}

// CategoricalProfile describes an Attrs column.
type CategoricalProfile struct {
	Column string `json:"column"`
	Count  int64  `json:"count"`
	Nulls  int64  `json:"nulls"`
	// Distinct is the number of distinct values; if Truncated, more than
	// 10000 values occurred and Distinct is a lower bound.
	Distinct  int64           `json:"distinct"`
	Truncated bool            `json:"truncated,omitempty"`
	Top       []CategoryCount `json:"top,omitempty"` // up to 10 most frequent values
}

// CategoryCount is one value of a categorical column and its frequency.
type CategoryCount struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// progressEvery is how often (in rows) Scan calls its progress function.
const progressEvery = 1 << 16

// Scan reads the whole file once, checks its schema and every row, and
// returns its profile. Malformed rows (wrong field count, bad quoting) stop
// the scan with a *LineError wrapping ErrMalformed; invalid identifiers and
// unparseable label, feature or consent cells do not stop it and are counted
// in the profile instead. A column of the Spec missing from the file gives a
// *LineError wrapping ErrSchema. progress, if not nil, is called with the
// number of rows read so far every 65536 rows and once at the end.
//
// Scan streams the file; its memory is 8 bytes per valid identifier (for the
// duplicate count) plus bounded per-column state. It is safe for concurrent
// use on different or the same files. No returned error contains a cell value.
func Scan(ctx context.Context, spec Spec, progress func(rows int64)) (*Profile, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	format, _ := spec.Format()
	h := sha256.New()
	t, err := openTable(spec, spec.columns(), h)
	if err != nil {
		return nil, err
	}
	defer t.close()
	idx, err := checkHeader(spec.File, t.header(), spec.columns())
	if err != nil {
		return nil, err
	}

	p := &Profile{
		Name:    spec.Name,
		File:    spec.File,
		Format:  format,
		Columns: slices.Clone(t.header()),
		Nulls:   make(map[string]int64),
	}
	if ct, ok := t.(*csvTable); ok && ct.r.comma != ',' {
		p.Delimiter = string(rune(ct.r.comma))
	}
	for _, c := range spec.columns() {
		p.Nulls[c] = 0
	}

	// Identifier columns.
	type idState struct {
		col    int
		hashes []uint64
	}
	seed := maphash.MakeSeed()
	ids := make([]idState, len(spec.IDs))
	p.IDs = make([]IDProfile, len(spec.IDs))
	for i, id := range spec.IDs {
		ids[i].col = idx[id.Column]
		p.IDs[i] = IDProfile{Column: id.Column, Kind: id.Kind, Invalid: make(map[string]int64)}
	}

	// Label, consent, features, attrs.
	labelCol, consentCol := -1, -1
	if spec.Label != "" {
		labelCol = idx[spec.Label]
		p.Label = &LabelProfile{Column: spec.Label}
	}
	if spec.Consent != "" {
		consentCol = idx[spec.Consent]
		p.Consent = &ConsentProfile{Column: spec.Consent}
	}
	type featState struct {
		col      int
		mean, m2 float64
	}
	feats := make([]featState, len(spec.Features))
	p.Features = make([]NumericProfile, len(spec.Features))
	for i, c := range spec.Features {
		feats[i].col = idx[c]
		p.Features[i] = NumericProfile{Column: c, Min: math.Inf(1), Max: math.Inf(-1)}
	}
	type attrState struct {
		col    int
		counts map[string]int64
	}
	attrs := make([]attrState, len(spec.Attrs))
	p.Attrs = make([]CategoricalProfile, len(spec.Attrs))
	for i, c := range spec.Attrs {
		attrs[i] = attrState{col: idx[c], counts: make(map[string]int64)}
		p.Attrs[i] = CategoricalProfile{Column: c}
	}

	addLine := func(lines *[]int64, line int64) {
		if len(*lines) < MaxFirstLines {
			*lines = append(*lines, line)
		}
	}

	var buf []byte
	err = forEach(ctx, t, func(row int64, rec []string, line int64) error {
		for i := range ids {
			ip := &p.IDs[i]
			cell := rec[ids[i].col]
			if isNull(cell) {
				ip.Nulls++
				p.Nulls[ip.Column]++
				continue
			}
			var err error
			buf, err = ident.AppendCanonical(buf[:0], ip.Kind, cell)
			if err != nil {
				ip.Invalid[reasonOf(err)]++
				addLine(&ip.FirstInvalidLines, line)
				continue
			}
			ip.Valid++
			ids[i].hashes = append(ids[i].hashes, maphash.Bytes(seed, buf))
		}
		if lp := p.Label; lp != nil {
			cell := rec[labelCol]
			switch {
			case isNull(cell):
				lp.Nulls++
				p.Nulls[lp.Column]++
			default:
				v, ok := parseLabel(cell)
				switch {
				case !ok:
					lp.Bad++
					lp.Nulls++
					p.Nulls[lp.Column]++
					addLine(&lp.FirstBadLines, line)
				case v:
					lp.Positives++
				default:
					lp.Negatives++
				}
			}
		}
		if cp := p.Consent; cp != nil {
			cell := rec[consentCol]
			switch {
			case isNull(cell):
				cp.Nulls++
				p.Nulls[cp.Column]++
			default:
				v, ok := parseBool(cell)
				switch {
				case !ok:
					cp.Bad++
					cp.Nulls++
					p.Nulls[cp.Column]++
					addLine(&cp.FirstBadLines, line)
				case v:
					cp.Yes++
				default:
					cp.No++
				}
			}
		}
		for i := range feats {
			fp := &p.Features[i]
			cell := rec[feats[i].col]
			if isNull(cell) {
				fp.Nulls++
				p.Nulls[fp.Column]++
				continue
			}
			x, ok := parseNumber(cell)
			if !ok {
				fp.Bad++
				fp.Nulls++
				p.Nulls[fp.Column]++
				addLine(&fp.FirstBadLines, line)
				continue
			}
			fp.Count++
			fp.Min = min(fp.Min, x)
			fp.Max = max(fp.Max, x)
			// Welford's online mean and variance.
			d := x - feats[i].mean
			feats[i].mean += d / float64(fp.Count)
			feats[i].m2 += d * (x - feats[i].mean)
		}
		for i := range attrs {
			ap := &p.Attrs[i]
			cell := rec[attrs[i].col]
			if isNullCategory(cell) {
				ap.Nulls++
				p.Nulls[ap.Column]++
				continue
			}
			ap.Count++
			if n, ok := attrs[i].counts[cell]; ok {
				attrs[i].counts[cell] = n + 1
			} else if len(attrs[i].counts) < maxCategories {
				attrs[i].counts[strings.Clone(cell)] = 1 // not the file's window the cell is a slice of
			} else {
				ap.Truncated = true
			}
		}
		p.Rows = row + 1
		if progress != nil && p.Rows%progressEvery == 0 {
			progress(p.Rows)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if progress != nil {
		progress(p.Rows)
	}

	for i := range ids {
		hs := ids[i].hashes
		slices.Sort(hs)
		var distinct int64
		for j := range hs {
			if j == 0 || hs[j] != hs[j-1] {
				distinct++
			}
		}
		p.IDs[i].Distinct = distinct
		p.IDs[i].Duplicates = p.IDs[i].Valid - distinct
		ids[i].hashes = nil
	}
	for i := range feats {
		fp := &p.Features[i]
		if fp.Count == 0 {
			fp.Min, fp.Max = 0, 0
			continue
		}
		fp.Mean = feats[i].mean
		fp.Std = math.Sqrt(feats[i].m2 / float64(fp.Count))
	}
	for i := range attrs {
		ap := &p.Attrs[i]
		ap.Distinct = int64(len(attrs[i].counts))
		top := make([]CategoryCount, 0, len(attrs[i].counts))
		for v, n := range attrs[i].counts {
			top = append(top, CategoryCount{Value: v, Count: n})
		}
		sort.Slice(top, func(a, b int) bool {
			if top[a].Count != top[b].Count {
				return top[a].Count > top[b].Count
			}
			return top[a].Value < top[b].Value
		})
		if len(top) > 10 {
			top = top[:10]
		}
		ap.Top = top
	}
	p.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return p, nil
}

// reasonOf returns the ident reason name of a canonicalisation error.
func reasonOf(err error) string {
	var ie *ident.Error
	if errors.As(err, &ie) {
		return ie.Reason.String()
	}
	return "invalid"
}

// parseLabel accepts 0/1 and the boolean-ish words of parseBool.
func parseLabel(s string) (bool, bool) {
	return parseBool(s)
}
