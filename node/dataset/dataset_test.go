package dataset_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/node/dataset"
	"github.com/tandem-dev/tandem/psi/ident"
)

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var phoneID = []dataset.IDColumn{{Column: "phone", Kind: ident.CNMobile}, {Column: "id_no", Kind: ident.CNID}}

// Valid identifiers used below (checksums verified by ident).
const (
	phoneA = "13800138000"
	phoneB = "13912345678"
	idA    = "11010519491231002X"
	idB    = "440305199003071236"
)

func TestParseIDFlag(t *testing.T) {
	got, err := dataset.ParseIDFlag("phone:cn_mobile, id_no:cn_id")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, phoneID) {
		t.Errorf("got %v, want %v", got, phoneID)
	}
	for _, bad := range []string{"", "phone", "phone:", ":cn_id", "phone:telex", "a:raw,a:email"} {
		if _, err := dataset.ParseIDFlag(bad); !errors.Is(err, dataset.ErrSpec) {
			t.Errorf("ParseIDFlag(%q): got %v, want ErrSpec", bad, err)
		}
	}
}

func TestScanErrors(t *testing.T) {
	good := "phone,id_no,income\n" + phoneA + "," + idA + ",100\n"
	tests := []struct {
		name     string
		file     string // file name; "" means a missing file
		content  string
		spec     func(s *dataset.Spec)
		want     error
		line     int64
		contains []string
	}{
		{name: "missing file", want: fs.ErrNotExist, contains: []string{"nope.csv"}},
		{name: "bad extension", file: "t.xlsx", content: good, want: dataset.ErrFormat},
		{name: "no ids", file: "t.csv", content: good, spec: func(s *dataset.Spec) { s.IDs = nil }, want: dataset.ErrSpec},
		{name: "column twice", file: "t.csv", content: good, spec: func(s *dataset.Spec) { s.Attrs = []string{"income"} }, want: dataset.ErrSpec},
		{name: "missing column", file: "t.csv", content: good, spec: func(s *dataset.Spec) { s.Label = "has_card" },
			want: dataset.ErrSchema, contains: []string{"has_card", "t.csv"}},
		{name: "empty file", file: "t.csv", content: "", want: dataset.ErrSchema},
		{name: "duplicate header", file: "t.csv", content: "phone,id_no,phone\n", want: dataset.ErrSchema, line: 1},
		{name: "ragged row", file: "t.csv", content: good + phoneB + "," + idB + "\n" + phoneB + ",,1\n",
			want: dataset.ErrMalformed, line: 3, contains: []string{"t.csv", "line 3", "wrong number of fields"}},
		{name: "ragged row crlf", file: "t.csv", content: strings.ReplaceAll(good+good[19:]+phoneB+",1,2,3\n", "\n", "\r\n"),
			want: dataset.ErrMalformed, line: 4},
		{name: "bare quote", file: "t.csv", content: good + "13\"8,x,1\n", want: dataset.ErrMalformed, line: 3},
		{name: "unterminated quote", file: "t.csv", content: good + "\"" + phoneA + ",x,1\n", want: dataset.ErrMalformed, line: 3},
		{name: "corrupt parquet", file: "t.parquet", content: "PAR1 this is not parquet PAR1", want: dataset.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "nope.csv")
			if tt.file != "" {
				path = writeFile(t, tt.file, tt.content)
			}
			spec := dataset.Spec{Name: "t", File: path, IDs: phoneID, Features: []string{"income"}}
			if tt.spec != nil {
				tt.spec(&spec)
			}
			_, err := dataset.Scan(context.Background(), spec, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if tt.line != 0 {
				var le *dataset.LineError
				if !errors.As(err, &le) || le.Line != tt.line {
					t.Errorf("got %v, want a LineError at line %d", err, tt.line)
				}
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			// The same errors come from the streaming functions.
			if tt.want != dataset.ErrSpec {
				err := dataset.EachIDAny(context.Background(), spec, nil, func(int64, ident.Kind, []byte) error { return nil })
				if tt.name != "missing column" && !errors.Is(err, tt.want) {
					t.Errorf("EachIDAny: got %v, want %v", err, tt.want)
				}
			}
		})
	}
}

