package dataset

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/tandem-dev/tandem/psi/ident"
)

// Sentinel errors. Every error returned by this package that is caused by the
// spec or by the file's contents wraps exactly one of them, so the node can map
// them to gRPC codes (all of them are InvalidArgument) with errors.Is.
var (
	// ErrSpec is returned when a Spec or an id flag is itself invalid (no
	// file, no id column, a column named twice, unknown id kind). Fix the
	// registration request.
	ErrSpec = errors.New("dataset: invalid spec")

	// ErrFormat is returned when the file extension is neither .csv nor
	// .parquet, or when a Parquet file has nested or repeated columns.
	ErrFormat = errors.New("dataset: unsupported file format")

	// ErrSchema is returned when the file header lacks a column named in the
	// Spec, has an empty or duplicate column name, or is missing altogether.
	ErrSchema = errors.New("dataset: schema mismatch")

	// ErrMalformed is returned when a CSV record cannot be parsed (wrong
	// number of fields, bad quoting) or a Parquet file cannot be decoded.
	// The error is a *LineError carrying the line number where known.
	ErrMalformed = errors.New("dataset: malformed file")

	// ErrRowRange is returned by Rows when the requested row indices are not
	// strictly increasing or lie beyond the end of the file.
	ErrRowRange = errors.New("dataset: row index out of range")
)

// LineError locates a problem in a file. It never carries a cell value, only
// the file name, the line and the column name, so it is safe to log.
type LineError struct {
	File   string // path as given in the Spec
	Line   int64  // 1-based physical line for CSV (header is line 1), 1-based row for Parquet; 0 if unknown
	Column string // column name, "" if not specific to a column
	Msg    string // fixed description, never a value
	Err    error  // one of the sentinels above
}

func (e *LineError) Error() string {
	var b strings.Builder
	b.WriteString("dataset: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	if e.Column != "" {
		fmt.Fprintf(&b, ": column %q", e.Column)
	}
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	return b.String()
}

// Unwrap returns the sentinel.
func (e *LineError) Unwrap() error { return e.Err }

// IDColumn names an identifier column and how to canonicalise it.
type IDColumn struct {
	Column string
	Kind   ident.Kind
}

// Spec describes a customer table. The zero value is not usable: File and at
// least one IDs entry are required. A Spec is a plain value and safe to share
// between goroutines.
type Spec struct {
	// Name is the registry name of the dataset (informational here).
	Name string
	// File is the path of the table. The format is chosen by extension:
	// ".csv" (comma separated, header row required, UTF-8, optional BOM) or
	// ".parquet" (flat schema of string, integer, float and boolean columns).
	File string
	// IDs are the identifier columns. Several columns are alternatives for
	// matching (phone OR id number); each is canonicalised by its Kind.
	IDs []IDColumn
	// Label is an optional 0/1 target column.
	Label string
	// Features are optional numeric columns.
	Features []string
	// Attrs are optional categorical columns.
	Attrs []string
	// Consent is an optional boolean-ish column (1/0, true/false, yes/no, y/n).
	Consent string
}

// Format returns "csv" or "parquet" from the file extension, or ErrFormat.
// A .csv or .tsv file is delimited text; its separator (, ; tab |) is read
// from the header line.
func (s Spec) Format() (string, error) {
	switch strings.ToLower(filepath.Ext(s.File)) {
	case ".csv", ".tsv":
		return "csv", nil
	case ".parquet", ".parq", ".pq":
		return "parquet", nil
	}
	return "", &LineError{File: s.File, Msg: "extension must be .csv, .tsv or .parquet", Err: ErrFormat}
}

// columns returns every column the spec names, ids first, in a stable order.
func (s Spec) columns() []string {
	var cols []string
	for _, id := range s.IDs {
		cols = append(cols, id.Column)
	}
	if s.Label != "" {
		cols = append(cols, s.Label)
	}
	cols = append(cols, s.Features...)
	cols = append(cols, s.Attrs...)
	if s.Consent != "" {
		cols = append(cols, s.Consent)
	}
	return cols
}

// Validate checks the spec without opening the file. It returns an error
// wrapping ErrSpec or ErrFormat.
func (s Spec) Validate() error {
	if s.File == "" {
		return fmt.Errorf("%w: no file", ErrSpec)
	}
	if _, err := s.Format(); err != nil {
		return err
	}
	if len(s.IDs) == 0 {
		return fmt.Errorf("%w: %s: no id column", ErrSpec, s.File)
	}
	seen := make(map[string]bool)
	for _, c := range s.columns() {
		if strings.TrimSpace(c) == "" {
			return fmt.Errorf("%w: %s: empty column name", ErrSpec, s.File)
		}
		if seen[c] {
			return fmt.Errorf("%w: %s: column %q named twice", ErrSpec, s.File, c)
		}
		seen[c] = true
	}
	for _, id := range s.IDs {
		if id.Kind > ident.Email {
			return fmt.Errorf("%w: %s: column %q: unknown id kind", ErrSpec, s.File, id.Column)
		}
	}
	return nil
}

// ParseIDFlag parses a comma-separated list of column:kind pairs such as
// "phone:cn_mobile,id_no:cn_id". Kinds are those of ident.ParseKind. It
// returns an error wrapping ErrSpec for an empty list, a pair without a kind,
// an unknown kind or a column given twice.
func ParseIDFlag(s string) ([]IDColumn, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty id flag", ErrSpec)
	}
	var ids []IDColumn
	seen := make(map[string]bool)
	for _, part := range strings.Split(s, ",") {
		col, kind, ok := strings.Cut(part, ":")
		col, kind = strings.TrimSpace(col), strings.TrimSpace(kind)
		if !ok || col == "" || kind == "" {
			return nil, fmt.Errorf("%w: id flag entry %q is not column:kind", ErrSpec, strings.TrimSpace(part))
		}
		k, err := ident.ParseKind(kind)
		if err != nil {
			return nil, fmt.Errorf("%w: column %q: unknown id kind %q", ErrSpec, col, kind)
		}
		if seen[col] {
			return nil, fmt.Errorf("%w: column %q given twice", ErrSpec, col)
		}
		seen[col] = true
		ids = append(ids, IDColumn{Column: col, Kind: k})
	}
	return ids, nil
}
