package ident

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var (
	mobileRE = regexp.MustCompile(`^\+861[3-9]\d{9}$`)
	idRE     = regexp.MustCompile(`^\d{17}[\dX]$`)
)

// FuzzCanonical canonicalises every input as every kind and checks the
// contract: no panic; accepted output is re-accepted unchanged (idempotence);
// AppendCanonical agrees with Canonical; outputs have their kind's shape;
// rejections are an *Error with a fixed message and leave dst unchanged.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{
		"", " ", "13800138000", "+86 138 0013 8000", "0086-138-0013-8000",
		"(+86)13800138000", "86 13800138000", "（＋８６）１３８００１３８０００",
		"138\u00a00013\u00a08000", "12800138000", "138+00138000", "(+1)4155550100",
		"11010519491231002X", "11010519491231002x", "110105491231002",
		"１１０１０５１９４９１２３１００２Ｘ", "440524188001010014", "110105194912310021",
		"User@Example.COM", "ｕｓｅｒ＠ｅｘａｍｐｌｅ．ｃｏｍ", "U\u0308ber@example.de",
		"张三@例子.中国", "a@b..com", "\ufb01@x.io", "a\xff@b.com", "\u0130@x.io",
	} {
		f.Add(s)
	}
	msgs := allMessages()
	f.Fuzz(func(t *testing.T, s string) {
		for k := Raw; k < numKinds; k++ {
			got, err := Canonical(k, s)
			b, aerr := AppendCanonical([]byte("dst:"), k, s)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Kind != k || !e.Reason.valid() {
					t.Fatalf("Canonical(%s, %q) error %v is not a valid *Error", k, s, err)
				}
				if !msgs[err.Error()] {
					t.Fatalf("Canonical(%s, %q) error %q is not a fixed message", k, s, err)
				}
				if aerr == nil || aerr.Error() != err.Error() || string(b) != "dst:" {
					t.Fatalf("AppendCanonical(%s, %q) = %q, %v; want dst unchanged and %v", k, s, b, aerr, err)
				}
				continue
			}
			if got == "" {
				t.Fatalf("Canonical(%s, %q) accepted an empty result", k, s)
			}
			if aerr != nil || string(b) != "dst:"+got {
				t.Fatalf("AppendCanonical(%s, %q) = %q, %v; want %q", k, s, b, aerr, "dst:"+got)
			}
			again, err := Canonical(k, got)
			if err != nil || again != got {
				t.Fatalf("not idempotent: Canonical(%s, %q) = %q; Canonical of that = %q, %v", k, s, got, again, err)
			}
			switch k {
			case Raw:
				if got != strings.TrimSpace(s) {
					t.Fatalf("Canonical(raw, %q) = %q, want TrimSpace", s, got)
				}
			case CNMobile:
				if !mobileRE.MatchString(got) {
					t.Fatalf("Canonical(cn_mobile, %q) = %q, not E.164 CN mobile", s, got)
				}
			case CNID:
				if !idRE.MatchString(got) || checkChar(got[:17]) != got[17:] {
					t.Fatalf("Canonical(cn_id, %q) = %q, bad shape or checksum", s, got)
				}
			case Email:
				if strings.Count(got, "@") != 1 || !utf8.ValidString(got) || got != strings.ToLower(got) {
					t.Fatalf("Canonical(email, %q) = %q, bad shape", s, got)
				}
			}
		}
	})
}

// TestIdempotentEveryRune is an exhaustive complement to FuzzCanonical:
// every Unicode code point is placed inside a near-valid value of each kind
// (where the fuzzer rarely reaches), and the result, if accepted, must be a
// fixed point of Canonical.
func TestIdempotentEveryRune(t *testing.T) {
	if testing.Short() {
		t.Skip("exhaustive over all code points")
	}
	templates := map[Kind][2]string{
		Raw:      {" ", "x "},
		CNMobile: {"+86 138", "0013 8000"},
		CNID:     {"11010519491231002", ""},
		Email:    {"a", "@b.cn"},
	}
	for r := rune(0); r <= utf8.MaxRune; r++ {
		c := string(r)
		for k, tpl := range templates {
			s := tpl[0] + c + tpl[1]
			got, err := Canonical(k, s)
			if err != nil {
				continue
			}
			if again, err := Canonical(k, got); err != nil || again != got {
				t.Fatalf("%s %U: Canonical(%q) = %q, then %q, %v", k, r, s, got, again, err)
			}
		}
	}
}
