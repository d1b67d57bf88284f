package ident

import "strings"

// mobileMaxDigits bounds the digits kept while scanning a mobile number. The
// longest accepted form, "0086" and 11 digits, has 15.
const mobileMaxDigits = 16

// appendCNMobile implements [CNMobile].
//
// Grammar, after folding full-width characters to ASCII and trimming white
// space: digits, separators (white space including NBSP, "-", ".", Unicode
// dashes), at most one "+" before the first digit, and at most one
// parenthesised group before the first digit which must hold the country
// code ("(+86)", "(86)", "(0086)"). The digits then are one of
//
//	0086 + national   "+" 86 + national   (86) + national
//	86 + national (exactly 13 digits)     national
//
// where national is 11 digits starting 13–19. Output: "+86" + national.
//
// Reasons, in priority order: empty (white space only); bad_char (any other
// character, including letters and invalid UTF-8); bad_format (misplaced
// "+" or parentheses, a group that is not "86"/"0086", or no digits at all);
// bad_length (national part not 11 digits); bad_prefix (a foreign country
// code, "00" other than "0086", or a national part not starting 13–19).
func appendCNMobile(dst []byte, s string) ([]byte, Reason) {
	s = strings.TrimSpace(s)
	if s == "" {
		return dst, ReasonEmpty
	}
	var (
		digits    [mobileMaxDigits]byte
		n         int  // digits seen, possibly more than len(digits)
		plus      bool // a leading "+"
		open      bool // "(" seen
		closed    bool // ")" seen
		badFormat bool // reported after the scan so that bad_char wins
	)
	for i := 0; i < len(s); {
		r, size := nextRune(s, i)
		i += size
		switch {
		case isDigit(r):
			if n < len(digits) {
				digits[n] = byte(r)
			}
			n++
		case isSpace(r), r == '-', r == '.', isDash(r):
			// separator
		case r == '+':
			badFormat = badFormat || plus || n > 0
			plus = true
		case r == '(':
			badFormat = badFormat || open || n > 0
			open = true
		case r == ')':
			// The group must hold exactly the country code.
			g := string(digits[:min(n, len(digits))])
			badFormat = badFormat || !open || closed || (g != "86" && g != "0086")
			closed = true
		default:
			return dst, ReasonBadChar
		}
	}
	if badFormat || open != closed || n == 0 {
		return dst, ReasonBadFormat
	}
	if n > len(digits) {
		return dst, ReasonBadLength
	}
	d := string(digits[:n]) // does not escape; no allocation
	national := d
	switch {
	case !plus && strings.HasPrefix(d, "0086"):
		national = d[4:]
	case strings.HasPrefix(d, "00"):
		// Another country's international prefix, or "+00".
		return dst, ReasonBadPrefix
	case plus || closed:
		if !strings.HasPrefix(d, "86") {
			return dst, ReasonBadPrefix
		}
		national = d[2:]
	case n == 13 && strings.HasPrefix(d, "86"):
		national = d[2:]
	}
	if len(national) != 11 {
		return dst, ReasonBadLength
	}
	if national[0] != '1' || national[1] < '3' {
		return dst, ReasonBadPrefix
	}
	dst = append(dst, "+86"...)
	return append(dst, national...), 0
}

// isDash reports whether r is one of the Unicode hyphens and dashes that
// spreadsheets substitute for "-": U+2010–U+2015 and the minus sign U+2212.
func isDash(r rune) bool { return 0x2010 <= r && r <= 0x2015 || r == 0x2212 }
