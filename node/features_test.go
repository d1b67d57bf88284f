package node

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/fedlearn"
	"github.com/tandem-dev/tandem/node/dataset"
	"github.com/tandem-dev/tandem/psi"
	"github.com/tandem-dev/tandem/psi/ident"
)

// featureInputs is a dataset of rows mapped one to one onto positions
// (position i = row i), as an alignment in both mode would.
func featureInputs(t *testing.T, csv string) *alignedInputs {
	t.Helper()
	f := filepath.Join(t.TempDir(), "d.csv")
	if err := os.WriteFile(f, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	rows := strings.Count(csv, "\n") - 1
	al := &psi.Alignment{AlignmentHeader: psi.AlignmentHeader{Length: uint64(rows), Matched: uint64(rows)}}
	for i := range rows {
		al.Positions, al.Rows = append(al.Positions, uint64(i)), append(al.Rows, uint64(i))
	}
	return &alignedInputs{ds: &datasetRecord{Spec: datasetSpec{Name: "d"}}, al: al,
		dspec: dataset.Spec{Name: "d", File: f, IDs: []dataset.IDColumn{{Column: "phone", Kind: ident.CNMobile}}}}
}

// TestAlignedFeatures: numbers stay numbers (a few bad cells are missing
// values), a mostly-text column becomes indicators of its levels but the
// most frequent, explicit indicators are read as given, and the levels are
// the whole dataset's, not those of the rows in use (the names reach the
// peer; the bank's rows in use are its matched customers).
func TestAlignedFeatures(t *testing.T) {
	in := featureInputs(t, "phone,income,tier,home\n"+
		"1,100,a,own\n2,200,b,rent\n3,abc,b,own\n4,400,c,NA\n5,500,b,own\n6,600,a,free\n")
	names, feats, incomplete, err := alignedFeatures(t.Context(), in, []string{"income", "tier", "home=own"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Rows 3 (income abc) and 4 (home NA) miss a feature: missing: drop
	// leaves them out.
	if want := []bool{false, false, true, true, false, false}; !slices.Equal(incomplete, want) {
		t.Errorf("incomplete %v, want %v", incomplete, want)
	}
	if want := []string{"income", "tier=a", "tier=c", "home=own"}; !slices.Equal(names, want) {
		t.Fatalf("names %v, want %v (tier's reference: b, the most frequent)", names, want)
	}
	mean := (100 + 200 + 400 + 500 + 600) / 5.0
	if want := []float64{100, 200, mean, 400, 500, 600}; !slices.Equal(feats[0], want) {
		t.Errorf("income %v, want %v", feats[0], want)
	}
	if want := []float64{1, 0, 0, 0, 0, 1}; !slices.Equal(feats[1], want) {
		t.Errorf("tier=a %v, want %v", feats[1], want)
	}
	if want := []float64{1, 0, 1, 0.6, 1, 0}; !slices.Equal(feats[3], want) {
		t.Errorf("home=own %v, want %v (NA: the mean)", feats[3], want)
	}
	// Rows 2, 3, 5 in use all hold b: the names are still tier=a and
	// tier=c (constant over those rows, kept with weight 0), so they say
	// nothing about which rows are in use.
	use := []bool{false, true, true, false, true, false}
	names, _, _, err = alignedFeatures(t.Context(), in, []string{"tier"}, use)
	if err != nil || !slices.Equal(names, []string{"tier=a", "tier=c"}) {
		t.Errorf("tier over rows 2, 3, 5: %v %v", names, err)
	}
	single := featureInputs(t, "phone,kind\n1,x\n2,x\n3,NA\n")
	for _, tc := range []struct {
		in   *alignedInputs
		cols []string
		want string
	}{
		{single, []string{"kind"}, "single level"},
		{in, []string{"home=shed"}, `no row used has level "shed"`}, // named by hand: an error
	} {
		if _, _, _, err := alignedFeatures(t.Context(), tc.in, tc.cols, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.cols, err, tc.want)
		}
	}
	// Numbers in a spreadsheet's display format are refused with the
	// column named, not read as categories.
	for _, cells := range [][]string{{"1,5", "2,25", "10,0", "3"}, {"12%", "7.5%", "3%", "1%"}, {"$1,200", "$35", "$2,000.50", "$7"}, {"1 234,5", "2 000", "15,75", "8"}} {
		var b strings.Builder
		b.WriteString("phone,amount\n")
		for i, c := range cells {
			fmt.Fprintf(&b, "%d,%q\n", i+1, c)
		}
		_, _, _, err := alignedFeatures(t.Context(), featureInputs(t, b.String()), []string{"amount"}, nil)
		if err == nil || !strings.Contains(err.Error(), "feature amount:") || !strings.Contains(err.Error(), "write plain numbers") {
			t.Errorf("%q: %v", cells, err)
		}
		for _, c := range cells {
			if err != nil && len(c) > 2 && strings.Contains(err.Error(), c) {
				t.Errorf("the error quotes a cell: %v", err)
			}
		}
	}
	// Categories that merely contain digits are still categories.
	if names, _, _, err := alignedFeatures(t.Context(), featureInputs(t, "phone,plan\n1,A1\n2,B2\n3,A1\n4,C-3\n"), []string{"plan"}, nil); err != nil || len(names) != 2 {
		t.Errorf("plan codes: %v %v", names, err)
	}
	var b strings.Builder
	b.WriteString("phone,zip\n")
	for i := range 70 {
		b.WriteString("1,z" + string(rune('A'+i%26)) + string(rune('a'+i/26)) + "\n")
	}
	if _, _, _, err := alignedFeatures(t.Context(), featureInputs(t, b.String()), []string{"zip"}, nil); err == nil || !strings.Contains(err.Error(), "more than 65 levels") {
		t.Errorf("70 levels: %v", err)
	}
}

// TestBandsSkipUnscored: a row without a score (NaN: a missing: drop
// model and a missing feature) is in no band, and the equal-count bands
// are those of the scored rows alone.
func TestBandsSkipUnscored(t *testing.T) {
	nan := math.NaN()
	scores := []float64{0.9, nan, 0.1, 0.5, nan, 0.7}
	bands, table := assignBands(scores, 2)
	if want := []int{1, 0, 2, 2, 0, 1}; !slices.Equal(bands, want) {
		t.Errorf("bands %v, want %v", bands, want)
	}
	if len(table) != 2 || table[0].Rows != 2 || table[1].Rows != 2 || table[0].MinScore != 0.7 || table[1].MaxScore != 0.5 {
		t.Errorf("table %+v", table)
	}
	if b, tb := assignBands([]float64{nan, nan}, 3); len(tb) != 0 || !slices.Equal(b, []int{0, 0}) {
		t.Errorf("no scored row: %v %+v", b, tb)
	}
	// Ties go by position: the earlier row ranks higher.
	if b, _ := assignBands([]float64{0.5, 0.2, 0.5, 0.5, 0.5, 0.9}, 3); !slices.Equal(b, []int{1, 3, 2, 2, 3, 1}) {
		t.Errorf("ties: bands %v", b)
	}
}

// TestBandsMatchSortedOrder: at sizes past radix.Pairs' short path, with
// many ties and unscored rows, the bands are those of the rows sorted by
// descending score, ties by position.
func TestBandsMatchSortedOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	scores := make([]float64, 5000)
	for i := range scores {
		switch r.IntN(10) {
		case 0:
			scores[i] = math.NaN()
		case 1, 2, 3:
			scores[i] = float64(r.IntN(4)) / 4 // ties
		default:
			scores[i] = r.Float64()
		}
	}
	var order []int
	for i, s := range scores {
		if !math.IsNaN(s) {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	want := make([]int, len(scores))
	for k, i := range order {
		want[i] = k*7/len(order) + 1
	}
	if got, _ := assignBands(scores, 7); !slices.Equal(got, want) {
		t.Fatal("bands differ from the sorted order's")
	}
}

// TestLabelAUC: the AUC over some rows, looked up among the scored rows by
// a merge (rows sorted) or a search (not), is the AUC of those rows that
// have a score and a 0/1 label.
func TestLabelAUC(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const n = 3000
	label := labelColumn{values: make([]float64, n), present: make([]bool, n)}
	for i := range n {
		label.values[i], label.present[i] = float64(r.IntN(2)), r.IntN(20) != 0
		if r.IntN(50) == 0 {
			label.values[i] = 2 // not a 0/1 label
		}
	}
	var keys []int64 // the scored rows
	var scores []float64
	for i := range int64(n) {
		if r.IntN(3) != 0 {
			s := r.Float64()
			if r.IntN(30) == 0 {
				s = math.NaN()
			}
			keys, scores = append(keys, i), append(scores, s)
		}
	}
	rows := make([]int64, 0, n)
	for range 800 {
		rows = append(rows, int64(r.IntN(n+10))) // some beyond the label column
	}
	var s, y []float64
	for _, row := range rows {
		k, ok := slices.BinarySearch(keys, row)
		if ok && !math.IsNaN(scores[k]) && row < n && label.present[row] && label.values[row] <= 1 {
			s, y = append(s, scores[k]), append(y, label.values[row])
		}
	}
	want := fedlearn.AUC(s, y)
	for name, rs := range map[string][]int64{"unsorted": rows, "sorted": slices.Sorted(slices.Values(rows))} {
		got, nr, ok := labelAUC(label, rs, keys, scores)
		if !ok || nr != len(s) || math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: AUC %v over %d rows (ok %v), want %v over %d", name, got, nr, ok, want, len(s))
		}
	}
}

func TestSortByRow(t *testing.T) {
	rows := []uint64{40, 7, 1 << 40, 3, 99}
	order, sorted := sortByRow(rows)
	if !slices.Equal(order, []int{3, 1, 0, 4, 2}) || !slices.Equal(sorted, []int64{3, 7, 40, 99, 1 << 40}) {
		t.Errorf("order %v, rows %v", order, sorted)
	}
}

// TestAppendCSVField: the score file's fields are written as csv.Writer
// writes them.
func TestAppendCSVField(t *testing.T) {
	fields := []string{"", "a", "a,b", `say "hi"`, "line\nbreak", "cr\rhere", " lead", "\tlead", "trail ", `\.`, `\`, "\u00a0nbsp", "\u3000x", "é,", `""`, "x\r\n"}
	r := rand.New(rand.NewPCG(9, 10))
	const alphabet = "ab ,\"\r\n\t\\."
	for range 2000 {
		b := make([]byte, r.IntN(6))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		fields = append(fields, string(b))
	}
	for _, f := range fields {
		var want strings.Builder
		w := csv.NewWriter(&want)
		w.Write([]string{"1", f})
		w.Flush()
		if got := string(appendCSVLine(nil, []string{"1", f})); got != want.String() {
			t.Fatalf("field %q: %q, want %q", f, got, want.String())
		}
	}
}

// TestExpandedLevelsAsDatasetReads: a categorical column's indicators,
// made from its cells in memory, are what the dataset reads for
// column=level (spaces around a level, null cells, "None" as a level).
func TestExpandedLevelsAsDatasetReads(t *testing.T) {
	in := featureInputs(t, "phone,plan\n1, gold\n2,basic\n3,NA\n4,None\n5,basic \n6,\n7,gold\n8,basic\n9, None\n")
	names, feats, _, err := alignedFeatures(t.Context(), in, []string{"plan"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"plan=None", "plan=gold"}; !slices.Equal(names, want) {
		t.Fatalf("names %v, want %v (reference: basic)", names, want)
	}
	vs, ps, err := dataset.Columns(t.Context(), in.dspec, names)
	if err != nil {
		t.Fatal(err)
	}
	for k, name := range names {
		v, p, _ := align(in, name, vs[k], ps[k], nil)
		imputeMean(v, p, nil)
		if !slices.Equal(feats[k], v) {
			t.Errorf("%s: %v, the dataset reads %v", name, feats[k], v)
		}
	}
}
