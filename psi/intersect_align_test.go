package psi_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/tandem-dev/tandem/psi"
)

// alignTestEncode writes an alignment with the given pairs.
func alignTestEncode(t testing.TB, h psi.AlignmentHeader, pos, rows []uint64) []byte {
	t.Helper()
	var recs []byte
	for i := range pos {
		recs = binary.BigEndian.AppendUint64(recs, pos[i])
		recs = binary.BigEndian.AppendUint64(recs, rows[i])
	}
	var buf bytes.Buffer
	if err := psi.WriteAlignment(&buf, h, psi.NewSliceIterator(recs, 16)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAlignmentRoundTrip(t *testing.T) {
	big := make([]uint64, 10000) // more than one 64 KiB write buffer
	for i := range big {
		big[i] = uint64(3 * i)
	}
	tests := []struct {
		name string
		h    psi.AlignmentHeader
		pos  []uint64
		rows []uint64
	}{
		{"empty", psi.AlignmentHeader{Reveal: psi.RevealInitiator}, nil, nil},
		{"initiator", psi.AlignmentHeader{Reveal: psi.RevealInitiator, Length: 10, Matched: 3}, []uint64{0, 4, 9}, []uint64{7, 1, 1 << 40}},
		{"both", psi.AlignmentHeader{Reveal: psi.RevealBoth, Length: 3, Matched: 3}, []uint64{0, 1, 2}, []uint64{5, 3, 4}},
		{"count", psi.AlignmentHeader{Reveal: psi.RevealCount, Length: 1e8, Matched: 12345}, nil, nil},
		{"big", psi.AlignmentHeader{Reveal: psi.RevealInitiator, Length: 30000, Matched: 10000}, big, big},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := alignTestEncode(t, tt.h, tt.pos, tt.rows)
			if want := 32 + 16*len(tt.pos) + 4; len(enc) != want {
				t.Errorf("encoded size %d, want %d", len(enc), want)
			}
			// One byte at a time, to exercise short reads.
			a, err := psi.ReadAlignment(iotest.OneByteReader(bytes.NewReader(enc)))
			if err != nil {
				t.Fatal(err)
			}
			if a.AlignmentHeader != tt.h {
				t.Errorf("header %+v, want %+v", a.AlignmentHeader, tt.h)
			}
			if !slices.Equal(a.Positions, tt.pos) || !slices.Equal(a.Rows, tt.rows) {
				t.Errorf("pairs differ")
			}
			for i, p := range tt.pos {
				if r, ok := a.Row(p); !ok || r != tt.rows[i] {
					t.Errorf("Row(%d) = %d, %v; want %d, true", p, r, ok, tt.rows[i])
				}
			}
		})
	}
	a, _ := psi.ReadAlignment(bytes.NewReader(alignTestEncode(t, tests[1].h, tests[1].pos, tests[1].rows)))
	if _, ok := a.Row(5); ok {
		t.Error("Row(5) of unmatched position reported ok")
	}
}

func TestAlignmentCorrupt(t *testing.T) {
	h := psi.AlignmentHeader{Reveal: psi.RevealInitiator, Length: 100, Matched: 3}
	good := alignTestEncode(t, h, []uint64{1, 50, 99}, []uint64{10, 20, 30})

	// Every truncation and every single-bit flip is rejected as corrupt.
	for n := range len(good) {
		if _, err := psi.ReadAlignment(bytes.NewReader(good[:n])); !errors.Is(err, psi.ErrCorruptAlignment) {
			t.Fatalf("truncated to %d bytes: got %v, want ErrCorruptAlignment", n, err)
		}
	}
	for i := range len(good) * 8 {
		bad := bytes.Clone(good)
		bad[i/8] ^= 1 << (i % 8)
		if _, err := psi.ReadAlignment(bytes.NewReader(bad)); !errors.Is(err, psi.ErrCorruptAlignment) {
			t.Fatalf("bit %d flipped: got %v, want ErrCorruptAlignment", i, err)
		}
	}
	if _, err := psi.ReadAlignment(bytes.NewReader(append(bytes.Clone(good), 0))); !errors.Is(err, psi.ErrCorruptAlignment) {
		t.Errorf("trailing byte: got %v", err)
	}

	// Structurally invalid bodies with correct checksums are rejected too.
	reseal := func(b []byte) []byte { // recompute both CRCs
		binary.BigEndian.PutUint32(b[28:], alignTestCRC(b[:28]))
		binary.BigEndian.PutUint32(b[len(b)-4:], alignTestCRC(b[:len(b)-4]))
		return b
	}
	cases := map[string]func(b []byte){
		"unsorted":       func(b []byte) { binary.BigEndian.PutUint64(b[48:], 0) },
		"out of range":   func(b []byte) { binary.BigEndian.PutUint64(b[64:], 100) },
		"matched > L":    func(b []byte) { binary.BigEndian.PutUint64(b[20:], 101) },
		"bad mode":       func(b []byte) { b[10] = 9 },
		"both, M != L":   func(b []byte) { b[10] = byte(psi.RevealBoth) },
		"bad version":    func(b []byte) { b[9] = 2 },
		"reserved":       func(b []byte) { b[11] = 1 },
		"huge length":    func(b []byte) { binary.BigEndian.PutUint64(b[12:], 1<<63) },
		"bigger matched": func(b []byte) { binary.BigEndian.PutUint64(b[20:], 4) },
	}
	for name, mutate := range cases {
		bad := bytes.Clone(good)
		mutate(bad)
		if _, err := psi.ReadAlignment(bytes.NewReader(reseal(bad))); !errors.Is(err, psi.ErrCorruptAlignment) {
			t.Errorf("%s: got %v, want ErrCorruptAlignment", name, err)
		}
	}

	// Reader failures are not corruption.
	ioErr := errors.New("disk on fire")
	_, err := psi.ReadAlignment(io.MultiReader(bytes.NewReader(good[:40]), iotest.ErrReader(ioErr)))
	if !errors.Is(err, ioErr) || errors.Is(err, psi.ErrCorruptAlignment) {
		t.Errorf("reader error: got %v", err)
	}
}

