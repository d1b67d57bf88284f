package ident

import "testing"

// benchInputs are typical messy values per kind, all accepted.
var benchInputs = []struct {
	name string
	kind Kind
	in   string
}{
	{"kind=raw", Raw, "  customer-000123  "},
	{"kind=cn_mobile", CNMobile, "+86 138 0013 8000"},
	{"kind=cn_mobile/form=e164", CNMobile, "+8613800138000"},
	{"kind=cn_mobile/form=fullwidth", CNMobile, "（＋８６）１３８００１３８０００"},
	{"kind=cn_id", CNID, "11010519491231002x"},
	{"kind=cn_id/form=15", CNID, "110105491231002"},
	{"kind=email", Email, " First.Last+Tag@Mail.Example.ORG "},
	{"kind=email/form=unicode", Email, "Ünïcode@Exämple.de"},
}

func BenchmarkAppendCanonical(b *testing.B) {
	for _, bi := range benchInputs {
		b.Run(bi.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 64)
			for b.Loop() {
				var err error
				buf, err = AppendCanonical(buf[:0], bi.kind, bi.in)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCanonical(b *testing.B) {
	for _, bi := range benchInputs {
		b.Run(bi.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Canonical(bi.kind, bi.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendCanonicalRejected measures the rejection path, which
// allocates one small *Error.
func BenchmarkAppendCanonicalRejected(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf, _ = AppendCanonical(buf[:0], CNID, "110105194912310021")
	}
}
