package dataset_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/node/dataset"
	"github.com/tandem-dev/tandem/psi/ident"
)

// benchFile writes n rows of bank-like data with messy phones and valid ids.
func benchFile(b *testing.B, n int) string {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("customer_id,phone,id_no,has_card,income,age,city,consent\n")
	check := func(d17 string) byte {
		sum, w := 0, 1
		for i := 16; i >= 0; i-- {
			w = w * 2 % 11
			sum += int(d17[i]-'0') * w
		}
		return "10X98765432"[sum%11]
	}
	for i := range n {
		d17 := fmt.Sprintf("110105%04d%02d%02d%03d", 1950+i%50, 1+i%12, 1+i%28, i%1000)
		fmt.Fprintf(&sb, "C%08d,+86 138-%04d-%04d,%s%c,%d,%d,%d,tier%d,%s\n",
			i, (i/10000)%10000, i%10000, d17, check(d17), i%2, 50000+i%100000, 18+i%60, 1+i%4, []string{"Y", "N"}[i%2])
	}
	p := filepath.Join(b.TempDir(), "bench.csv")
	if err := os.WriteFile(p, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

func BenchmarkScan(b *testing.B) {
	for _, bc := range []struct {
		name string
		n    int
	}{{"rows=1e5", 1e5}} {
		n := bc.n
		b.Run(bc.name, func(b *testing.B) {
			path := benchFile(b, n)
			st, _ := os.Stat(path)
			spec := dataset.Spec{File: path, Label: "has_card", Features: []string{"income", "age"},
				Attrs: []string{"city"}, Consent: "consent",
				IDs: []dataset.IDColumn{{Column: "phone", Kind: ident.CNMobile}, {Column: "id_no", Kind: ident.CNID}}}
			b.SetBytes(st.Size())
			b.ReportAllocs()
			for b.Loop() {
				p, err := dataset.Scan(context.Background(), spec, nil)
				if err != nil || p.Rows != int64(n) || p.IDs[1].Valid != int64(n) {
					b.Fatalf("scan: %v %+v", err, p)
				}
			}
		})
	}
}

func BenchmarkEachIDAny(b *testing.B) {
	path := benchFile(b, 1e5)
	spec := dataset.Spec{File: path,
		IDs: []dataset.IDColumn{{Column: "phone", Kind: ident.CNMobile}, {Column: "id_no", Kind: ident.CNID}}}
	b.Run("rows=1e5/cols=2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := dataset.EachIDAny(context.Background(), spec, nil, func(int64, ident.Kind, []byte) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkColumns reads the numeric columns and a label of 1e6 rows in
// one pass (what a score or training job does with a model's features).
func BenchmarkColumns(b *testing.B) {
	path := benchFile(b, 1e6)
	st, _ := os.Stat(path)
	spec := dataset.Spec{File: path, Label: "has_card", Features: []string{"income", "age"}, Attrs: []string{"city"},
		IDs: []dataset.IDColumn{{Column: "phone", Kind: ident.CNMobile}}}
	names := []string{"income", "age", "has_card", "city=tier1", "city=tier2"}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		v, _, err := dataset.Columns(context.Background(), spec, names)
		if err != nil || len(v[0]) != 1e6 {
			b.Fatalf("columns: %v", err)
		}
	}
}
