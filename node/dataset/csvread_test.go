package dataset

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/psi/ident"
)

// sameAsEncodingCSV reads data with csvReader (windows of grow bytes,
// reused for an even grow) and with encoding/csv, and fails t where they
// differ: a record, its start line, or the error's kind and lines.
func sameAsEncodingCSV(t *testing.T, data []byte, comma byte, grow int) {
	t.Helper()
	ref := csv.NewReader(bytes.NewReader(data))
	ref.Comma = rune(comma)
	c := newCSVReader(bytes.NewReader(data), comma)
	c.grow = grow
	c.reuse = grow%2 == 0 // one window buffer for the whole file: each record checked before the next Read
	for n := 0; ; n++ {
		want, werr := ref.Read()
		got, gerr := c.Read()
		if werr != nil || gerr != nil {
			var wp, gp *csv.ParseError
			switch {
			case werr == io.EOF && gerr == io.EOF:
			case errors.As(werr, &wp) && errors.As(gerr, &gp):
				if !errors.Is(gp.Err, wp.Err) || gp.StartLine != wp.StartLine || gp.Line != wp.Line {
					t.Fatalf("record %d of %q: error %v (start %d), want %v (start %d)", n, data, gerr, gp.StartLine, werr, wp.StartLine)
				}
			default:
				t.Fatalf("record %d of %q: error %v, want %v", n, data, gerr, werr)
			}
			return
		}
		if !slices.Equal(got, want) {
			t.Fatalf("record %d of %q: %q, want %q", n, data, got, want)
		}
		if line, _ := ref.FieldPos(0); c.start != line {
			t.Fatalf("record %d of %q: starts on line %d, want %d", n, data, c.start, line)
		}
	}
}

var csvCases = []string{
	"a,b,c\n1,2,3\n",
	"a,b,c\r\n1,2,3\r\n4,5,6",
	"a,b\n\n\r\n1,2\n\n",
	"a,b\n1,2\r",
	"a,b\n\r",
	"a,b\n\r\r\n",
	"a,b\n1,2,3\n",
	"a,b\n1\n",
	`a,b` + "\n" + `"x, y","z"` + "\n",
	`a,b` + "\n" + `"he said ""hi""",2` + "\n",
	`a,b` + "\n" + `"multi` + "\r\n" + `line",2` + "\n3,4\n",
	`a,b` + "\n" + `"open,2` + "\n",
	`a,b` + "\n" + `"open,2` + "\n\r",
	`a,b` + "\n" + `"open` + "\n\n\nmore",
	`a,b` + "\n" + `x"y,2` + "\n",
	`a,b` + "\n" + `"x"y,2` + "\n",
	`a,b` + "\n" + `"x"` + "\r" + `,2` + "\n",
	`a,b` + "\n" + `"",""` + "\n" + `"",` + "\n",
	`"a` + "\n" + `b",c` + "\n1,2\n1\n",
	"a,b\n1,\"2\"\n3,4\n,\n",
	"\n\na,b\n1,2",
	"",
	"\r\n",
	"a",
	`"`,
	`""`,
	`a,"b` + "\r\n" + `c"` + "\r\n1,2\r\n",
}

func TestCSVReaderMatchesEncodingCSV(t *testing.T) {
	for _, data := range csvCases {
		for _, grow := range []int{1, 2, 3, 7, 64, csvWindow} {
			sameAsEncodingCSV(t, []byte(data), ',', grow)
		}
	}
	// Other delimiters, and a file of many windows.
	sameAsEncodingCSV(t, []byte("a;b\n\"x;y\";2\n1;2\n"), ';', 3)
	sameAsEncodingCSV(t, []byte("a\tb\n1\t2\n"), '\t', 5)
	var sb strings.Builder
	sb.WriteString("id,v,q\n")
	for i := range 20000 {
		if i%97 == 0 {
			sb.WriteString("\"q,\"\"x\"\"\n\",")
		}
		sb.WriteString(strings.Repeat("z", i%13))
		sb.WriteString(",1.5,abc\r\n")
	}
	sameAsEncodingCSV(t, []byte(sb.String()), ',', 4096)
}

