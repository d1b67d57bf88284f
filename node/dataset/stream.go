package dataset

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"

	"github.com/tandem-dev/tandem/psi/ident"
)

// lookupID returns the IDColumn of spec named column.
func lookupID(spec Spec, column string) (IDColumn, error) {
	for _, id := range spec.IDs {
		if id.Column == column {
			return id, nil
		}
	}
	return IDColumn{}, fmt.Errorf("%w: %s: %q is not an id column of the spec", ErrSpec, spec.File, column)
}

// EachID streams the canonical identifiers of one id column to fn, in file
// order, with their 0-based data row index. Null and invalid cells are
// skipped (Scan reports them). When several rows share a canonical id only
// the first occurrence is yielded, so the stream is a set, as PSI requires;
// deduplication keeps 8 bytes of hash per distinct id in memory and is exact
// up to 64-bit hash collisions (expected < 0.001 at 1e8 rows).
//
// canon is only valid during the call: fn must copy it to keep it. An error
// returned by fn stops the stream and is returned as is. EachID is safe for
// concurrent use; fn is called from the calling goroutine.
func EachID(ctx context.Context, spec Spec, column string, fn func(row int64, canon []byte) error) error {
	if _, err := lookupID(spec, column); err != nil {
		return err
	}
	return EachIDAny(ctx, spec, []string{column}, func(row int64, _ ident.Kind, canon []byte) error {
		return fn(row, canon)
	})
}

// EachIDAny streams the canonical identifiers of several id columns, treated
// as alternatives (phone OR id number): for each row, in file order, and for
// each listed column in the order given, it calls fn with the row index, the
// column's Kind and the canonical id. A nil or empty columns means all id
// columns of the spec. Null and invalid cells are skipped. A (Kind, canonical
// id) pair already yielded, from any row or column, is not yielded again.
// Callers that hash ids for PSI must separate kinds (for example by prefixing
// the kind byte), since two kinds could in principle share a canonical
// string. Memory, concurrency and canon lifetime are as for EachID.
func EachIDAny(ctx context.Context, spec Spec, columns []string, fn func(row int64, kind ident.Kind, canon []byte) error) error {
	return eachID(ctx, spec, columns, true, fn)
}

// EachIDStream is EachIDAny without de-duplication: every valid id of the
// listed columns is yielded, in row then column order, in O(1) memory. It
// is what PSI at 1e8 rows uses (its matching resolves repeated ids itself);
// Scan reports the duplicates.
func EachIDStream(ctx context.Context, spec Spec, columns []string, fn func(row int64, kind ident.Kind, canon []byte) error) error {
	return eachID(ctx, spec, columns, false, fn)
}

func eachID(ctx context.Context, spec Spec, columns []string, dedup bool, fn func(row int64, kind ident.Kind, canon []byte) error) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	var sel []IDColumn
	if len(columns) == 0 {
		sel = spec.IDs
	}
	for _, c := range columns {
		id, err := lookupID(spec, c)
		if err != nil {
			return err
		}
		sel = append(sel, id)
	}
	names := make([]string, len(sel))
	for i, id := range sel {
		names[i] = id.Column
	}
	t, err := openTable(spec, names, nil)
	if err != nil {
		return err
	}
	defer t.close()
	idx, err := checkHeader(spec.File, t.header(), names)
	if err != nil {
		return err
	}
	cols := make([]int, len(sel))
	for i, id := range sel {
		cols[i] = idx[id.Column]
	}
	seed := maphash.MakeSeed()
	seen := make(map[uint64]struct{})
	var buf []byte
	var h maphash.Hash
	h.SetSeed(seed)
	return forEach(ctx, t, func(row int64, rec []string, _ int64) error {
		for i, id := range sel {
			cell := rec[cols[i]]
			if isNull(cell) {
				continue
			}
			var err error
			buf, err = ident.AppendCanonical(buf[:0], id.Kind, cell)
			if err != nil {
				continue
			}
			if dedup {
				h.Reset()
				h.WriteByte(byte(id.Kind))
				h.Write(buf)
				k := h.Sum64()
				if _, dup := seen[k]; dup {
					continue
				}
				seen[k] = struct{}{}
			}
			if err := fn(row, id.Kind, buf); err != nil {
				return err
			}
		}
		return nil
	})
}

