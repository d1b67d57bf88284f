package ident

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Canonical returns the canonical form of the identifier s of kind k.
//
// If s is rejected it returns "" and an [*Error] naming the reason; the error
// never contains s. If k is not a defined Kind the error matches
// [ErrUnknownKind]. Canonical never panics, and for every accepted s
// Canonical(k, Canonical(k, s)) returns the same string. When s is already
// canonical Canonical returns s itself without allocating.
//
// Canonical is safe for concurrent use.
func Canonical(k Kind, s string) (string, error) {
	if k == Raw {
		// Raw output is always a substring of s; skip the copy.
		t := strings.TrimSpace(s)
		if t == "" {
			return "", &Error{Kind: Raw, Reason: ReasonEmpty}
		}
		return t, nil
	}
	var buf [64]byte
	b, err := AppendCanonical(buf[:0], k, s)
	if err != nil {
		return "", err
	}
	if string(b) == s {
		return s, nil
	}
	return string(b), nil
}

// AppendCanonical appends the canonical form of the identifier s of kind k to
// dst and returns the extended slice. It is the hot path for whole datasets:
// for ASCII input (and for CNMobile and CNID input of any script) it does not
// allocate once dst has room for the result (a CNMobile result is 14 bytes, a
// CNID result 18 bytes, Raw and Email at most len(s) bytes for ASCII input).
//
// On rejection it returns dst unchanged and an [*Error] as [Canonical] does.
//
// AppendCanonical is safe for concurrent use on distinct dst slices.
func AppendCanonical(dst []byte, k Kind, s string) ([]byte, error) {
	var r Reason
	n := len(dst)
	switch k {
	case Raw:
		dst, r = appendRaw(dst, s)
	case CNMobile:
		dst, r = appendCNMobile(dst, s)
	case CNID:
		dst, r = appendCNID(dst, s)
	case Email:
		dst, r = appendEmail(dst, s)
	default:
		return dst, &kindError{name: k.String()}
	}
	if r != 0 {
		return dst[:n], &Error{Kind: k, Reason: r}
	}
	return dst, nil
}

// appendRaw implements [Raw]: trim surrounding white space only.
func appendRaw(dst []byte, s string) ([]byte, Reason) {
	s = strings.TrimSpace(s)
	if s == "" {
		return dst, ReasonEmpty
	}
	return append(dst, s...), 0
}

// nextRune decodes the rune of s starting at byte i and folds the
// full-width ASCII variants (U+FF01–U+FF5E: "０", "＋", "（", "ｘ", …) to
// their ASCII counterparts. Invalid UTF-8 decodes as [utf8.RuneError] with
// size 1.
func nextRune(s string, i int) (r rune, size int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	r, size = utf8.DecodeRuneInString(s[i:])
	if 0xFF01 <= r && r <= 0xFF5E {
		r -= 0xFF01 - '!'
	}
	return r, size
}

// isSpace reports whether r is Unicode white space, which includes the
// no-break space U+00A0 and the ideographic space U+3000.
func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || '\t' <= r && r <= '\r'
	}
	return unicode.IsSpace(r)
}

func isDigit(r rune) bool { return '0' <= r && r <= '9' }