func TestAlignmentWriterErrors(t *testing.T) {
	if _, err := psi.NewAlignmentWriter(io.Discard, psi.AlignmentHeader{Reveal: psi.RevealInitiator, Length: 1, Matched: 2}); err == nil {
		t.Error("matched > length accepted")
	}
	if _, err := psi.NewAlignmentWriter(io.Discard, psi.AlignmentHeader{}); err == nil {
		t.Error("zero reveal mode accepted")
	}
	h := psi.AlignmentHeader{Reveal: psi.RevealInitiator, Length: 10, Matched: 2}
	for name, f := range map[string]func(w *psi.AlignmentWriter) error{
		"too few":     func(w *psi.AlignmentWriter) error { w.Append(1, 1); return w.Close() },
		"too many":    func(w *psi.AlignmentWriter) error { w.Append(1, 1); w.Append(2, 1); return w.Append(3, 1) },
		"descending":  func(w *psi.AlignmentWriter) error { w.Append(5, 1); return w.Append(4, 1) },
		"repeated":    func(w *psi.AlignmentWriter) error { w.Append(5, 1); return w.Append(5, 2) },
		"range":       func(w *psi.AlignmentWriter) error { return w.Append(10, 1) },
		"after close": func(w *psi.AlignmentWriter) error { w.Append(1, 1); w.Append(2, 1); w.Close(); return w.Append(3, 1) },
	} {
		w, err := psi.NewAlignmentWriter(io.Discard, h)
		if err != nil {
			t.Fatal(err)
		}
		if f(w) == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestAlignmentReaderStreaming(t *testing.T) {
	h := psi.AlignmentHeader{Reveal: psi.RevealInitiator, Length: 100, Matched: 2}
	enc := alignTestEncode(t, h, []uint64{3, 4}, []uint64{30, 40})
	ar, err := psi.NewAlignmentReader(bytes.NewReader(enc))
	if err != nil {
		t.Fatal(err)
	}
	if ar.Header() != h {
		t.Errorf("Header() = %+v", ar.Header())
	}
	var got [][2]uint64
	for ar.Next() {
		p, r := ar.Pair()
		got = append(got, [2]uint64{p, r})
	}
	if ar.Err() != nil || !slices.Equal(got, [][2]uint64{{3, 30}, {4, 40}}) {
		t.Errorf("got %v, err %v", got, ar.Err())
	}
	if ar.Next() {
		t.Error("Next after end returned true")
	}
}

// FuzzReadAlignment: the decoder never panics or over-allocates, and anything
// it accepts re-encodes to the same bytes (the format is canonical).
func FuzzReadAlignment(f *testing.F) {
	f.Add(alignTestEncode(f, psi.AlignmentHeader{Reveal: psi.RevealInitiator, Length: 100, Matched: 3}, []uint64{1, 50, 99}, []uint64{10, 20, 30}))
	f.Add(alignTestEncode(f, psi.AlignmentHeader{Reveal: psi.RevealBoth, Length: 2, Matched: 2}, []uint64{0, 1}, []uint64{1, 0}))
	f.Add(alignTestEncode(f, psi.AlignmentHeader{Reveal: psi.RevealCount, Length: 5, Matched: 5}, nil, nil))
	f.Add([]byte("TNDMALGN"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := psi.ReadAlignment(bytes.NewReader(data))
		if err != nil {
			if a != nil {
				t.Fatal("non-nil alignment with error")
			}
			return
		}
		if enc := alignTestEncode(t, a.AlignmentHeader, a.Positions, a.Rows); !bytes.Equal(enc, data) {
			t.Fatalf("accepted input does not re-encode to itself")
		}
	})
}

func alignTestCRC(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
