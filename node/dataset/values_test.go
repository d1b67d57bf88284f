package dataset

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// parseNumberRef is parseNumber as it was before parseDecimal and trim:
// strings.TrimSpace and strconv.ParseFloat alone.
func parseNumberRef(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

func sameNumber(t *testing.T, s string) {
	t.Helper()
	got, gok := parseNumber(s)
	want, wok := parseNumberRef(s)
	if gok != wok || math.Float64bits(got) != math.Float64bits(want) {
		t.Fatalf("parseNumber(%q) = %v, %v; want %v, %v", s, got, gok, want, wok)
	}
}

// TestParseNumberMatchesStrconv: the fast path gives strconv's float, bit
// for bit, on decimals of every length and precision it takes, and leaves
// every other form to strconv.
func TestParseNumberMatchesStrconv(t *testing.T) {
	for _, s := range []string{"0", "-0", "0.0", "1.", ".5", "-.5", ".", "-", "+5", "007", "1e5", "1_0", "--5", "-0.000",
		"123456789012345", "1234567890123456", "12345678901234.5", "0.123456789012345", "9007199254740993",
		" 42 ", "\t3.5", "3.5\u3000", "NaN", "Inf", "-Infinity", "0x1p3", "1,5", "", " ", "１２"} {
		sameNumber(t, s)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		digits := 1 + r.IntN(17)
		var b strings.Builder
		if r.IntN(4) == 0 {
			b.WriteByte('-')
		}
		dot := r.IntN(digits + 2)
		for i := range digits {
			if i == dot {
				b.WriteByte('.')
			}
			b.WriteByte(byte('0' + r.IntN(10)))
		}
		sameNumber(t, b.String())
	}
}

func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"488.61", "-0", "1e5", " 7 ", "0.1", ".", "99999999999999.9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { sameNumber(t, s) })
}

func TestTrimMatchesTrimSpace(t *testing.T) {
	for _, s := range []string{"", " ", "a", " a", "a ", "\ta\n", "\u00a0a", "a\u3000", "\u0085", "ab", "é", "a\u2003b"} {
		if got, want := trim(s), strings.TrimSpace(s); got != want {
			t.Errorf("trim(%q) = %q, want %q", s, got, want)
		}
	}
}
