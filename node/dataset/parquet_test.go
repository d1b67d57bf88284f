package dataset_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/tandem-dev/tandem/node/dataset"
	"github.com/tandem-dev/tandem/psi/ident"
)

type pqRow struct {
	CustomerID string   `parquet:"customer_id"`
	Phone      *string  `parquet:"phone,optional"`
	IDNo       string   `parquet:"id_no"`
	HasCard    bool     `parquet:"has_card"`
	Income     *float64 `parquet:"income,optional"`
	Orders     int32    `parquet:"orders"`
	Tenure     int64    `parquet:"tenure"`
	Score      float32  `parquet:"score"`
	City       string   `parquet:"city"`
}

// TestParquetRoundTrip writes the same table as Parquet and as CSV and checks
// that every function of the package sees the same data.
func TestParquetRoundTrip(t *testing.T) {
	phones := []string{"+86 138-0013-8000", "13800138000", "12345", "", "(+86)139 1234 5678"}
	idnos := []string{idA, "", "440305900307123", strings.ToLower(idA), "bad"}
	var rows []pqRow
	var csv strings.Builder
	csv.WriteString("customer_id,phone,id_no,has_card,income,orders,tenure,score,city\n")
	for i := range 1000 {
		r := pqRow{
			CustomerID: fmt.Sprintf("c%d", i),
			IDNo:       idnos[i%len(idnos)],
			HasCard:    i%3 == 0,
			Orders:     int32(i % 17),
			Tenure:     int64(i) * 1000003,
			Score:      float32(i) / 8,
			City:       []string{"Beijing", "Shanghai", "Shenzhen"}[i%3],
		}
		if p := phones[i%len(phones)]; p != "" {
			r.Phone = &p
		}
		income := ""
		if i%7 != 0 {
			x := float64(i) * 1.5
			r.Income = &x
			income = strconv.FormatFloat(x, 'g', -1, 64)
		}
		rows = append(rows, r)
		fmt.Fprintf(&csv, "%s,%q,%s,%t,%s,%d,%d,%s,%s\n", r.CustomerID, phones[i%len(phones)], r.IDNo, r.HasCard,
			income, r.Orders, r.Tenure, strconv.FormatFloat(float64(r.Score), 'g', -1, 32), r.City)
	}
	pq := filepath.Join(t.TempDir(), "t.parquet")
	if err := parquet.WriteFile(pq, rows); err != nil {
		t.Fatal(err)
	}
	cs := writeFile(t, "t.csv", csv.String())

	specOf := func(file string) dataset.Spec {
		return dataset.Spec{Name: "t", File: file, IDs: phoneID, Label: "has_card",
			Features: []string{"income", "orders", "tenure", "score"}, Attrs: []string{"city"}}
	}
	ctx := context.Background()
	pp, err := dataset.Scan(ctx, specOf(pq), nil)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := dataset.Scan(ctx, specOf(cs), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pp.Format != "parquet" || pp.Rows != 1000 {
		t.Errorf("parquet profile: format %s rows %d", pp.Format, pp.Rows)
	}
	if !reflect.DeepEqual(pp.Columns, cp.Columns) {
		t.Errorf("columns: got %v, want %v", pp.Columns, cp.Columns)
	}
	// Line numbers differ by the CSV header; everything else must agree.
	for i := range cp.IDs {
		for j := range cp.IDs[i].FirstInvalidLines {
			cp.IDs[i].FirstInvalidLines[j]--
		}
	}
	cp.File, cp.Format, cp.Digest = pp.File, pp.Format, pp.Digest
	if !reflect.DeepEqual(pp, cp) {
		t.Errorf("profiles differ:\nparquet %+v\ncsv     %+v", pp, cp)
	}

	collect := func(file string) []string {
		var out []string
		err := dataset.EachIDAny(ctx, specOf(file), nil, func(row int64, k ident.Kind, c []byte) error {
			out = append(out, fmt.Sprint(row, k, string(c)))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if a, b := collect(pq), collect(cs); !reflect.DeepEqual(a, b) || len(a) == 0 {
		t.Errorf("EachIDAny differs: parquet %d ids, csv %d ids", len(a), len(b))
	}
	for _, col := range []string{"income", "orders", "tenure", "score", "has_card"} {
		pv, ppres, err1 := dataset.Column(ctx, specOf(pq), col)
		cv, cpres, err2 := dataset.Column(ctx, specOf(cs), col)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(pv, cv) || !reflect.DeepEqual(ppres, cpres) {
			t.Errorf("Column(%s) differs (%v, %v)", col, err1, err2)
		}
	}
	var pr, cr []map[string]string
	sel := []int64{0, 3, 500, 999}
	dataset.Rows(ctx, specOf(pq), sel, func(_ int64, m map[string]string) error { pr = append(pr, m); return nil })
	dataset.Rows(ctx, specOf(cs), sel, func(_ int64, m map[string]string) error { cr = append(cr, m); return nil })
	if !reflect.DeepEqual(pr, cr) || len(pr) != len(sel) {
		t.Errorf("Rows differ:\nparquet %v\ncsv     %v", pr, cr)
	}
}
