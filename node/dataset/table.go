package dataset

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// table is a streaming, row-at-a-time view of a CSV or Parquet file.
type table interface {
	// header returns the column names in file order.
	header() []string
	// next returns the next record (valid until the following call; cells of
	// columns not asked for at open may be "") and its 1-based line number.
	// It returns io.EOF after the last record.
	next() (rec []string, line int64, err error)
	close() error
}

// openTable opens spec.File. need lists the columns the caller will read
// (Parquet decodes only those; CSV ignores it). If digest is non-nil, every
// byte of the file is written to it by the time next returns io.EOF.
func openTable(spec Spec, need []string, digest hash.Hash) (table, error) {
	format, err := spec.Format()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(spec.File)
	if err != nil {
		// *PathError names the path and the OS reason; no contents.
		return nil, fmt.Errorf("dataset: %w", err)
	}
	var t table
	if format == "csv" {
		t, err = newCSVTable(spec.File, f, digest)
	} else {
		t, err = newParquetTable(spec.File, f, need, digest)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return t, nil
}

// checkHeader verifies that every named column is present and returns the
// index of each name in the header.
func checkHeader(file string, hdr []string, cols []string) (map[string]int, error) {
	idx := make(map[string]int, len(hdr))
	for i, h := range hdr {
		if h == "" {
			return nil, &LineError{File: file, Line: 1, Msg: fmt.Sprintf("header field %d is empty", i+1), Err: ErrSchema}
		}
		if _, dup := idx[h]; dup {
			return nil, &LineError{File: file, Line: 1, Column: h, Msg: "duplicate column in header", Err: ErrSchema}
		}
		idx[h] = i
	}
	for _, c := range cols {
		if _, ok := idx[c]; !ok {
			return nil, &LineError{File: file, Column: c, Msg: "column not found in header", Err: ErrSchema}
		}
	}
	return idx, nil
}

// ---- CSV ----

type csvTable struct {
	file string
	f    *os.File
	r    *csvReader
	hdr  []string
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func newCSVTable(file string, f *os.File, digest hash.Hash) (*csvTable, error) {
	var src io.Reader = f
	if digest != nil {
		src = io.TeeReader(f, digest)
	}
	br := bufio.NewReaderSize(src, 256<<10)
	if b, _ := br.Peek(3); bytes.Equal(b, utf8BOM) {
		br.Discard(3)
	}
	r := newCSVReader(br, sniffDelimiter(br)) // every record as wide as the header
	hdr, err := r.Read()
	if err == io.EOF {
		return nil, &LineError{File: file, Msg: "empty file: no header", Err: ErrSchema}
	}
	if err != nil {
		return nil, csvError(file, err)
	}
	h := make([]string, len(hdr))
	for i, c := range hdr {
		h[i] = strings.TrimSpace(c)
	}
	return &csvTable{file: file, f: f, r: r, hdr: h}, nil
}

// sniffDelimiter picks the field separator from the header line: the one
// of , ; tab | that occurs most often outside double quotes (a comma on a
// tie or when none occurs). Spreadsheets in many locales write ";" (the
// UCI bank marketing data is one such file) and .tsv files tabs; asking
// the operator for a flag would only move the guess to them.
func sniffDelimiter(br *bufio.Reader) byte {
	head, _ := br.Peek(64 << 10) // a shorter file gives what there is
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	counts := map[byte]int{}
	quoted := false
	for _, c := range head {
		switch {
		case c == '"':
			quoted = !quoted
		case !quoted && (c == ',' || c == ';' || c == '\t' || c == '|'):
			counts[c]++
		}
	}
	best := byte(',')
	for _, c := range []byte{';', '\t', '|'} {
		if counts[c] > counts[best] {
			best = c
		}
	}
	return best
}

func (t *csvTable) header() []string { return t.hdr }

func (t *csvTable) next() ([]string, int64, error) {
	rec, err := t.r.Read()
	if err != nil {
		if err == io.EOF {
			// bufio has read the file to its end, so a digest is complete.
			return nil, 0, io.EOF
		}
		return nil, 0, csvError(t.file, err)
	}
	return rec, int64(t.r.start), nil
}

func (t *csvTable) close() error { return t.f.Close() }

// csvError converts an encoding/csv error to a *LineError. csv.ParseError
// carries only positions and fixed texts, never field contents, but we
// rebuild the message anyway so that no future change can leak a value.
func csvError(file string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		msg := "malformed record"
		switch {
		case errors.Is(pe.Err, csv.ErrFieldCount):
			msg = "wrong number of fields"
		case errors.Is(pe.Err, csv.ErrQuote):
			msg = "extraneous or missing \" in quoted field"
		case errors.Is(pe.Err, csv.ErrBareQuote):
			msg = "bare \" in non-quoted field"
		}
		return &LineError{File: file, Line: int64(pe.Line), Msg: msg, Err: ErrMalformed}
	}
	return &LineError{File: file, Msg: "read error: " + err.Error(), Err: err}
}

// ---- Parquet ----

type parquetTable struct {
	file  string
	f     *os.File
	r     *parquet.Reader //lint:ignore SA1019 the generic row reader needs a schema type; this one reads any flat file by column name
	hdr   []string
	want  []bool // by leaf column index
	rec   []string
	rows  []parquet.Row
	n, i  int
	row   int64
	total int64
}

func newParquetTable(file string, f *os.File, need []string, digest hash.Hash) (t *parquetTable, err error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	if digest != nil {
		if _, err := io.Copy(digest, f); err != nil {
			return nil, fmt.Errorf("dataset: %s: %w", file, err)
		}
	}
	defer func() {
		// parquet-go panics on some corrupt inputs; report them as malformed.
		if p := recover(); p != nil {
			t, err = nil, &LineError{File: file, Msg: "cannot decode parquet", Err: ErrMalformed}
		}
	}()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, &LineError{File: file, Msg: "cannot open parquet: " + err.Error(), Err: ErrMalformed}
	}
	schema := pf.Schema()
	cols := schema.Columns()
	hdr := make([]string, len(cols))
	for i, path := range cols {
		if len(path) != 1 {
			return nil, &LineError{File: file, Column: strings.Join(path, "."), Msg: "nested columns are not supported", Err: ErrFormat}
		}
		leaf, _ := schema.Lookup(path...)
		if leaf.MaxRepetitionLevel > 0 {
			return nil, &LineError{File: file, Column: path[0], Msg: "repeated columns are not supported", Err: ErrFormat}
		}
		hdr[i] = path[0]
	}
	t = &parquetTable{
		file: file, f: f, hdr: hdr,
		want:  make([]bool, len(hdr)),
		rec:   make([]string, len(hdr)),
		rows:  make([]parquet.Row, 256),
		total: pf.NumRows(),
	}
	if need == nil {
		for i := range t.want {
			t.want[i] = true
		}
	}
	for _, c := range need {
		for i, h := range hdr {
			if h == c {
				t.want[i] = true
			}
		}
	}
	t.r = parquet.NewReader(pf)
	return t, nil
}

