package dataset_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-dev/tandem/node/dataset"
	"github.com/tandem-dev/tandem/psi/ident"
)

func Example() {
	dir, _ := os.MkdirTemp("", "dataset-example")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "bank.csv")
	os.WriteFile(file, []byte(
		"customer_id,phone,id_no,income\n"+
			"c1,+86 138-0013-8000,11010519491231002x,12000\n"+
			"c2,0086 13800138000,,n/a\n"+
			"c3,1380013800,11010519491231002,9000\n"), 0o600)

	ids, err := dataset.ParseIDFlag("phone:cn_mobile,id_no:cn_id")
	if err != nil {
		panic(err)
	}
	spec := dataset.Spec{Name: "bank", File: file, IDs: ids, Features: []string{"income"}}
	ctx := context.Background()

	p, err := dataset.Scan(ctx, spec, nil)
	if err != nil {
		fmt.Println(err) // names the file, line and column, never a value
		return
	}
	for _, id := range p.IDs {
		fmt.Printf("%s: valid=%d invalid=%v lines=%v duplicates=%d\n",
			id.Column, id.Valid, id.Invalid, id.FirstInvalidLines, id.Duplicates)
	}
	fmt.Printf("income: mean=%.0f nulls=%d\n", p.Features[0].Mean, p.Features[0].Nulls)

	// Stream canonical ids for PSI: phone OR id number, first occurrence only.
	dataset.EachIDAny(ctx, spec, nil, func(row int64, kind ident.Kind, canon []byte) error {
		fmt.Printf("row %d %s %s\n", row, kind, canon)
		return nil
	})
	// Output:
	// phone: valid=2 invalid=map[bad_length:1] lines=[4] duplicates=1
	// id_no: valid=1 invalid=map[bad_length:1] lines=[4] duplicates=0
	// income: mean=10500 nulls=1
	// row 0 cn_mobile +8613800138000
	// row 0 cn_id 11010519491231002X
}
