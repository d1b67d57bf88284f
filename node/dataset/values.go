package dataset

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// isNull reports whether a cell counts as missing: empty or blank, or one of
// the usual spellings NA, N/A, NULL, NaN, None, \N (case-insensitive).
func isNull(s string) bool {
	s = trim(s)
	switch len(s) {
	case 0:
		return true
	case 2:
		return s == `\N` || strings.EqualFold(s, "NA")
	case 3:
		return strings.EqualFold(s, "N/A") || strings.EqualFold(s, "NaN")
	case 4:
		return strings.EqualFold(s, "NULL") || strings.EqualFold(s, "None")
	}
	return false
}

// isNullCategory is isNull for a categorical cell: "None" is a level there
// ("no other debtors", "no savings account"), not a missing value.
func isNullCategory(s string) bool {
	return isNull(s) && !strings.EqualFold(trim(s), "None")
}

// parseNumber parses a non-null numeric cell. It accepts surrounding spaces and
// rejects infinities; the strconv error (which quotes the value) is dropped.
func parseNumber(s string) (float64, bool) {
	s = trim(s)
	if f, ok := parseDecimal(s); ok {
		return f, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// trim is strings.TrimSpace, without its call for a cell that starts and
// ends in a printable ASCII byte (nearly all): a pass over a model's
// features trims each cell two or three times.
func trim(s string) string {
	if n := len(s); n == 0 || s[0] > ' ' && s[0] < utf8.RuneSelf && s[n-1] > ' ' && s[n-1] < utf8.RuneSelf {
		return s
	}
	return strings.TrimSpace(s)
}

// parseDecimal parses the common form of a number cell, an optional "-"
// and at most 15 digits with at most one "." among them, as
// strconv.ParseFloat does (ok false for any other form): m/10^k, both
// exact in a float64, is correctly rounded, so it is the same float. It
// takes a third of ParseFloat's time, which parses every form there is.
func parseDecimal(s string) (float64, bool) {
	neg := s != "" && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if s == "" || len(s) > 16 {
		return 0, false
	}
	var m uint64
	digits, frac := 0, -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
			if frac >= 0 {
				frac++
			}
		case c == '.' && frac < 0:
			frac = 0
		default:
			return 0, false
		}
	}
	if digits == 0 || digits > 15 {
		return 0, false
	}
	f := float64(m) // exact: m < 10^15 < 2^53
	if frac > 0 {
		f /= pow10[frac] // one correctly rounded division of exact values
	}
	if neg {
		f = -f
	}
	return f, true
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// parseBool parses a boolean-ish cell: 1/0, true/false, yes/no, y/n, t/f
// (case-insensitive, surrounding spaces ignored).
func parseBool(s string) (v, ok bool) {
	s = trim(s)
	for _, w := range trueWords {
		if strings.EqualFold(s, w) {
			return true, true
		}
	}
	for _, w := range falseWords {
		if strings.EqualFold(s, w) {
			return false, true
		}
	}
	return false, false
}

var (
	trueWords  = []string{"1", "y", "yes", "true", "t", "1.0"}
	falseWords = []string{"0", "n", "no", "false", "f", "0.0"}
)