// Column reads one Label, Features or Consent column (or any column of the
// file holding numbers) as a vector with one entry per data row. present[i]
// is false where the cell is null or does not parse; values[i] is then 0.
// Label and Consent cells are parsed as boolean-ish (1/0, true/false, yes/no,
// y/n) giving 1 or 0; other columns as decimal numbers (non-finite values
// count as absent).
//
// An indicator "column=level" (see SplitIndicator) reads a categorical
// column as 1 where the trimmed cell equals level, 0 where it holds another
// value, absent where it is null: a model's one-hot feature, named in full
// so that everyone who reads the spec sees every level it uses. "None" is
// a level there, not a null spelling (credit data says "none" for "no
// guarantor"); a level is compared case-sensitively.
//
// Column holds the whole vector in memory by design. It is safe for
// concurrent use.
func Column(ctx context.Context, spec Spec, name string) (values []float64, present []bool, err error) {
	return column(ctx, spec, name, name == spec.Label || name == spec.Consent)
}

// LabelColumn reads a column as a 0/1 target whatever the spec declares:
// cells boolean-ish (1/0, true/false, yes/no, y/n), or an indicator
// "column=level". A model's label need not be the dataset's declared one.
func LabelColumn(ctx context.Context, spec Spec, name string) (values []float64, present []bool, err error) {
	return column(ctx, spec, name, true)
}

func column(ctx context.Context, spec Spec, name string, boolish bool) (values []float64, present []bool, err error) {
	v, p, err := columns(ctx, spec, []string{name}, []bool{boolish})
	if err != nil {
		return nil, nil, err
	}
	return v[0], p[0], nil
}

// Columns is Column for several names in one pass over the file: a model
// part's features, read together (a pass over a 1e6-row CSV costs about
// as much as the whole scoring protocol, and a categorical column expands
// into one indicator per level).
func Columns(ctx context.Context, spec Spec, names []string) (values [][]float64, present [][]bool, err error) {
	boolish := make([]bool, len(names))
	for k, n := range names {
		boolish[k] = n == spec.Label || n == spec.Consent
	}
	return columns(ctx, spec, names, boolish)
}

// Pass is what Read takes from a file in one pass: number columns (as
// Columns), a label (as LabelColumn; "" for none) and the raw cells of
// CellColumns at CellRows (0-based, strictly increasing). A score job
// needs all three from the bank's file, and each pass over a 1e6-row CSV
// costs about as much as the scoring protocol.
type Pass struct {
	Columns     []string
	Label       string
	CellColumns []string
	CellRows    []int64
	// Each, if set, gets the Columns' values row by row (in slices it
	// must not keep) instead of PassResult.Values: a caller that folds
	// them into one number per row keeps no column, and allocates none.
	Each func(row int64, values []float64, present []bool) error
}

// PassResult is what Read found; Label and LabelPresent are nil without a
// label.
type PassResult struct {
	Values       [][]float64
	Present      [][]bool
	Label        []float64
	LabelPresent []bool
	Cells        *Cells
}

// Read makes one pass over spec's file for p. Cell rows out of order or
// beyond the last row are an error wrapping ErrRowRange.
func Read(ctx context.Context, spec Spec, p Pass) (*PassResult, error) {
	names := slices.Clip(p.Columns)
	boolish := make([]bool, len(names), len(names)+1)
	for k, n := range names {
		boolish[k] = n == spec.Label || n == spec.Consent
	}
	if p.Label != "" {
		names, boolish = append(names, p.Label), append(boolish, true)
	}
	var each *streamed
	if p.Each != nil {
		each = &streamed{n: len(p.Columns), fn: p.Each}
	}
	vals, pres, cells, err := read(ctx, spec, names, boolish, p.CellColumns, p.CellRows, each)
	if err != nil {
		return nil, err
	}
	if cells == nil {
		cells = &Cells{width: len(p.CellColumns)}
	}
	k := len(p.Columns)
	if each != nil {
		k = 0 // read stored only the label
	}
	r := &PassResult{Values: vals[:k], Present: pres[:k], Cells: cells}
	if p.Label != "" {
		r.Label, r.LabelPresent = vals[k], pres[k]
	}
	return r, nil
}

// Cells holds the cells of some columns at some rows, packed into one
// buffer (a score job keeps the id columns of up to 1e7 matched rows).
type Cells struct {
	Rows  []int64
	width int
	data  []byte
	ends  []int // end offset in data of each cell, row by row
}

// Row returns the cells of Rows[i], in the order of the columns asked
// for, in dst (reused).
func (c *Cells) Row(i int, dst []string) []string {
	dst = dst[:0]
	for k := i * c.width; k < (i+1)*c.width; k++ {
		lo := 0
		if k > 0 {
			lo = c.ends[k-1]
		}
		dst = append(dst, string(c.data[lo:c.ends[k]]))
	}
	return dst
}

func (c *Cells) add(rec []string, at []int) {
	for _, i := range at {
		c.data = append(c.data, rec[i]...)
		c.ends = append(c.ends, len(c.data))
	}
}

func columns(ctx context.Context, spec Spec, names []string, boolish []bool) (values [][]float64, present [][]bool, err error) {
	values, present, _, err = read(ctx, spec, names, boolish, nil, nil, nil)
	return values, present, err
}