func (t *parquetTable) header() []string { return t.hdr }

func (t *parquetTable) next() (rec []string, line int64, err error) {
	if t.i >= t.n {
		if err := t.fill(); err != nil {
			return nil, 0, err
		}
	}
	row := t.rows[t.i]
	t.i++
	t.row++
	clear(t.rec)
	for _, v := range row {
		c := v.Column()
		if c < 0 || c >= len(t.rec) || !t.want[c] || v.IsNull() {
			continue
		}
		t.rec[c] = formatValue(v)
	}
	return t.rec, t.row, nil
}

func (t *parquetTable) fill() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &LineError{File: t.file, Line: t.row + 1, Msg: "cannot decode parquet", Err: ErrMalformed}
		}
	}()
	if t.row >= t.total {
		return io.EOF
	}
	n, err := t.r.ReadRows(t.rows)
	t.n, t.i = n, 0
	if n > 0 {
		return nil
	}
	if err == nil || err == io.EOF {
		return io.EOF
	}
	return &LineError{File: t.file, Line: t.row + 1, Msg: "cannot decode parquet: " + err.Error(), Err: ErrMalformed}
}

func (t *parquetTable) close() error {
	t.r.Close()
	return t.f.Close()
}

// formatValue renders a Parquet leaf value as the text a CSV would hold.
func formatValue(v parquet.Value) string {
	switch v.Kind() {
	case parquet.Boolean:
		if v.Boolean() {
			return "true"
		}
		return "false"
	case parquet.Int32:
		return strconv.FormatInt(int64(v.Int32()), 10)
	case parquet.Int64:
		return strconv.FormatInt(v.Int64(), 10)
	case parquet.Float:
		return strconv.FormatFloat(float64(v.Float()), 'g', -1, 32)
	case parquet.Double:
		f := v.Double()
		if math.IsNaN(f) {
			return ""
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	default:
		return string(v.ByteArray())
	}
}

// forEach runs fn on every data row of t; row is the 0-based data row index.
// It checks ctx every 4096 rows.
func forEach(ctx context.Context, t table, fn func(row int64, rec []string, line int64) error) error {
	var row int64
	for {
		if row&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, line, err := t.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(row, rec, line); err != nil {
			return err
		}
		row++
	}
}