// messy is a CSV with a BOM, CRLF line ends, quoted fields (one spanning two
// lines), nulls, invalid and duplicate identifiers, and a bad number.
var messy = "\ufeffcustomer_id,phone,id_no,has_card,income,city,consent\r\n" +
	"c1,+86 138-0013-8000," + idA + ",1,1000,\"Beijing, CN\",Y\r\n" + // line 2
	"c2,13800138000,,0,2000,Shanghai,n\r\n" + // line 3: phone duplicate of c1
	"c3,12345,4403051990030712X4,0,NA,Shanghai,yes\r\n" + // line 4: invalid phone and id
	"c4,\"(+86)139 1234 5678\",\"" + strings.ToLower(idA) + "\",1,abc,\"multi\r\nline\",\r\n" + // lines 5-6: id duplicate, bad numeric
	"c5,,440305900307123,1,3000,Beijing, maybe\r\n" + // line 7: 15-digit id (valid), bad consent
	"c6,NULL,1101051949123100,0,,,0\r\n" // line 8: id bad length

func TestScanProfile(t *testing.T) {
	path := writeFile(t, "bank.csv", messy)
	spec := dataset.Spec{Name: "bank", File: path, IDs: phoneID, Label: "has_card",
		Features: []string{"income"}, Attrs: []string{"city"}, Consent: "consent"}
	var calls []int64
	p, err := dataset.Scan(context.Background(), spec, func(n int64) { calls = append(calls, n) })
	if err != nil {
		t.Fatal(err)
	}
	if p.Rows != 6 || p.Format != "csv" || !strings.HasPrefix(p.Digest, "sha256:") || len(p.Digest) != 7+64 {
		t.Errorf("got rows=%d format=%s digest=%s", p.Rows, p.Format, p.Digest)
	}
	if want := []string{"customer_id", "phone", "id_no", "has_card", "income", "city", "consent"}; !reflect.DeepEqual(p.Columns, want) {
		t.Errorf("columns: got %v, want %v", p.Columns, want)
	}
	if !reflect.DeepEqual(calls, []int64{6}) {
		t.Errorf("progress calls: got %v", calls)
	}
	wantIDs := []dataset.IDProfile{
		{Column: "phone", Kind: ident.CNMobile, Valid: 3, Nulls: 2, Invalid: map[string]int64{"bad_length": 1},
			FirstInvalidLines: []int64{4}, Duplicates: 1, Distinct: 2},
		{Column: "id_no", Kind: ident.CNID, Valid: 3, Nulls: 1, Invalid: map[string]int64{"bad_char": 1, "bad_length": 1},
			FirstInvalidLines: []int64{4, 8}, Duplicates: 1, Distinct: 2},
	}
	if !reflect.DeepEqual(p.IDs, wantIDs) {
		t.Errorf("ids:\ngot  %+v\nwant %+v", p.IDs, wantIDs)
	}
	wantNulls := map[string]int64{"phone": 2, "id_no": 1, "has_card": 0, "income": 3, "city": 1, "consent": 2}
	if !reflect.DeepEqual(p.Nulls, wantNulls) {
		t.Errorf("nulls: got %v, want %v", p.Nulls, wantNulls)
	}
	wantLabel := &dataset.LabelProfile{Column: "has_card", Positives: 3, Negatives: 3}
	if !reflect.DeepEqual(p.Label, wantLabel) {
		t.Errorf("label: got %+v, want %+v", p.Label, wantLabel)
	}
	f := p.Features[0]
	if f.Count != 3 || f.Nulls != 3 || f.Bad != 1 || !reflect.DeepEqual(f.FirstBadLines, []int64{5}) ||
		f.Min != 1000 || f.Max != 3000 || f.Mean != 2000 {
		t.Errorf("income: got %+v", f)
	}
	wantConsent := &dataset.ConsentProfile{Column: "consent", Yes: 2, No: 2, Nulls: 2, Bad: 1, FirstBadLines: []int64{7}}
	if !reflect.DeepEqual(p.Consent, wantConsent) {
		t.Errorf("consent: got %+v, want %+v", p.Consent, wantConsent)
	}
	a := p.Attrs[0]
	if a.Count != 5 || a.Distinct != 4 || a.Top[0] != (dataset.CategoryCount{Value: "Shanghai", Count: 2}) {
		t.Errorf("city: got %+v", a)
	}
}

