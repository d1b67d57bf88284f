package synth

import (
	"strconv"
	"unicode/utf8"
)

// Phone formats. Each side of a shared person writes a different one.
const (
	phNational  = iota // 13800138000
	phE164             // +8613800138000
	phSpaced           // 138 0013 8000
	phDashed           // +86 138-0013-8000
	phIntl00           // 0086 13800138000
	phParen            // (+86)138 0013 8000
	ph86               // 86 13800138000
	phFullWidth        // １３８００１３８０００
	numPhoneFormats
)

// Resident-ID formats.
const (
	idPlain     = iota // 18 characters, upper-case X
	idLowerX           // lower-case x check character (same as plain otherwise)
	idLegacy15         // 15-digit legacy number (only for people born 19xx)
	idSpaces           // surrounded by spaces
	idFullWidth        // full-width digits
	numIDFormats
)

// Email formats.
const (
	emLower  = iota // zhangwei12@qq.com
	emTitle         // Zhangwei12@QQ.com
	emUpper         // ZHANGWEI12@QQ.COM
	emSpaces        // "  zhangwei12@qq.com "
	numEmailFormats
)

// Weights of the formats on the bank side (cleaner) and partner side
// (messier).
var (
	bankPhoneW    = []float64{45, 20, 10, 5, 5, 5, 5, 5}
	partnerPhoneW = []float64{20, 10, 15, 15, 10, 15, 10, 5}
	bankIDW       = []float64{75, 10, 5, 5, 5}
	bankEmailW    = []float64{70, 15, 5, 10}
	partnerEmailW = []float64{30, 30, 15, 25}
	partnerIDW    = []float64{40, 20, 15, 15, 10}
)

func appendPhone(dst []byte, d *[11]byte, f int) []byte {
	switch f {
	case phE164:
		dst = append(dst, "+86"...)
		return append(dst, d[:]...)
	case phSpaced:
		return appendGrouped(dst, d, ' ')
	case phDashed:
		dst = append(dst, "+86 "...)
		return appendGrouped(dst, d, '-')
	case phIntl00:
		dst = append(dst, "0086 "...)
		return append(dst, d[:]...)
	case phParen:
		dst = append(dst, "(+86)"...)
		return appendGrouped(dst, d, ' ')
	case ph86:
		dst = append(dst, "86 "...)
		return append(dst, d[:]...)
	case phFullWidth:
		return appendFullWidth(dst, d[:])
	}
	return append(dst, d[:]...)
}

func appendGrouped(dst []byte, d *[11]byte, sep byte) []byte {
	dst = append(dst, d[:3]...)
	dst = append(dst, sep)
	dst = append(dst, d[3:7]...)
	dst = append(dst, sep)
	return append(dst, d[7:]...)
}

func appendFullWidth(dst, s []byte) []byte {
	for _, c := range s {
		if c > ' ' && c < 0x7f {
			dst = utf8.AppendRune(dst, rune(c)+0xFEE0)
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// appendID writes id in format f. Legacy 15-digit numbers exist only for
// births in the 1900s; others fall back to the plain format.
func appendID(dst []byte, id *[18]byte, f int) []byte {
	switch f {
	case idLowerX:
		dst = append(dst, id[:17]...)
		c := id[17]
		if c == 'X' {
			c = 'x'
		}
		return append(dst, c)
	case idLegacy15:
		if id[6] == '1' && id[7] == '9' {
			dst = append(dst, id[:6]...)
			return append(dst, id[8:17]...)
		}
	case idSpaces:
		dst = append(dst, ' ')
		dst = append(dst, id[:]...)
		return append(dst, ' ', ' ')
	case idFullWidth:
		return appendFullWidth(dst, id[:])
	}
	return append(dst, id[:]...)
}

func appendEmail(dst []byte, n int, f int) []byte {
	name := emailNames[n%len(emailNames)]
	dom := emailDomains[(n/len(emailNames))%len(emailDomains)]
	start := len(dst)
	if f == emSpaces {
		dst = append(dst, "  "...)
	}
	dst = append(dst, name...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, '@')
	dst = append(dst, dom...)
	switch f {
	case emTitle:
		dst[start] -= 'a' - 'A'
		for i := len(dst) - len(dom); i < len(dst); i++ {
			if c := dst[i]; c >= 'a' && c <= 'z' && i < len(dst)-4 {
				dst[i] = c - ('a' - 'A')
			}
		}
	case emUpper:
		for i := start; i < len(dst); i++ {
			if c := dst[i]; c >= 'a' && c <= 'z' {
				dst[i] = c - ('a' - 'A')
			}
		}
	case emSpaces:
		dst = append(dst, ' ')
	}
	return dst
}

// breakPhone appends an invalid rendering of d: one digit short or one too
// many (ident rejects both as bad_length).
func breakPhone(dst []byte, d *[11]byte, f int, r *rng) []byte {
	b := *d
	if f != phFullWidth && r.bernoulli(0.5) {
		dst = appendPhone(dst, &b, f)
		return dst[:len(dst)-1]
	}
	dst = appendPhone(dst, &b, phNational)
	return append(dst, byte('0'+r.intn(10)))
}

// breakID appends an invalid rendering of id: a wrong check character or a
// missing digit (ident rejects them as bad_checksum and bad_length).
func breakID(dst []byte, id *[18]byte, r *rng) []byte {
	b := *id
	if r.bernoulli(0.6) {
		wrong := "0123456789X"
		for {
			c := wrong[r.intn(len(wrong))]
			if c != b[17] {
				b[17] = c
				break
			}
		}
		return append(dst, b[:]...)
	}
	return append(dst, b[:17]...)
}
