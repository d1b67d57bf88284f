package ident

import (
	"fmt"
	"testing"
)

func TestCNMobile(t *testing.T) {
	const want = "+8613800138000"
	cases := []canonCase{
		// Accepted written forms.
		{name: "national", in: "13800138000", want: want},
		{name: "e164", in: "+8613800138000", want: want},
		{name: "plus spaced", in: "+86 138 0013 8000", want: want},
		{name: "plus dashed", in: "+86-138-0013-8000", want: want},
		{name: "0086 dashed", in: "0086-138-0013-8000", want: want},
		{name: "0086", in: "008613800138000", want: want},
		{name: "paren plus", in: "(+86)13800138000", want: want},
		{name: "paren plus spaced", in: "(+86) 138 0013 8000", want: want},
		{name: "paren 86", in: "(86)13800138000", want: want},
		{name: "paren 0086", in: "(0086)13800138000", want: want},
		{name: "86 spaced", in: "86 13800138000", want: want},
		{name: "86 joined", in: "8613800138000", want: want},
		{name: "dots", in: "138.0013.8000", want: want},
		{name: "nbsp", in: "138\u00a00013\u00a08000", want: want},
		{name: "surrounding space", in: " \t13800138000\r\n", want: want},
		{name: "en dash", in: "138\u20130013\u20138000", want: want},
		{name: "plus then space", in: "+ 86 13800138000", want: want},
		{name: "full-width digits", in: "１３８００１３８０００", want: want},
		{name: "full-width plus ideographic space", in: "＋８６\u3000１３８\u3000００１３\u3000８０００", want: want},
		{name: "full-width parens", in: "（＋８６）１３８００１３８０００", want: want},
		{name: "full-width hyphen", in: "１３８－００１３－８０００", want: want},
		{name: "mixed width", in: "+86 138 ００１３ 8000", want: want},
		{name: "prefix 19", in: "19912345678", want: "+8619912345678"},
		{name: "prefix 14", in: "14512345678", want: "+8614512345678"},
		{name: "prefix 16", in: "16612345678", want: "+8616612345678"},
		{name: "prefix 17", in: "17012345678", want: "+8617012345678"},

		// Rejected.
		{name: "empty", in: "", reason: ReasonEmpty},
		{name: "white space only", in: " \t\u00a0\u3000 ", reason: ReasonEmpty},
		{name: "10 digits", in: "1380013800", reason: ReasonBadLength},
		{name: "12 digits", in: "138001380001", reason: ReasonBadLength},
		{name: "plus 86 short", in: "+86 1380013800", reason: ReasonBadLength},
		{name: "plus 86 long", in: "+86 138001380001", reason: ReasonBadLength},
		{name: "86 and 10 digits", in: "86 1380013800", reason: ReasonBadLength},
		{name: "0086 long", in: "0086 138001380001", reason: ReasonBadLength},
		{name: "plus 86 only", in: "+86", reason: ReasonBadLength},
		{name: "trunk zero", in: "013800138000", reason: ReasonBadLength},
		{name: "very long", in: "138001380001380013800138000", reason: ReasonBadLength},
		{name: "prefix 12", in: "12800138000", reason: ReasonBadPrefix},
		{name: "prefix 10", in: "10086123456", reason: ReasonBadPrefix},
		{name: "prefix 2", in: "23800138000", reason: ReasonBadPrefix},
		{name: "86 and 9 digits", in: "86138001380", reason: ReasonBadPrefix},
		{name: "plus 86 prefix 12", in: "+8612345678901", reason: ReasonBadPrefix},
		{name: "foreign plus", in: "+1 415 555 0100", reason: ReasonBadPrefix},
		{name: "foreign 00", in: "001 415 555 0100", reason: ReasonBadPrefix},
		{name: "plus 0086", in: "+0086 13800138000", reason: ReasonBadPrefix},
		{name: "letter", in: "1380013800a", reason: ReasonBadChar},
		{name: "extension", in: "138-0013-8000 ext. 1", reason: ReasonBadChar},
		{name: "scheme", in: "tel:13800138000", reason: ReasonBadChar},
		{name: "full-width letter", in: "ａ13800138000", reason: ReasonBadChar},
		{name: "slash", in: "138/0013/8000", reason: ReasonBadChar},
		{name: "invalid utf8", in: "\xff13800138000", reason: ReasonBadChar},
		{name: "letter beats format", in: "1+3800138000x", reason: ReasonBadChar},
		{name: "inner plus", in: "138+00138000", reason: ReasonBadFormat},
		{name: "double plus", in: "++8613800138000", reason: ReasonBadFormat},
		{name: "trailing plus", in: "13800138000+", reason: ReasonBadFormat},
		{name: "unclosed paren", in: "(+86 13800138000", reason: ReasonBadFormat},
		{name: "unopened paren", in: "+86)13800138000", reason: ReasonBadFormat},
		{name: "foreign paren", in: "(+1)4155550100", reason: ReasonBadFormat},
		{name: "paren around number", in: "(138)00138000", reason: ReasonBadFormat},
		{name: "empty parens", in: "()13800138000", reason: ReasonBadFormat},
		{name: "trailing parens", in: "13800138000()", reason: ReasonBadFormat},
		{name: "plus only", in: "+", reason: ReasonBadFormat},
		{name: "separators only", in: "- - -", reason: ReasonBadFormat},
	}
	for p := '0'; p <= '9'; p++ {
		in := fmt.Sprintf("1%c812345678", p)
		c := canonCase{name: "second digit " + string(p), in: in, want: "+86" + in}
		if p < '3' {
			c.want, c.reason = "", ReasonBadPrefix
		}
		cases = append(cases, c)
	}
	runCanonCases(t, CNMobile, cases)
}