// streamed hands the first n columns of a read to fn row by row.
type streamed struct {
	n  int
	fn func(row int64, values []float64, present []bool) error
}

// read is Read: names with boolish[k] for a boolean-ish column; with
// each, the first each.n names are streamed and only the rest returned.
func read(ctx context.Context, spec Spec, names []string, boolish []bool, cellCols []string, cellRows []int64, each *streamed) (values [][]float64, present [][]bool, cells *Cells, err error) {
	if err := checkRows(spec, cellRows); err != nil {
		return nil, nil, nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, nil, nil, err
	}
	if len(names) == 0 && len(cellRows) == 0 && each == nil {
		return nil, nil, nil, nil // no pass over the file for nothing
	}
	type want struct {
		col       string
		level     string
		indicator bool
		boolish   bool
		at        int
	}
	ws := make([]want, len(names))
	var need []string
	for k, name := range names {
		c, l, ind := SplitIndicator(name)
		ws[k] = want{col: c, level: l, indicator: ind, boolish: boolish[k]}
		if !slices.Contains(need, c) {
			need = append(need, c)
		}
	}
	if len(cellRows) > 0 {
		for _, c := range cellCols {
			if !slices.Contains(need, c) {
				need = append(need, c)
			}
		}
	}
	t, err := openTable(spec, need, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	defer t.close()
	if ct, ok := t.(*csvTable); ok {
		ct.r.reuse = true // the pass below keeps no cell: it parses them, and copies the id cells
	}
	idx, err := checkHeader(spec.File, t.header(), need)
	if err != nil {
		return nil, nil, nil, err
	}
	for k := range ws {
		ws[k].at = idx[ws[k].col]
	}
	var cellAt []int
	if len(cellRows) > 0 {
		cells = &Cells{Rows: cellRows, width: len(cellCols)}
		for _, c := range cellCols {
			cellAt = append(cellAt, idx[c])
		}
	}
	next := 0 // the next of cellRows
	vs, ps := make([]chunks[float64], len(names)), make([]chunks[bool], len(names))
	ns := 0 // names streamed
	var rowVals []float64
	var rowPres []bool
	if each != nil {
		ns = each.n
		rowVals, rowPres = make([]float64, ns), make([]bool, ns)
	}
	err = forEach(ctx, t, func(row int64, rec []string, _ int64) error {
		for k, w := range ws {
			cell := rec[w.at]
			var x float64
			ok := false
			if w.indicator {
				if ok = !isNullCategory(cell); ok && trim(cell) == w.level {
					x = 1
				}
			} else if !isNull(cell) {
				switch {
				case w.boolish:
					var b bool
					if b, ok = parseBool(cell); b {
						x = 1
					}
				default:
					x, ok = parseNumber(cell)
				}
			}
			if k < ns {
				rowVals[k], rowPres[k] = x, ok
				continue
			}
			vs[k].add(x)
			ps[k].add(ok)
		}
		if each != nil {
			if err := each.fn(row, rowVals, rowPres); err != nil {
				return err
			}
		}
		if next < len(cellRows) && row == cellRows[next] {
			cells.add(rec, cellAt)
			next++
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if next < len(cellRows) {
		return nil, nil, nil, fmt.Errorf("%w: %s: row %d is beyond the last row", ErrRowRange, spec.File, cellRows[next])
	}
	values, present = make([][]float64, len(names)-ns), make([][]bool, len(names)-ns)
	for k := ns; k < len(names); k++ {
		values[k-ns], present[k-ns] = vs[k].join(), ps[k].join()
	}
	return values, present, cells, nil
}

// chunks collects a column of unknown length in fixed-size chunks and
// joins them once at the end. Appending to one slice instead grows it by
// a quarter at a time past a few hundred elements: a 1e6-row column was
// copied about five times over into fresh memory, and the page faults of
// that memory made reading a model's features cost up to a second more
// than parsing them.
type chunks[T any] struct {
	full [][]T
	cur  []T
}

const chunkLen = 1 << 16

func (c *chunks[T]) add(v T) {
	if len(c.cur) == cap(c.cur) {
		if c.cur != nil {
			c.full = append(c.full, c.cur)
		}
		c.cur = make([]T, 0, chunkLen)
	}
	c.cur = append(c.cur, v)
}

// join returns the column as one slice (never nil).
func (c *chunks[T]) join() []T {
	n := len(c.cur)
	for _, f := range c.full {
		n += len(f)
	}
	out := make([]T, 0, n)
	for _, f := range c.full {
		out = append(out, f...)
	}
	return append(out, c.cur...)
}

// StringColumn reads a categorical column's cells, trimmed, one per data
// row; present[i] is false where the cell is null ("None" is a level, see
// Column). It is safe for concurrent use.
func StringColumn(ctx context.Context, spec Spec, name string) (values []string, present []bool, err error) {
	if err := spec.Validate(); err != nil {
		return nil, nil, err
	}
	t, err := openTable(spec, []string{name}, nil)
	if err != nil {
		return nil, nil, err
	}
	defer t.close()
	idx, err := checkHeader(spec.File, t.header(), []string{name})
	if err != nil {
		return nil, nil, err
	}
	col := idx[name]
	var vs chunks[string]
	var ps chunks[bool]
	levels := map[string]string{}
	err = forEach(ctx, t, func(_ int64, rec []string, _ int64) error {
		cell := rec[col]
		ok := !isNullCategory(cell)
		if ok {
			cell = strings.TrimSpace(cell)
			// A cell is a slice of the reader's window of the file
			// (csvReader): keep one copy per level instead.
			if v, seen := levels[cell]; seen {
				cell = v
			} else {
				cell = strings.Clone(cell)
				levels[cell] = cell
			}
		} else {
			cell = ""
		}
		vs.add(cell)
		ps.add(ok)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return vs.join(), ps.join(), nil
}

// SplitIndicator splits a feature name of the form "column=level" (an
// indicator of one level of a categorical column) into its column and
// level, both trimmed. A name without "=", or with an empty column or
// level, is a plain column: column = name, indicator false. Column names
// holding "=" cannot be used as plain features.
func SplitIndicator(name string) (column, level string, indicator bool) {
	c, l, ok := strings.Cut(name, "=")
	c, l = strings.TrimSpace(c), strings.TrimSpace(l)
	if !ok || c == "" || l == "" {
		return name, "", false
	}
	return c, l, true
}

// Rows calls fn with the full record (column name → cell text) of each
// requested data row, in order. rows are 0-based data row indices and must be
// strictly increasing; otherwise, or if one lies beyond the last row, Rows
// returns an error wrapping ErrRowRange (after calling fn for the rows that
// exist). The map passed to fn is fresh for every call and the caller may
// keep it. Rows is meant for exporting the owner's own rows; it streams the
// file and is safe for concurrent use.
func Rows(ctx context.Context, spec Spec, rows []int64, fn func(row int64, record map[string]string) error) error {
	return rowCells(ctx, spec, rows, nil, func(hdr []string, _ map[string]int) func(int64, []string) error {
		return func(row int64, rec []string) error {
			m := make(map[string]string, len(hdr))
			for i, h := range hdr {
				m[h] = strings.Clone(rec[i]) // the caller may keep it: not the window of the file it is a slice of
			}
			return fn(row, m)
		}
	})
}

// RowCells is Rows for the named columns only: fn gets their cells, in
// the order of cols, in a slice it must not keep (it is reused: an
// export of a million rows should not build a million maps).
func RowCells(ctx context.Context, spec Spec, rows []int64, cols []string, fn func(row int64, cells []string) error) error {
	return rowCells(ctx, spec, rows, cols, func(_ []string, at map[string]int) func(int64, []string) error {
		cells := make([]string, len(cols))
		return func(row int64, rec []string) error {
			for k, c := range cols {
				cells[k] = rec[at[c]]
			}
			return fn(row, cells)
		}
	})
}

// checkRows checks that rows are fit to stream: non-negative, strictly
// increasing.
func checkRows(spec Spec, rows []int64) error {
	for i := range rows {
		if rows[i] < 0 || (i > 0 && rows[i] <= rows[i-1]) {
			return fmt.Errorf("%w: %s: row indices must be non-negative and strictly increasing (position %d)", ErrRowRange, spec.File, i)
		}
	}
	return nil
}

// rowCells streams the requested rows' records (checks as Rows) to the
// function start returns once it has seen the header (and, with cols,
// checked it has them: at maps each to its index).
func rowCells(ctx context.Context, spec Spec, rows []int64, cols []string, start func(hdr []string, at map[string]int) func(row int64, rec []string) error) error {
	if err := checkRows(spec, rows); err != nil {
		return err
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	t, err := openTable(spec, cols, nil)
	if err != nil {
		return err
	}
	defer t.close()
	hdr := t.header()
	at, err := checkHeader(spec.File, hdr, cols)
	if err != nil {
		return err
	}
	fn := start(hdr, at)
	next := 0
	errDone := errors.New("done")
	err = forEach(ctx, t, func(row int64, rec []string, _ int64) error {
		if row != rows[next] {
			return nil
		}
		if err := fn(row, rec); err != nil {
			return err
		}
		next++
		if next == len(rows) {
			return errDone
		}
		return nil
	})
	if err == errDone {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s: row %d is beyond the last row", ErrRowRange, spec.File, rows[next])
}
