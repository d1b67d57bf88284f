package dataset

import (
	"encoding/csv"
	"io"
	"strings"
	"unsafe"
)

// csvReader reads the records of a CSV file as encoding/csv's Reader does
// with its defaults and ReuseRecord: RFC 4180 quoting, no lazy quotes, no
// comments, fields untrimmed, empty lines skipped, "\r\n" read as "\n",
// every record as wide as the first. It fails on the same inputs with a
// *csv.ParseError of the same kind, start line and line (the column is
// left 0: nothing here reports it). FuzzCSVReader holds it to that.
//
// It exists for speed. A score job reads a 1e6-row file on each node,
// and csv.Reader took 60 % of that pass: it copies every record into a
// fresh string and looks for the delimiter and quotes field by field.
// Here the file is read in windows of 256 KB, each copied once into a
// string, and the fields are substrings of that window: every field of
// a line without a quote, and a quoted field without "" that ends on its
// line. Only the others are unescaped into strings of their own. On the
// testnet's 1e6-row partner file (a quarter of its lines quote an
// e-mail address) the score job's pass went from 318–328 to 183–184 ms,
// with parseDecimal. A field keeps its whole window alive: a caller that
// keeps cells past the pass clones them.
//
// With reuse set, every window is built in the same buffer, so a record's
// fields are valid only until the next Read: for a pass that keeps no
// cell (dataset.Read: numbers, and id cells it copies). It saves each
// window's copy into fresh memory, which on this VM costs most when that
// memory must be faulted in: the partner file's pass took 197 ms in a
// fresh process and 183 ms after, and takes 150–156 ms either way.
type csvReader struct {
	src   io.Reader
	comma byte
	grow  int    // bytes a fill adds at least (csvWindow)
	win   string // the window: the file's bytes from where it was last filled
	pos   int    // the next unread byte of win
	buf   []byte // the bytes the next window is built in (reused)
	eof   bool   // src has no more bytes: win holds the rest of the file
	err   error  // a read error, reported when win is used up
	line  int    // lines read so far (the last one read is line `line`)
	width int    // fields per record, from the first record (0 until then)
	start int    // the line the last record began on
	rec   []string
	rbuf  []byte // a quoted field being unescaped (reused)
	reuse bool   // build every window in buf: fields valid until the next Read
}

// csvWindow is how many bytes a window adds to what is left of the last
// (a variable for tests, which make records cross windows).
var csvWindow = 256 << 10

func newCSVReader(src io.Reader, comma byte) *csvReader {
	return &csvReader{src: src, comma: comma, grow: csvWindow}
}

// fill makes a new window of what is left of the current one and up to
// c.grow more bytes (twice what is left, for a line longer than that).
func (c *csvReader) fill() {
	rest := c.win[c.pos:]
	want := len(rest) + max(c.grow, 2*len(rest))
	if cap(c.buf) < want {
		c.buf = make([]byte, want)
	}
	b := c.buf[:want]
	n := copy(b, rest) // with reuse, rest is in b: copy moves it to the front
	for empty := 0; n < len(b) && !c.eof; {
		m, err := c.src.Read(b[n:])
		n += m
		if m == 0 && err == nil {
			if empty++; empty == 100 { // as bufio.Reader: a reader that returns nothing, forever
				err = io.ErrNoProgress
			}
		}
		switch {
		case err == io.EOF:
			c.eof = true
		case err != nil:
			c.eof, c.err = true, err
		}
	}
	c.pos = 0
	if c.reuse {
		// buf is written again only by the next fill, which by then
		// holds no byte a field handed out may still be read from (see
		// reuse).
		c.win = unsafe.String(unsafe.SliceData(b), n)
		return
	}
	c.win = string(b[:n])
}

// nextLine returns the next line without its "\n" (nl tells whether it
// had one) and without the "\r" before it, or at the end of the file
// without a final "\r"; ok is false when the file is used up.
func (c *csvReader) nextLine() (line string, nl, ok bool) {
	for {
		rest := c.win[c.pos:]
		i := strings.IndexByte(rest, '\n')
		switch {
		case i >= 0:
			line, nl = rest[:i], true
			c.pos += i + 1
		case !c.eof:
			c.fill()
			continue
		case rest == "":
			return "", false, false
		default:
			line = rest
			c.pos = len(c.win)
		}
		c.line++
		return strings.TrimSuffix(line, "\r"), nl, true
	}
}

