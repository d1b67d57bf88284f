package psi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"slices"
	"strconv"
)

// Alignment files (DESIGN.md §4). A PSI job leaves each node a private map
// from the L shared positions to its own rows; the initiator persists it in
// this format and reads it back, possibly after a crash, before any kernel
// runs over the aligned vectors. All integers are big-endian:
//
//	offset size
//	0      8    magic "TNDMALGN"
//	8      2    version, 1
//	10     1    reveal mode (Reveal)
//	11     1    reserved, 0
//	12     8    L, the number of positions
//	20     8    M, the number of matched positions (M ≤ L)
//	28     4    CRC-32C (Castagnoli) of bytes [0, 28)
//	32     16·K K pairs (position uint64, local row uint64), positions
//	            strictly ascending and < L; K = M, or 0 for RevealCount
//	32+16K 4    CRC-32C of all preceding bytes
//
// and nothing after. The header checksum lets a reader trust L and M before
// reading the body; the trailer catches torn or garbled bodies.

// ErrCorruptAlignment is wrapped by every error from ReadAlignment and
// AlignmentReader that is due to the bytes themselves (truncation, bad
// magic or version, checksum mismatch, invalid fields, trailing data) rather
// than to the underlying reader. Callers should treat the file as lost and
// rerun or resume the job; errors.Is tells the two cases apart.
var ErrCorruptAlignment = errors.New("psi: corrupt alignment file")

// Reveal is the PSI output mode recorded in an alignment (DESIGN.md §2, §4).
type Reveal uint8

const (
	// RevealInitiator: L = responder set size, positions in the responder's
	// shuffled order; the initiator maps only its M matched positions.
	RevealInitiator Reveal = 1
	// RevealBoth: L = M = intersection size; every position is mapped.
	RevealBoth Reveal = 2
	// RevealCount: only the sizes are kept; the file holds no pairs.
	RevealCount Reveal = 3
)

// String returns "initiator", "both", "count" or "Reveal(n)".
func (r Reveal) String() string {
	switch r {
	case RevealInitiator:
		return "initiator"
	case RevealBoth:
		return "both"
	case RevealCount:
		return "count"
	}
	return "Reveal(" + strconv.Itoa(int(r)) + ")"
}

// AlignmentHeader is the fixed part of an alignment.
type AlignmentHeader struct {
	Reveal  Reveal
	Length  uint64 // L, positions in the aligned vectors
	Matched uint64 // M, positions mapped to a local row (intersection size)
}

// pairs returns the number of pairs stored in the file body.
func (h AlignmentHeader) pairs() uint64 {
	if h.Reveal == RevealCount {
		return 0
	}
	return h.Matched
}

func (h AlignmentHeader) validate() error {
	switch {
	case h.Reveal < RevealInitiator || h.Reveal > RevealCount:
		return fmt.Errorf("unknown reveal mode %d", h.Reveal)
	case h.Length > alignMaxLength:
		return errors.New("length too large")
	case h.Matched > h.Length:
		return errors.New("more matches than positions")
	case h.Reveal == RevealBoth && h.Matched != h.Length:
		return errors.New("reveal=both needs matched == length")
	}
	return nil
}

const (
	alignMagic      = "TNDMALGN"
	alignVersion    = 1
	alignHeaderSize = 32
	alignPairSize   = 16
	alignMaxLength  = 1 << 62
	alignBufSize    = 64 << 10
)

var alignCRC = crc32.MakeTable(crc32.Castagnoli)

// Alignment is an alignment held in memory: the header and the M pairs as
// two parallel slices, Positions strictly ascending. 1e7 matches take 160 MB;
// for more, stream with AlignmentReader. An Alignment is safe for concurrent
// reads.
type Alignment struct {
	AlignmentHeader
	Positions []uint64
	Rows      []uint64
}

// Row returns the local row mapped to position pos and true, or 0 and false
// if pos is unmatched. It runs a binary search.
func (a *Alignment) Row(pos uint64) (row uint64, ok bool) {
	i, found := slices.BinarySearch(a.Positions, pos)
	if !found {
		return 0, false
	}
	return a.Rows[i], true
}

// AlignmentWriter encodes an alignment to an io.Writer as pairs arrive, with
// a 64 KiB buffer. It is not safe for concurrent use.
type AlignmentWriter struct {
	w       io.Writer
	h       AlignmentHeader
	buf     []byte
	crc     uint32
	n       uint64 // pairs appended
	lastPos uint64
	err     error
	closed  bool
}

// NewAlignmentWriter validates h and starts an alignment on w. Exactly
// h.Matched pairs (none for RevealCount) must then be appended in strictly
// ascending position order before Close. It returns an error for an invalid
// header; write errors surface from Append or Close.
func NewAlignmentWriter(w io.Writer, h AlignmentHeader) (*AlignmentWriter, error) {
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("psi: alignment: %v", err)
	}
	aw := &AlignmentWriter{w: w, h: h, buf: make([]byte, 0, alignBufSize)}
	aw.buf = appendAlignHeader(aw.buf, h)
	return aw, nil
}

