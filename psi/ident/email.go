package ident

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// appendEmail implements [Email]: trim surrounding white space, Unicode
// NFKC, lower-case, then check the shape: exactly one "@", non-empty local
// part and domain, a domain with a "." that is neither first nor last and no
// empty label (".."), and no white space, control (Cc) or format (Cf, such
// as zero-width space) characters anywhere. Invalid UTF-8 is bad_char; a
// shape violation is bad_format.
//
// ASCII input takes a fast path with no allocation (NFKC is the identity on
// ASCII).
func appendEmail(dst []byte, s string) ([]byte, Reason) {
	s = strings.TrimSpace(s)
	if s == "" {
		return dst, ReasonEmpty
	}
	start := len(dst)
	if isASCII(s) {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
	} else {
		if !utf8.ValidString(s) {
			return dst, ReasonBadChar
		}
		t := foldEmail(s)
		// Lower-casing can in principle undo NFKC; insist on a fixed point
		// so that canonicalisation stays idempotent.
		if foldEmail(t) != t {
			return dst, ReasonBadFormat
		}
		if t == "" {
			return dst, ReasonEmpty
		}
		dst = append(dst, t...)
	}
	if r := checkEmail(dst[start:]); r != 0 {
		return dst[:start], r
	}
	return dst, 0
}

func foldEmail(s string) string {
	return strings.TrimSpace(strings.ToLower(norm.NFKC.String(s)))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// checkEmail checks the shape of a normalised address b.
func checkEmail(b []byte) Reason {
	at := -1
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			// ASCII: white space and controls are exactly <= ' ' and DEL.
			if c <= ' ' || c == 0x7f {
				return ReasonBadFormat
			}
			if c == '@' {
				if at >= 0 {
					return ReasonBadFormat
				}
				at = i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if isSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ReasonBadFormat
		}
		if r == '@' {
			if at >= 0 {
				return ReasonBadFormat
			}
			at = i
		}
		i += size
	}
	if at <= 0 || at == len(b)-1 {
		return ReasonBadFormat
	}
	domain := b[at+1:]
	dot := false
	for i, c := range domain {
		if c != '.' {
			continue
		}
		if i == 0 || i == len(domain)-1 || domain[i-1] == '.' {
			return ReasonBadFormat
		}
		dot = true
	}
	if !dot {
		return ReasonBadFormat
	}
	return 0
}
