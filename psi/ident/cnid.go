package ident

import (
	"strings"
	"time"
)

// now is the clock that bounds birth dates; tests pin it.
var now = time.Now

// idWeights are the ISO 7064 MOD 11-2 weights 2^(17-i) mod 11 for the first
// 17 characters of a resident ID (GB 11643-1999 §8.2).
var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// idCheckChars maps the weighted sum mod 11 to the check character.
const idCheckChars = "10X98765432"

// idCheckChar returns the check character for the 17 digits of body.
func idCheckChar(body []byte) byte {
	sum := 0
	for i, w := range idWeights {
		sum += int(body[i]-'0') * w
	}
	return idCheckChars[sum%11]
}

// validProvince reports whether the first two digits of a resident ID are a
// province-level code of GB/T 2260 (mainland 11–65), Taiwan (71), Hong Kong
// (81), Macao (82), or the Taiwan-resident permit code 83.
func validProvince(a, b byte) bool {
	switch a {
	case '1':
		return '1' <= b && b <= '5'
	case '2':
		return '1' <= b && b <= '3'
	case '3':
		return '1' <= b && b <= '7'
	case '4':
		return '1' <= b && b <= '6'
	case '5':
		return '0' <= b && b <= '4'
	case '6':
		return '1' <= b && b <= '5'
	case '7':
		return b == '1'
	case '8':
		return '1' <= b && b <= '3'
	}
	return false
}

func atoi(b []byte) int {
	v := 0
	for _, c := range b {
		v = v*10 + int(c-'0')
	}
	return v
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// validBirthDate reports whether y-m-d is a calendar date from 1900-01-01
// up to today (by [now], in its location) inclusive.
func validBirthDate(y, m, d int) bool {
	if y < 1900 || m < 1 || m > 12 || d < 1 {
		return false
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && isLeap(y) {
		days = 29
	}
	if d > days {
		return false
	}
	ty, tm, td := now().Date()
	return y*10000+m*100+d <= ty*10000+int(tm)*100+td
}

// appendCNID implements [CNID].
//
// After trimming surrounding white space and folding full-width characters,
// the value must be 18 characters (17 digits and a check digit or "X"/"x")
// or 15 digits (legacy format, birth year 19YY, no check character). The
// checks run in the order characters, length, province code, birth date,
// check character. A 15-digit ID is converted per GB 11643-1999: "19" is
// inserted after the 6-digit region code and the check character appended.
func appendCNID(dst []byte, s string) ([]byte, Reason) {
	s = strings.TrimSpace(s)
	if s == "" {
		return dst, ReasonEmpty
	}
	var (
		id   [18]byte
		n    int // characters seen, possibly more than len(id)
		xPos = -1
	)
	for i := 0; i < len(s); {
		r, size := nextRune(s, i)
		i += size
		switch {
		case isDigit(r):
		case r == 'X' || r == 'x':
			if xPos >= 0 {
				return dst, ReasonBadChar
			}
			xPos, r = n, 'X'
		default:
			return dst, ReasonBadChar
		}
		if n < len(id) {
			id[n] = byte(r)
		}
		n++
	}
	// "X" is only a check character, so only the last of 18.
	if xPos >= 0 && (xPos != 17 || n != 18) {
		return dst, ReasonBadChar
	}
	if n != 15 && n != 18 {
		return dst, ReasonBadLength
	}
	if !validProvince(id[0], id[1]) {
		return dst, ReasonBadRegion
	}
	if n == 15 {
		// RRRRRR YYMMDD SSS → RRRRRR 19YYMMDD SSS C
		if !validBirthDate(1900+atoi(id[6:8]), atoi(id[8:10]), atoi(id[10:12])) {
			return dst, ReasonBadBirthDate
		}
		copy(id[8:17], id[6:15])
		id[6], id[7] = '1', '9'
		id[17] = idCheckChar(id[:17])
		return append(dst, id[:]...), 0
	}
	if !validBirthDate(atoi(id[6:10]), atoi(id[10:12]), atoi(id[12:14])) {
		return dst, ReasonBadBirthDate
	}
	if id[17] != idCheckChar(id[:17]) {
		return dst, ReasonBadChecksum
	}
	return append(dst, id[:]...), 0
}
