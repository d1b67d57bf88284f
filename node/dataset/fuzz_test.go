package dataset_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tandem-dev/tandem/node/dataset"
	"github.com/tandem-dev/tandem/psi/ident"
)

// FuzzScan feeds arbitrary bytes to the CSV reader: Scan and EachIDAny must
// never panic, and a successful profile must add up.
func FuzzScan(f *testing.F) {
	f.Add([]byte(messy))
	f.Add([]byte("a,b,c,d\n13800138000," + idA + ",1.5,1\n,,,\n"))
	f.Add([]byte("\ufeffa,b,c,d\r\n\"x\"\"y\",\"1\n2\",NaN,yes\r\n"))
	f.Add([]byte("a,b,c,d\n1,2,3\n"))
	f.Add([]byte("a,b,c,d\n\"unterminated\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "f.csv")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		spec := dataset.Spec{File: path, Label: "d", Features: []string{"c"},
			IDs: []dataset.IDColumn{{Column: "a", Kind: ident.CNMobile}, {Column: "b", Kind: ident.CNID}}}
		p, err := dataset.Scan(context.Background(), spec, nil)
		if err == nil {
			for _, id := range p.IDs {
				n := id.Valid + id.Nulls
				for _, c := range id.Invalid {
					n += c
				}
				if n != p.Rows || id.Distinct+id.Duplicates != id.Valid {
					t.Errorf("%s: counts do not add up: %+v rows=%d", id.Column, id, p.Rows)
				}
			}
			if fp := p.Features[0]; fp.Count+fp.Nulls != p.Rows {
				t.Errorf("feature counts do not add up: %+v rows=%d", fp, p.Rows)
			}
		}
		var n int64
		err2 := dataset.EachIDAny(context.Background(), spec, nil, func(int64, ident.Kind, []byte) error { n++; return nil })
		if err == nil && err2 != nil {
			t.Errorf("Scan succeeded but EachIDAny failed: %v", err2)
		}
		if err == nil && n > p.IDs[0].Distinct+p.IDs[1].Distinct {
			t.Errorf("EachIDAny yielded %d ids, more than the distinct count", n)
		}
	})
}
