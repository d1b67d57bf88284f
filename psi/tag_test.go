package psi_test

import (
	"bytes"
	"testing"

	"github.com/tandem-dev/tandem/psi"
)

func TestTagSize(t *testing.T) {
	tests := []struct {
		nA, nB int64
		want   int // bytes
	}{
		{0, 0, 5},
		{1, 1, 5},
		{-5, 1, 5},
		{2, 1, 6},   // 41 bits
		{256, 1, 6}, // 48 bits
		{257, 1, 7}, // 49 bits
		{1 << 20, 1 << 20, 10},
		{1e6, 1e6, 10}, // 40 + 40 = 80 bits
		{1e7, 1e7, 11}, // 40 + 47 = 87 bits
		{1e8, 1e8, 12}, // 40 + 54 = 94 bits
		{1 << 62, 1 << 62, 21},
		{1<<63 - 1, 1<<63 - 1, 21}, // 40 + 126 = 166 bits
	}
	for _, tt := range tests {
		if got := psi.TagSize(tt.nA, tt.nB); got != tt.want {
			t.Errorf("TagSize(%d, %d) = %d, want %d", tt.nA, tt.nB, got, tt.want)
		}
		if got := psi.TagBits(tt.nA, tt.nB); got != 8*tt.want {
			t.Errorf("TagBits(%d, %d) = %d, want %d", tt.nA, tt.nB, got, 8*tt.want)
		}
		if a, b := psi.TagSize(tt.nA, tt.nB), psi.TagSize(tt.nB, tt.nA); a != b {
			t.Errorf("TagSize not symmetric: %d vs %d", a, b)
		}
	}
}

func TestTag(t *testing.T) {
	elem := bytes.Repeat([]byte{0xab}, 32)
	other := bytes.Clone(elem)
	other[31] ^= 1

	t10a, t10b := make([]byte, 10), make([]byte, 10)
	psi.Tag(t10a, elem)
	psi.Tag(t10b, elem)
	if !bytes.Equal(t10a, t10b) {
		t.Fatal("Tag not deterministic")
	}
	psi.Tag(t10b, other)
	if bytes.Equal(t10a, t10b) {
		t.Fatal("different elements gave equal 10-byte tags")
	}
	// Tags of different lengths are domain separated: the 12-byte tag does
	// not extend the 10-byte one.
	t12 := make([]byte, 12)
	psi.Tag(t12, elem)
	if bytes.Equal(t12[:10], t10a) {
		t.Fatal("12-byte tag extends the 10-byte tag")
	}
	// Long elements take the streaming path and still work.
	long := bytes.Repeat([]byte{1}, 100)
	t32 := make([]byte, 32)
	psi.Tag(t32, long)
	if bytes.Equal(t32, make([]byte, 32)) {
		t.Fatal("zero tag for long element")
	}
	for _, n := range []int{0, 33} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Tag with %d-byte dst did not panic", n)
				}
			}()
			psi.Tag(make([]byte, n), elem)
		}()
	}
}

func TestTagAllocs(t *testing.T) {
	dst, elem := make([]byte, 12), make([]byte, 32)
	if n := testing.AllocsPerRun(100, func() { psi.Tag(dst, elem) }); n != 0 {
		t.Errorf("Tag allocates %v times per call, want 0", n)
	}
}

func BenchmarkTag(b *testing.B) {
	dst, elem := make([]byte, 12), make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		psi.Tag(dst, elem)
	}
}