func appendAlignHeader(b []byte, h AlignmentHeader) []byte {
	start := len(b)
	b = append(b, alignMagic...)
	b = binary.BigEndian.AppendUint16(b, alignVersion)
	b = append(b, byte(h.Reveal), 0)
	b = binary.BigEndian.AppendUint64(b, h.Length)
	b = binary.BigEndian.AppendUint64(b, h.Matched)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], alignCRC))
}

// Append adds the pair (pos, row). It returns an error, and the writer stays
// failed, if pos is not above the previous position, pos ≥ L, more pairs than
// the header announced are appended, or the underlying writer fails.
func (aw *AlignmentWriter) Append(pos, row uint64) error {
	if aw.err != nil {
		return aw.err
	}
	switch {
	case aw.closed:
		aw.err = errors.New("psi: alignment: append after close")
	case aw.n >= aw.h.pairs():
		aw.err = errors.New("psi: alignment: more pairs than header matched count")
	case pos >= aw.h.Length:
		aw.err = errors.New("psi: alignment: position out of range")
	case aw.n > 0 && pos <= aw.lastPos:
		aw.err = errors.New("psi: alignment: positions not strictly ascending")
	}
	if aw.err != nil {
		return aw.err
	}
	if len(aw.buf)+alignPairSize > cap(aw.buf) {
		if err := aw.flush(); err != nil {
			return err
		}
	}
	aw.buf = binary.BigEndian.AppendUint64(aw.buf, pos)
	aw.buf = binary.BigEndian.AppendUint64(aw.buf, row)
	aw.n++
	aw.lastPos = pos
	return nil
}

func (aw *AlignmentWriter) flush() error {
	aw.crc = crc32.Update(aw.crc, alignCRC, aw.buf)
	if _, err := aw.w.Write(aw.buf); err != nil {
		aw.err = fmt.Errorf("psi: alignment: write: %w", err)
		return aw.err
	}
	aw.buf = aw.buf[:0]
	return nil
}

// Close checks that the announced number of pairs was appended, writes the
// trailer and flushes. It does not close the underlying writer (callers
// persisting to disk should Sync and rename after Close). It returns the
// writer's first error; a second Close returns the same result.
func (aw *AlignmentWriter) Close() error {
	if aw.closed || aw.err != nil {
		return aw.err
	}
	aw.closed = true
	if aw.n != aw.h.pairs() {
		aw.err = fmt.Errorf("psi: alignment: %d pairs appended, header says %d", aw.n, aw.h.pairs())
		return aw.err
	}
	if err := aw.flush(); err != nil {
		return err
	}
	aw.buf = binary.BigEndian.AppendUint32(aw.buf, aw.crc)
	if _, err := aw.w.Write(aw.buf); err != nil {
		aw.err = fmt.Errorf("psi: alignment: write: %w", err)
		return aw.err
	}
	aw.buf = nil
	return nil
}

// WriteAlignment streams an alignment to w: the header h, then the pairs read
// from pairs, whose 16-byte records are position ‖ row as big-endian uint64s
// in ascending order — the output of a Sorter fed with IntersectSorted's
// matches, position first. It returns the first error from pairs, from the
// checks of AlignmentWriter, or from w. Safe for concurrent use with
// distinct arguments.
func WriteAlignment(w io.Writer, h AlignmentHeader, pairs Iterator) error {
	aw, err := NewAlignmentWriter(w, h)
	if err != nil {
		return err
	}
	for pairs.Next() {
		rec := pairs.Record()
		if len(rec) != alignPairSize {
			return fmt.Errorf("psi: alignment: record of %d bytes, want %d", len(rec), alignPairSize)
		}
		if err := aw.Append(binary.BigEndian.Uint64(rec), binary.BigEndian.Uint64(rec[8:])); err != nil {
			return err
		}
	}
	if err := pairs.Err(); err != nil {
		return err
	}
	return aw.Close()
}

// AlignmentReader decodes an alignment from an io.Reader as a stream of
// pairs, validating as it goes. Pairs are yielded before the trailer
// checksum can be checked, so a consumer must not act on them until Next has
// returned false with Err() == nil. An AlignmentReader is not safe for
// concurrent use.
type AlignmentReader struct {
	r    *bufio.Reader
	h    AlignmentHeader
	crc  uint32
	n    uint64 // pairs read
	pos  uint64
	row  uint64
	rec  [alignPairSize]byte
	err  error
	done bool
}