func TestEachID(t *testing.T) {
	path := writeFile(t, "bank.csv", messy)
	spec := dataset.Spec{File: path, IDs: phoneID}
	type hit struct {
		Row   int64
		Kind  ident.Kind
		Canon string
	}
	var got []hit
	err := dataset.EachID(context.Background(), spec, "phone", func(row int64, c []byte) error {
		got = append(got, hit{row, ident.CNMobile, string(c)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []hit{{0, ident.CNMobile, "+8613800138000"}, {3, ident.CNMobile, "+8613912345678"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("EachID: got %v, want %v", got, want)
	}

	got = nil
	err = dataset.EachIDAny(context.Background(), spec, nil, func(row int64, k ident.Kind, c []byte) error {
		got = append(got, hit{row, k, string(c)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want = []hit{
		{0, ident.CNMobile, "+8613800138000"}, {0, ident.CNID, idA},
		{3, ident.CNMobile, "+8613912345678"},
		{4, ident.CNID, idB},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("EachIDAny: got %v, want %v", got, want)
	}

	stop := errors.New("stop")
	if err := dataset.EachID(context.Background(), spec, "phone", func(int64, []byte) error { return stop }); err != stop {
		t.Errorf("callback error: got %v, want it returned as is", err)
	}
	if err := dataset.EachID(context.Background(), spec, "email", nil); !errors.Is(err, dataset.ErrSpec) {
		t.Errorf("unknown id column: got %v, want ErrSpec", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := dataset.EachID(ctx, spec, "phone", func(int64, []byte) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
}

func TestColumnAndRows(t *testing.T) {
	path := writeFile(t, "bank.csv", messy)
	spec := dataset.Spec{File: path, IDs: phoneID, Label: "has_card", Features: []string{"income"}, Consent: "consent"}
	ctx := context.Background()
	for _, tt := range []struct {
		col     string
		values  []float64
		present []bool
	}{
		{"income", []float64{1000, 2000, 0, 0, 3000, 0}, []bool{true, true, false, false, true, false}},
		{"has_card", []float64{1, 0, 0, 1, 1, 0}, []bool{true, true, true, true, true, true}},
		{"consent", []float64{1, 0, 1, 0, 0, 0}, []bool{true, true, true, false, false, true}},
		// Indicators of a categorical column: null cells are absent.
		{"city=Shanghai", []float64{0, 1, 1, 0, 0, 0}, []bool{true, true, true, true, true, false}},
		{"city=Beijing", []float64{0, 0, 0, 0, 1, 0}, []bool{true, true, true, true, true, false}},
		{"city=Shenzhen", []float64{0, 0, 0, 0, 0, 0}, []bool{true, true, true, true, true, false}},
	} {
		v, p, err := dataset.Column(ctx, spec, tt.col)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, tt.values) || !reflect.DeepEqual(p, tt.present) {
			t.Errorf("Column(%s): got %v %v, want %v %v", tt.col, v, p, tt.values, tt.present)
		}
	}
	// Columns reads them all in one pass, each as Column does; a name
	// twice, or twice the same file column, is fine; an unknown column
	// fails the whole read.
	names := []string{"city=Beijing", "income", "has_card", "consent", "city=Shanghai", "income"}
	vs, ps, err := dataset.Columns(ctx, spec, names)
	if err != nil || len(vs) != len(names) {
		t.Fatalf("Columns: %d columns, %v", len(vs), err)
	}
	for k, name := range names {
		v, p, _ := dataset.Column(ctx, spec, name)
		if !reflect.DeepEqual(vs[k], v) || !reflect.DeepEqual(ps[k], p) {
			t.Errorf("Columns[%d] (%s): %v %v, Column: %v %v", k, name, vs[k], ps[k], v, p)
		}
	}
	if _, _, err := dataset.Columns(ctx, spec, []string{"income", "missing"}); !errors.Is(err, dataset.ErrSchema) {
		t.Errorf("Columns with an unknown column: %v", err)
	}
	// "none" is a level of a categorical column, not a missing value.
	cats := dataset.Spec{File: writeFile(t, "cats.csv", "phone,debtors\n1,none\n2,None\n3,NA\n4,\n5,guarantor\n"), IDs: phoneID}
	v, p, err := dataset.Column(ctx, cats, "debtors=none")
	if want, wantP := []float64{1, 0, 0, 0, 0}, []bool{true, true, false, false, true}; err != nil || !reflect.DeepEqual(v, want) || !reflect.DeepEqual(p, wantP) {
		t.Errorf("Column(debtors=none): got %v %v %v, want %v %v", v, p, err, want, wantP)
	}
	if v, p, err := dataset.StringColumn(ctx, cats, "debtors"); err != nil || !reflect.DeepEqual(v, []string{"none", "None", "", "", "guarantor"}) ||
		!reflect.DeepEqual(p, []bool{true, true, false, false, true}) {
		t.Errorf("StringColumn(debtors): %q %v %v", v, p, err)
	}
	// A label need not be the declared one: LabelColumn reads yes/no.
	if v, p, err := dataset.LabelColumn(ctx, spec, "consent"); err != nil || !reflect.DeepEqual(v, []float64{1, 0, 1, 0, 0, 0}) || p[3] {
		t.Errorf("LabelColumn(consent): %v %v %v", v, p, err)
	}
	spec2 := spec
	spec2.Consent = ""
	if v, _, err := dataset.LabelColumn(ctx, spec2, "consent"); err != nil || !reflect.DeepEqual(v, []float64{1, 0, 1, 0, 0, 0}) {
		t.Errorf("LabelColumn(consent) of a spec without it: %v %v", v, err)
	}
	if _, p, _ := dataset.Column(ctx, spec2, "consent"); p[0] {
		t.Errorf("Column(consent) of a spec without it parses Y as a number")
	}
	cats.Attrs, cats.IDs = []string{"debtors"}, phoneID[:1]
	if prof, err := dataset.Scan(ctx, cats, nil); err != nil || prof.Attrs[0].Count != 3 || prof.Attrs[0].Nulls != 2 || prof.Attrs[0].Distinct != 3 {
		t.Errorf("profile of a categorical column with none levels: %+v %v", prof, err)
	}
	for _, col := range []string{"missing", "town=Beijing", "=Beijing"} {
		if _, _, err := dataset.Column(ctx, spec, col); !errors.Is(err, dataset.ErrSchema) {
			t.Errorf("Column(%s): got %v, want ErrSchema", col, err)
		}
	}

	var ids []string
	err = dataset.Rows(ctx, spec, []int64{1, 3, 5}, func(row int64, rec map[string]string) error {
		ids = append(ids, rec["customer_id"])
		return nil
	})
	if err != nil || !reflect.DeepEqual(ids, []string{"c2", "c4", "c6"}) {
		t.Errorf("Rows: got %v, %v", ids, err)
	}
	var cells [][]string
	err = dataset.RowCells(ctx, spec, []int64{0, 4}, []string{"customer_id", "income"}, func(row int64, c []string) error {
		cells = append(cells, slices.Clone(c))
		return nil
	})
	if err != nil || !reflect.DeepEqual(cells, [][]string{{"c1", "1000"}, {"c5", "3000"}}) {
		t.Errorf("RowCells: got %q, %v", cells, err)
	}
	if err := dataset.RowCells(ctx, spec, []int64{0}, []string{"town"}, func(int64, []string) error { return nil }); !errors.Is(err, dataset.ErrSchema) {
		t.Errorf("RowCells of an unknown column: %v", err)
	}
	for _, rows := range [][]int64{{2, 1}, {1, 1}, {-1}, {5, 6}} {
		if err := dataset.Rows(ctx, spec, rows, func(int64, map[string]string) error { return nil }); !errors.Is(err, dataset.ErrRowRange) {
			t.Errorf("Rows(%v): got %v, want ErrRowRange", rows, err)
		}
	}
}

// TestRead: one pass gives what Columns, LabelColumn and RowCells give
// separately; bad cell rows and unknown columns fail it.
func TestRead(t *testing.T) {
	path := writeFile(t, "bank.csv", messy)
	spec := dataset.Spec{File: path, IDs: phoneID, Label: "has_card", Features: []string{"income"}, Consent: "consent"}
	ctx := context.Background()
	names := []string{"income", "city=Beijing", "consent"}
	rows := []int64{0, 3, 5}
	cols := []string{"customer_id", "phone"}
	r, err := dataset.Read(ctx, spec, dataset.Pass{Columns: names, Label: "consent", CellColumns: cols, CellRows: rows})
	if err != nil {
		t.Fatal(err)
	}
	vs, ps, _ := dataset.Columns(ctx, spec, names)
	if !reflect.DeepEqual(r.Values, vs) || !reflect.DeepEqual(r.Present, ps) {
		t.Errorf("Read columns %v %v, Columns %v %v", r.Values, r.Present, vs, ps)
	}
	lv, lp, _ := dataset.LabelColumn(ctx, spec, "consent")
	if !reflect.DeepEqual(r.Label, lv) || !reflect.DeepEqual(r.LabelPresent, lp) {
		t.Errorf("Read label %v %v, LabelColumn %v %v", r.Label, r.LabelPresent, lv, lp)
	}
	var want, got [][]string
	dataset.RowCells(ctx, spec, rows, cols, func(_ int64, c []string) error {
		want = append(want, slices.Clone(c))
		return nil
	})
	var buf []string
	for i := range r.Cells.Rows {
		buf = r.Cells.Row(i, buf)
		got = append(got, slices.Clone(buf))
	}
	if !reflect.DeepEqual(r.Cells.Rows, rows) || !reflect.DeepEqual(got, want) || len(got) != 3 {
		t.Errorf("Read cells %v %q, RowCells %q", r.Cells.Rows, got, want)
	}
	// Streamed: Each sees every row's values, in order, as Columns has
	// them; the label is still returned.
	var rowsSeen []int64
	sv, sp := make([][]float64, len(names)), make([][]bool, len(names))
	r, err = dataset.Read(ctx, spec, dataset.Pass{Columns: names, Label: "consent", Each: func(row int64, v []float64, p []bool) error {
		rowsSeen = append(rowsSeen, row)
		for k := range names {
			sv[k], sp[k] = append(sv[k], v[k]), append(sp[k], p[k])
		}
		return nil
	}})
	if err != nil || len(r.Values) != 0 || !reflect.DeepEqual(r.Label, lv) || !reflect.DeepEqual(sv, vs) || !reflect.DeepEqual(sp, ps) ||
		!reflect.DeepEqual(rowsSeen, []int64{0, 1, 2, 3, 4, 5}) {
		t.Errorf("streamed Read: rows %v, values %v %v, result %+v, %v", rowsSeen, sv, sp, r, err)
	}
	stop := errors.New("stop")
	if _, err := dataset.Read(ctx, spec, dataset.Pass{Each: func(int64, []float64, []bool) error { return stop }}); err != stop {
		t.Errorf("Read whose Each fails: %v", err)
	}
	// Cells alone; nothing at all.
	if r, err := dataset.Read(ctx, spec, dataset.Pass{CellColumns: cols[:1], CellRows: []int64{4}}); err != nil || r.Cells.Row(0, nil)[0] != "c5" || len(r.Values) != 0 {
		t.Errorf("Read of one cell: %+v %v", r, err)
	}
	if r, err := dataset.Read(ctx, spec, dataset.Pass{}); err != nil || len(r.Cells.Rows) != 0 || r.Label != nil {
		t.Errorf("empty Read: %+v %v", r, err)
	}
	for _, rows := range [][]int64{{2, 1}, {1, 1}, {-1}, {5, 6}} {
		if _, err := dataset.Read(ctx, spec, dataset.Pass{Columns: names, CellColumns: cols, CellRows: rows}); !errors.Is(err, dataset.ErrRowRange) {
			t.Errorf("Read of cell rows %v: got %v, want ErrRowRange", rows, err)
		}
	}
	for _, p := range []dataset.Pass{{Columns: []string{"town"}}, {Label: "town"}, {CellColumns: []string{"town"}, CellRows: rows}} {
		if _, err := dataset.Read(ctx, spec, p); !errors.Is(err, dataset.ErrSchema) {
			t.Errorf("Read(%+v): got %v, want ErrSchema", p, err)
		}
	}
}

// TestErrorsHaveNoIdentifiers provokes every kind of error and warning with
// identifiers in the offending rows and checks none reaches an error text
// or the profile.
func TestErrorsHaveNoIdentifiers(t *testing.T) {
	secrets := []string{phoneA, phoneB, "0012345", idA[:10], "19491231"}
	hdr := "phone,id_no,income\n"
	files := map[string]string{
		"ragged.csv":   hdr + phoneA + "," + idA + ",1," + phoneB + "\n",
		"quote.csv":    hdr + phoneA + ",\"" + idA + "\"x,1\n",
		"bare.csv":     hdr + "1380\"0138000," + idA + ",1\n",
		"invalid.csv":  hdr + "0012345," + idA[:17] + "1,1\n",
		"badnum.csv":   hdr + phoneA + "," + idA + ",tel:" + phoneB + "\n",
		"header.csv":   phoneA + "," + idA + ",income\n",
		"badspec.csv":  hdr,
		"nothing.json": hdr,
	}
	for name, content := range files {
		path := writeFile(t, name, content)
		spec := dataset.Spec{File: path, IDs: phoneID, Features: []string{"income"}}
		if name == "badspec.csv" {
			spec.IDs = []dataset.IDColumn{{Column: "phone", Kind: 42}}
		}
		var texts []string
		p, err := dataset.Scan(context.Background(), spec, nil)
		if err != nil {
			texts = append(texts, err.Error())
		} else {
			b, _ := json.Marshal(p)
			texts = append(texts, string(b))
		}
		for _, col := range []string{"phone", "id_no"} {
			if err := dataset.EachID(context.Background(), spec, col, func(int64, []byte) error { return nil }); err != nil {
				texts = append(texts, err.Error())
			}
		}
		if _, _, err := dataset.Column(context.Background(), spec, "income"); err != nil {
			texts = append(texts, err.Error())
		}
		for _, s := range texts {
			for _, secret := range secrets {
				if strings.Contains(s, secret) {
					t.Errorf("%s: text %q contains an identifier", name, s)
				}
			}
		}
	}
}

// TestDelimiters: the same table written with ; tab or | between fields
// (the separator read from the header line, a quoted field holding the
// others) scans to the same profile as the comma file, with the separator
// shown, and reads the same columns; a .tsv file is delimited text too.
func TestDelimiters(t *testing.T) {
	spec := func(path string) dataset.Spec {
		return dataset.Spec{Name: "bank", File: path, IDs: phoneID, Label: "has_card",
			Features: []string{"income"}, Attrs: []string{"city"}, Consent: "consent"}
	}
	recs, err := csv.NewReader(strings.NewReader(messy)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	recs[2][5] = "Shang;hai, PRC|\t" // every separator inside one quoted field
	write := func(name string, sep rune) string {
		var b strings.Builder
		w := csv.NewWriter(&b)
		w.Comma = sep
		w.WriteAll(recs)
		return writeFile(t, name, b.String())
	}
	base, err := dataset.Scan(t.Context(), spec(write("bank.csv", ',')), nil)
	if err != nil || base.Delimiter != "" {
		t.Fatalf("comma file: %+v %v", base, err)
	}
	baseIncome, _, _ := dataset.Column(t.Context(), spec(write("bank.csv", ',')), "income")
	for _, tc := range []struct {
		name string
		sep  rune
	}{{"bank.csv", ';'}, {"bank.tsv", '\t'}, {"bank.csv", '|'}} {
		path := write(tc.name, tc.sep)
		p, err := dataset.Scan(t.Context(), spec(path), nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.sep, err)
		}
		if p.Delimiter != string(tc.sep) {
			t.Errorf("%q: delimiter %q", tc.sep, p.Delimiter)
		}
		p.File, p.Digest, p.Delimiter = base.File, base.Digest, ""
		if !reflect.DeepEqual(p, base) {
			t.Errorf("%q: profile\n%+v\nwant\n%+v", tc.sep, p, base)
		}
		if income, _, err := dataset.Column(t.Context(), spec(path), "income"); err != nil || !reflect.DeepEqual(income, baseIncome) {
			t.Errorf("%q: income %v %v, want %v", tc.sep, income, err, baseIncome)
		}
	}
	if _, err := dataset.Scan(t.Context(), spec(writeFile(t, "bank.txt", messy)), nil); !errors.Is(err, dataset.ErrFormat) {
		t.Errorf(".txt: %v, want ErrFormat", err)
	}
}