// FuzzCSVReader: on any input and delimiter, csvReader gives the records
// and errors encoding/csv gives, whatever its window size.
func FuzzCSVReader(f *testing.F) {
	for _, c := range csvCases {
		f.Add([]byte(c), byte(0), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, delim byte, grow uint8) {
		comma := []byte{',', ';', '\t', '|'}[delim%4]
		sameAsEncodingCSV(t, data, comma, 1+int(grow))
	})
}

// failingReader gives data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestCSVReaderReadError: a read error ends the records with that error,
// and a reader that returns nothing forever ends with io.ErrNoProgress.
func TestCSVReaderReadError(t *testing.T) {
	boom := errors.New("disk gone")
	for _, tc := range []struct {
		src  io.Reader
		want error
	}{
		{&failingReader{data: []byte("a,b\n1,2\n3,"), err: boom}, boom},
		{&failingReader{data: []byte("a,b\n1,2\n"), err: nil}, io.ErrNoProgress},
	} {
		c := newCSVReader(tc.src, ',')
		var err error
		n := 0
		for ; err == nil; n++ {
			_, err = c.Read()
		}
		if !errors.Is(err, tc.want) || n < 3 {
			t.Errorf("after %d reads: %v, want %v", n, err, tc.want)
		}
	}
}

// TestReadReusesWindows: Read builds every window in one buffer; with
// windows of 64 bytes (records across them, quoted fields across lines
// and with "" inside) its numbers, label and kept cells are those the
// file holds, so no cell it keeps points into a window rewritten since
// (the id of a record whose next field crosses a window included).
func TestReadReusesWindows(t *testing.T) {
	defer func(w int) { csvWindow = w }(csvWindow)
	csvWindow = 64
	var sb strings.Builder
	sb.WriteString("id,note,x,y,label\n")
	const n = 3000
	ids := make([]string, n)
	for i := range n {
		switch i % 4 {
		case 0:
			ids[i] = fmt.Sprintf("c%d", i)
			sb.WriteString(ids[i])
		case 1:
			ids[i] = fmt.Sprintf("  c%d ", i)
			sb.WriteString(`"` + ids[i] + `"`)
		case 2:
			ids[i] = fmt.Sprintf("c\"%d\"", i)
			sb.WriteString(`"c""` + fmt.Sprint(i) + `"""`)
		case 3:
			ids[i] = fmt.Sprintf("c%d\nline two", i)
			sb.WriteString(`"c` + fmt.Sprint(i) + "\r\nline two\"")
		}
		if i%5 == 0 { // a field across lines after the id: the id's window is gone by its end
			sb.WriteString(",\"a note\non two lines\"")
		} else {
			sb.WriteString(",short")
		}
		fmt.Fprintf(&sb, ",%d.5,%d,%d\r\n", i, -i, i%2)
	}
	path := filepath.Join(t.TempDir(), "w.csv")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := Spec{File: path, Label: "label", Features: []string{"x", "y"}, IDs: []IDColumn{{Column: "id", Kind: ident.Email}}}
	var rows []int64
	for i := int64(0); i < n; i += 3 {
		rows = append(rows, i)
	}
	var sum float64
	r, err := Read(context.Background(), spec, Pass{Columns: []string{"x", "y"}, Label: "label", CellColumns: []string{"id"}, CellRows: rows,
		Each: func(row int64, v []float64, present []bool) error {
			if v[0] != float64(row)+0.5 || v[1] != -float64(row) || !present[0] || !present[1] {
				return fmt.Errorf("row %d: %v %v", row, v, present)
			}
			sum += v[0]
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(n)*float64(n-1)/2 + n*0.5; sum != want {
		t.Fatalf("sum %v, want %v", sum, want)
	}
	var buf []string
	for k, row := range r.Cells.Rows {
		if buf = r.Cells.Row(k, buf); buf[0] != ids[row] {
			t.Fatalf("row %d: id %q, want %q", row, buf[0], ids[row])
		}
	}
	for i, l := range r.Label {
		if l != float64(i%2) {
			t.Fatalf("label %d: %v", i, l)
		}
	}
}