// NewAlignmentReader reads and validates the header. It returns an error
// wrapping ErrCorruptAlignment for a short, garbled or unsupported header,
// and a plain "psi: alignment: read" error when r fails.
func NewAlignmentReader(r io.Reader) (*AlignmentReader, error) {
	br := bufio.NewReaderSize(r, alignBufSize)
	var hdr [alignHeaderSize]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, alignReadErr(err, "truncated header")
	}
	if string(hdr[:8]) != alignMagic {
		return nil, alignCorrupt("bad magic")
	}
	if crc32.Checksum(hdr[:28], alignCRC) != binary.BigEndian.Uint32(hdr[28:]) {
		return nil, alignCorrupt("header checksum mismatch")
	}
	if v := binary.BigEndian.Uint16(hdr[8:]); v != alignVersion {
		return nil, alignCorrupt(fmt.Sprintf("unsupported version %d", v))
	}
	if hdr[11] != 0 {
		return nil, alignCorrupt("reserved byte not zero")
	}
	h := AlignmentHeader{
		Reveal:  Reveal(hdr[10]),
		Length:  binary.BigEndian.Uint64(hdr[12:]),
		Matched: binary.BigEndian.Uint64(hdr[20:]),
	}
	if err := h.validate(); err != nil {
		return nil, alignCorrupt(err.Error())
	}
	return &AlignmentReader{r: br, h: h, crc: crc32.Checksum(hdr[:], alignCRC)}, nil
}

func alignCorrupt(msg string) error { return fmt.Errorf("%w: %s", ErrCorruptAlignment, msg) }

// alignReadErr turns an io.ReadFull error into a corruption error at EOF and
// an I/O error otherwise.
func alignReadErr(err error, what string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return alignCorrupt(what)
	}
	return fmt.Errorf("psi: alignment: read: %w", err)
}

// Header returns the validated header.
func (ar *AlignmentReader) Header() AlignmentHeader { return ar.h }

// Next reads the next pair and reports whether there is one. After the last
// pair it checks the trailer checksum and that nothing follows it; it returns
// false at the end or on the first error (see Err).
func (ar *AlignmentReader) Next() bool {
	if ar.done {
		return false
	}
	if ar.n == ar.h.pairs() {
		ar.done = true
		ar.finish()
		return false
	}
	if _, err := io.ReadFull(ar.r, ar.rec[:]); err != nil {
		ar.done = true
		ar.err = alignReadErr(err, "truncated pairs")
		return false
	}
	ar.crc = crc32.Update(ar.crc, alignCRC, ar.rec[:])
	pos := binary.BigEndian.Uint64(ar.rec[:8])
	switch {
	case pos >= ar.h.Length:
		ar.err = alignCorrupt("position out of range")
	case ar.n > 0 && pos <= ar.pos:
		ar.err = alignCorrupt("positions not strictly ascending")
	}
	if ar.err != nil {
		ar.done = true
		return false
	}
	ar.pos, ar.row = pos, binary.BigEndian.Uint64(ar.rec[8:])
	ar.n++
	return true
}

func (ar *AlignmentReader) finish() {
	var tr [4]byte
	if _, err := io.ReadFull(ar.r, tr[:]); err != nil {
		ar.err = alignReadErr(err, "truncated trailer")
		return
	}
	if binary.BigEndian.Uint32(tr[:]) != ar.crc {
		ar.err = alignCorrupt("checksum mismatch")
		return
	}
	if _, err := ar.r.ReadByte(); err != io.EOF {
		if err != nil {
			ar.err = fmt.Errorf("psi: alignment: read: %w", err)
			return
		}
		ar.err = alignCorrupt("trailing data")
	}
}

// Pair returns the current pair: a position in [0, L) and the local row
// mapped to it.
func (ar *AlignmentReader) Pair() (pos, row uint64) { return ar.pos, ar.row }

// Err returns the first error, or nil if the whole file, trailer included,
// has been read and is valid. It returns nil before the end is reached too,
// so check it after Next returns false.
func (ar *AlignmentReader) Err() error { return ar.err }

// ReadAlignment decodes a whole alignment from r into memory, all or nothing.
// It returns an error wrapping ErrCorruptAlignment if the bytes are not a
// valid alignment (truncated, garbled, trailing data) and a plain read error
// if r fails. Memory is allocated as pairs arrive, not from the header's
// claimed count, unless r is a file large enough to hold that many (then
// at once: growing 1e7 pairs by appends copied them about five times
// into fresh memory).
func ReadAlignment(r io.Reader) (*Alignment, error) {
	ar, err := NewAlignmentReader(r)
	if err != nil {
		return nil, err
	}
	hint := min(ar.h.pairs(), 1<<16)
	if f, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := f.Stat(); err == nil && fi.Size() > 0 && ar.h.pairs() <= uint64(fi.Size())/alignPairSize {
			hint = ar.h.pairs()
		}
	}
	a := &Alignment{
		AlignmentHeader: ar.h,
		Positions:       make([]uint64, 0, hint),
		Rows:            make([]uint64, 0, hint),
	}
	for ar.Next() {
		p, row := ar.Pair()
		a.Positions = append(a.Positions, p)
		a.Rows = append(a.Rows, row)
	}
	if err := ar.Err(); err != nil {
		return nil, err
	}
	return a, nil
}
