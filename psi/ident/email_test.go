package ident

import "testing"

func TestEmail(t *testing.T) {
	runCanonCases(t, Email, []canonCase{
		// Accepted.
		{name: "lower-cased", in: "User@Example.COM", want: "user@example.com"},
		{name: "trimmed", in: "  a@b.co \t\n", want: "a@b.co"},
		{name: "trimmed unicode spaces", in: "\u3000a@b.cn\u00a0", want: "a@b.cn"},
		{name: "plus tag and subdomain", in: "First.Last+Tag@Mail.Example.ORG", want: "first.last+tag@mail.example.org"},
		{name: "full-width", in: "ｕｓｅｒ＠ｅｘａｍｐｌｅ．ｃｏｍ", want: "user@example.com"},
		{name: "full-width upper", in: "ＡＢＣ@ｘ.ｃｎ", want: "abc@x.cn"},
		{name: "small commercial at", in: "a\ufe6bb.com", want: "a@b.com"},
		{name: "ligature", in: "\ufb01@x.io", want: "fi@x.io"},
		{name: "circled letter", in: "\u24d0@x.io", want: "a@x.io"},
		{name: "precomposed", in: "Ünïcode@Exämple.de", want: "ünïcode@exämple.de"},
		{name: "decomposed", in: "U\u0308ber@example.de", want: "über@example.de"},
		{name: "chinese", in: "张三@例子.中国", want: "张三@例子.中国"},
		{name: "kelvin sign", in: "\u212a@x.io", want: "k@x.io"},

		// Rejected.
		{name: "empty", in: "", reason: ReasonEmpty},
		{name: "white space only", in: " \t\u3000", reason: ReasonEmpty},
		{name: "no at", in: "ab.com", reason: ReasonBadFormat},
		{name: "two ats", in: "a@b@c.com", reason: ReasonBadFormat},
		{name: "double at", in: "a@@b.com", reason: ReasonBadFormat},
		{name: "two full-width ats", in: "a＠b@c.com", reason: ReasonBadFormat},
		{name: "empty local", in: "@b.com", reason: ReasonBadFormat},
		{name: "empty domain", in: "a@", reason: ReasonBadFormat},
		{name: "no dot", in: "a@localhost", reason: ReasonBadFormat},
		{name: "leading dot", in: "a@.b.com", reason: ReasonBadFormat},
		{name: "trailing dot", in: "a@b.com.", reason: ReasonBadFormat},
		{name: "empty label", in: "a@b..com", reason: ReasonBadFormat},
		{name: "inner space", in: "a b@c.com", reason: ReasonBadFormat},
		{name: "inner tab", in: "a\tb@c.com", reason: ReasonBadFormat},
		{name: "inner ideographic space", in: "a@b\u3000c.com", reason: ReasonBadFormat},
		{name: "inner nbsp", in: "a\u00a0b@c.com", reason: ReasonBadFormat},
		{name: "nul", in: "a\x00@b.com", reason: ReasonBadFormat},
		{name: "del", in: "a\x7f@b.com", reason: ReasonBadFormat},
		{name: "c1 control", in: "a\u0085b@c.com", reason: ReasonBadFormat},
		{name: "zero-width space", in: "a\u200b@b.com", reason: ReasonBadFormat},
		{name: "bom", in: "\ufeffa@b.com", reason: ReasonBadFormat},
		{name: "invalid utf8", in: "a\xff@b.com", reason: ReasonBadChar},
	})
}