// Read returns the next record (valid until the next call), io.EOF after
// the last, or an error.
func (c *csvReader) Read() ([]string, error) {
	for {
		line, nl, ok := c.nextLine()
		if !ok {
			if c.err != nil {
				return nil, c.err
			}
			return nil, io.EOF
		}
		if line == "" {
			continue // an empty line
		}
		start := c.line
		c.start = start
		var err error
		if strings.IndexByte(line, '"') < 0 {
			c.split(line)
		} else {
			err = c.quoted(line, nl)
		}
		if err == nil && c.width > 0 && len(c.rec) != c.width {
			err = &csv.ParseError{StartLine: start, Line: start, Err: csv.ErrFieldCount}
		}
		if c.width == 0 {
			c.width = len(c.rec)
		}
		if err != nil {
			return nil, err
		}
		return c.rec, nil
	}
}

// split is a record of one line without quotes: its fields are substrings
// of the window.
func (c *csvReader) split(line string) {
	c.rec = c.rec[:0]
	for {
		i := strings.IndexByte(line, c.comma)
		if i < 0 {
			c.rec = append(c.rec, line)
			return
		}
		c.rec = append(c.rec, line[:i])
		line = line[i+1:]
	}
}

// quoted parses a record that holds a quote, from its first line (nl: the
// line had a "\n"), reading more lines while a quoted field goes on. A
// quoted field without "" that ends on its line (a messy identifier in
// quotes, most often) is a substring of the window too; the others are
// unescaped into strings of their own.
func (c *csvReader) quoted(line string, nl bool) error {
	start := c.line
	at := start // the line of the last non-empty read, as csv.Reader counts them for an unterminated quote
	fail := func(l int, kind error) error {
		return &csv.ParseError{StartLine: start, Line: l, Err: kind}
	}
	c.rec = c.rec[:0]
	for {
		if line == "" || line[0] != '"' {
			i := strings.IndexByte(line, c.comma)
			field := line
			if i >= 0 {
				field = line[:i]
			}
			if strings.IndexByte(field, '"') >= 0 {
				return fail(c.line, csv.ErrBareQuote)
			}
			c.rec = append(c.rec, field)
			if i < 0 {
				return nil
			}
			line = line[i+1:]
			continue
		}
		line = line[1:] // the opening quote
		if i := strings.IndexByte(line, '"'); i >= 0 {
			switch after := line[i+1:]; {
			case after == "":
				c.rec = append(c.rec, line[:i])
				return nil
			case after[0] == c.comma:
				c.rec = append(c.rec, line[:i])
				line = after[1:]
				continue
			}
		}
		b, more := c.rbuf[:0], false
	field:
		for {
			i := strings.IndexByte(line, '"')
			if i >= 0 {
				b = append(b, line[:i]...)
				line = line[i+1:]
				switch {
				case line == "":
					break field
				case line[0] == '"': // "" is a quote
					b = append(b, '"')
					line = line[1:]
				case line[0] == c.comma:
					line, more = line[1:], true
					break field
				default:
					return fail(c.line, csv.ErrQuote)
				}
				continue
			}
			if line == "" && !nl {
				return fail(at, csv.ErrQuote) // the file ends inside the quotes
			}
			// The field goes on past the end of the line.
			b = append(b, line...)
			if nl {
				b = append(b, '\n')
			}
			if c.reuse { // the next line may be read into the window they are in
				for i, f := range c.rec {
					c.rec[i] = strings.Clone(f)
				}
			}
			var ok bool
			if line, nl, ok = c.nextLine(); !ok {
				if c.err != nil {
					return c.err
				}
				return fail(at, csv.ErrQuote)
			}
			if line != "" || nl {
				at++
			}
		}
		c.rbuf = b
		c.rec = append(c.rec, string(b))
		if !more {
			return nil
		}
	}
}
