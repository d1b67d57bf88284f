package dataset

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// sameAsEncodingCSV reads data with csvReader (windows of grow bytes) and
// with encoding/csv, and fails t where they differ: a record, its start
// line, or the error's kind and lines.
func sameAsEncodingCSV(t *testing.T, data []byte, comma byte, grow int) {
	t.Helper()
	ref := csv.NewReader(bytes.NewReader(data))
	ref.Comma = rune(comma)
	c := newCSVReader(bytes.NewReader(data), comma)
	c.grow = grow
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
