package node

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tandem-dev/tandem/node/dataset"
	"github.com/tandem-dev/tandem/psi/ident"
)

// TestColCache: the first read parses the file and caches every column;
// later reads come from the cache (the file's later edits are not seen:
// the cache is the registered version), value and label modes are kept
// apart, and an entry that is corrupt or of the wrong length is read from
// the file again and rewritten.
func TestColCache(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "d.csv")
	write := func(body string) {
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("phone,income,city,flag\n1,100,a,yes\n2,,b,no\n3,300,a,\n")
	spec := dataset.Spec{File: file, IDs: []dataset.IDColumn{{Column: "phone", Kind: ident.CNMobile}}}
	c := &colCache{dir: filepath.Join(dir, "cache", "sha256:x"), rows: 3, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	names := []string{"income", "city=a", "flag"}
	want, wantP, err := dataset.Columns(t.Context(), spec, names)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, label bool, wv [][]float64, wp [][]bool) {
		t.Helper()
		v, p, err := c.columns(t.Context(), spec, names, label)
		if err != nil || !reflect.DeepEqual(v, wv) || !reflect.DeepEqual(p, wp) {
			t.Fatalf("%s: %v %v %v, want %v %v", what, v, p, err, wv, wp)
		}
	}
	check("first read", false, want, wantP)
	if ents, _ := os.ReadDir(c.dir); len(ents) != 3 {
		t.Fatalf("%d cache entries, want 3", len(ents))
	}
	write("phone,income,city,flag\n1,999,b,no\n2,5,b,no\n3,7,b,no\n")
	check("cached", false, want, wantP)
	// Label mode is its own entry: read from the (new) file.
	lv, lp, err := dataset.LabelColumn(t.Context(), spec, "flag")
	if err != nil {
		t.Fatal(err)
	}
	if v, p, err := c.columns(t.Context(), spec, []string{"flag"}, true); err != nil || !reflect.DeepEqual(v[0], lv) || !reflect.DeepEqual(p[0], lp) {
		t.Fatalf("label mode: %v %v %v", v, p, err)
	}
	// A flipped byte, then a truncated entry: read again from the file.
	newV, newP, _ := dataset.Columns(t.Context(), spec, names)
	path := c.path("income", false)
	b, _ := os.ReadFile(path)
	b[len(colCacheMagic)+9] ^= 1
	os.WriteFile(path, b, 0o600)
	os.WriteFile(c.path("city=a", false), b[:20], 0o600)
	check("after corruption", false, [][]float64{newV[0], newV[1], want[2]}, [][]bool{newP[0], newP[1], wantP[2]})
	if _, _, ok := c.read("income", false); !ok {
		t.Error("the corrupt entry was not rewritten")
	}
	// An unknown column fails the read and caches nothing for it.
	if _, _, err := c.columns(t.Context(), spec, []string{"income", "nope"}, false); err == nil {
		t.Error("unknown column read")
	}
	var nilCache *colCache
	if v, _, err := nilCache.columns(t.Context(), spec, names, false); err != nil || !reflect.DeepEqual(v, newV) {
		t.Errorf("no cache: %v %v", v, err)
	}
}
