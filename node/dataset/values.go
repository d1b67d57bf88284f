package dataset

import (
	"math"
	"strconv"
	"strings"
)

// isNull reports whether a cell counts as missing: empty or blank, or one of
// the usual spellings NA, N/A, NULL, NaN, None, \N (case-insensitive).
func isNull(s string) bool {
	s = strings.TrimSpace(s)
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
	return isNull(s) && !strings.EqualFold(strings.TrimSpace(s), "None")
}

// parseNumber parses a non-null numeric cell. It accepts surrounding spaces and
// rejects infinities; the strconv error (which quotes the value) is dropped.
func parseNumber(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// parseBool parses a boolean-ish cell: 1/0, true/false, yes/no, y/n, t/f
// (case-insensitive, surrounding spaces ignored).
func parseBool(s string) (v, ok bool) {
	s = strings.TrimSpace(s)
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
