package testnet

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/tandem-dev/tandem/fedlearn/vlr/vlrtest"
	"github.com/tandem-dev/tandem/psi/ident"
)

// The demo's plaintext baseline. Only a local testnet can compute it: it
// generated both nodes' files on this machine, so it can join them in the
// clear, which no real deployment may do. It fits logistic regression
// (Newton's method, same λ, each owner's standardisation) on the joined
// labelled rows and reports the AUC of that model and of the split model's
// federated scores over the same rows.

// csvTable is a CSV file as columns by header name.
type csvTable struct {
	hdr  []string
	rows [][]string
}

func readTable(path string) (*csvTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) < 1 {
		return nil, fmt.Errorf("testnet: baseline: %s: %v", path, err)
	}
	return &csvTable{hdr: recs[0], rows: recs[1:]}, nil
}

func (t *csvTable) col(name string) (int, error) {
	if i := slices.Index(t.hdr, name); i >= 0 {
		return i, nil
	}
	return 0, fmt.Errorf("testnet: baseline: no column %s", name)
}

// num returns a numeric column (NaN where missing or not a number), or for
// an indicator "column=level" 1 where the cell is the level, 0 where it is
// another, NaN where it is empty (the node's reading, dataset.Column).
func (t *csvTable) num(name string) ([]float64, error) {
	col, _, _ := strings.Cut(name, "=")
	k, err := t.col(col)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(t.rows))
	for i, r := range t.rows {
		out[i] = vlrtest.CellValue(name, r[k])
	}
	return out, nil
}

// canonicalIDs returns, per row, the canonical phone and resident id ("" if
// invalid), the identifiers the testnet's PSI matches on.
func (t *csvTable) canonicalIDs() ([][2]string, error) {
	kp, err := t.col("phone")
	if err != nil {
		return nil, err
	}
	ki, err := t.col("id_no")
	if err != nil {
		return nil, err
	}
	phone, _ := ident.ParseKind("cn_mobile")
	idNo, _ := ident.ParseKind("cn_id")
	out := make([][2]string, len(t.rows))
	for i, r := range t.rows {
		out[i][0], _ = ident.Canonical(phone, r[kp])
		out[i][1], _ = ident.Canonical(idNo, r[ki])
	}
	return out, nil
}

// joinTables pairs bank and partner rows as the PSI does: phone first,
// else resident id, each bank row at most once.
func joinTables(bank, partner [][2]string) map[int]int {
	byID := map[string]int{}
	for i, ids := range bank {
		for _, c := range ids {
			if _, dup := byID[c]; c != "" && !dup {
				byID[c] = i
			}
		}
	}
	out := map[int]int{} // bank row → partner row
	for pr, ids := range partner {
		for _, c := range ids {
			if bi, ok := byID[c]; c != "" && ok {
				if _, used := out[bi]; !used {
					out[bi] = pr
					break
				}
			}
		}
	}
	return out
}

// standardised returns (v − mean)/sd over rows, missing values at 0.
func standardised(v []float64, rows []int) []float64 {
	var s, n float64
	for _, r := range rows {
		if !math.IsNaN(v[r]) {
			s, n = s+v[r], n+1
		}
	}
	m := s / n
	var ss float64
	for _, r := range rows {
		if !math.IsNaN(v[r]) {
			ss += (v[r] - m) * (v[r] - m)
		}
	}
	sd := math.Sqrt(ss / float64(len(rows)))
	out := make([]float64, len(v))
	for _, r := range rows {
		if !math.IsNaN(v[r]) && sd > 0 {
			out[r] = (v[r] - m) / sd
		}
	}
	return out
}

// BaselineAUC compares, over the joined rows with a label, the AUC of the
// federated scores (scores.csv of the score job: row → score) with that of
// plaintext logistic regression fitted on the same rows.
func BaselineAUC(bankFile, partnerFile, scoresFile, label string, bankFeats, partnerFeats []string, l2 float64) (split, plain float64, n int, err error) {
	bt, err := readTable(bankFile)
	if err != nil {
		return 0, 0, 0, err
	}
	pt, err := readTable(partnerFile)
	if err != nil {
		return 0, 0, 0, err
	}
	st, err := readTable(scoresFile)
	if err != nil {
		return 0, 0, 0, err
	}
	bids, err := bt.canonicalIDs()
	if err != nil {
		return 0, 0, 0, err
	}
	pids, err := pt.canonicalIDs()
	if err != nil {
		return 0, 0, 0, err
	}
	join := joinTables(bids, pids)
	y, err := bt.num(label)
	if err != nil {
		return 0, 0, 0, err
	}
	kr, err := st.col("row")
	if err != nil {
		return 0, 0, 0, err
	}
	ks, err := st.col("score")
	if err != nil {
		return 0, 0, 0, err
	}
	fed := map[int]float64{}
	for _, r := range st.rows {
		row, err1 := strconv.Atoi(r[kr])
		s, err2 := strconv.ParseFloat(r[ks], 64)
		if err1 != nil || err2 != nil {
			return 0, 0, 0, fmt.Errorf("testnet: baseline: %s: bad line %v", scoresFile, r)
		}
		fed[row] = s
	}
	var bankRows, partnerRows []int
	for br := range bt.rows {
		if pr, ok := join[br]; ok && (y[br] == 0 || y[br] == 1) {
			if _, scored := fed[br]; !scored {
				return 0, 0, 0, fmt.Errorf("testnet: baseline: shared customer at bank row %d has no score", br)
			}
			bankRows, partnerRows = append(bankRows, br), append(partnerRows, pr)
		}
	}
	if len(bankRows) == 0 {
		return 0, 0, 0, fmt.Errorf("testnet: baseline: no labelled shared customers")
	}
	x := make([][]float64, len(bankRows))
	for i := range x {
		x[i] = make([]float64, 0, len(bankFeats)+len(partnerFeats)+1)
	}
	for _, side := range []struct {
		t     *csvTable
		feats []string
		rows  []int
	}{{bt, bankFeats, bankRows}, {pt, partnerFeats, partnerRows}} {
		for _, f := range side.feats {
			v, err := side.t.num(f)
			if err != nil {
				return 0, 0, 0, err
			}
			z := standardised(v, side.rows)
			for i, r := range side.rows {
				x[i] = append(x[i], z[r])
			}
		}
	}
	ys := make([]float64, len(bankRows))
	sFed := make([]float64, len(bankRows))
	for i, br := range bankRows {
		x[i] = append(x[i], 1)
		ys[i], sFed[i] = y[br], fed[br]
	}
	w := vlrtest.PlainLR(x, ys, l2)
	sPlain := make([]float64, len(x))
	for i, xi := range x {
		for j, v := range xi {
			sPlain[i] += w[j] * v
		}
	}
	return vlrtest.AUC(sFed, ys), vlrtest.AUC(sPlain, ys), len(ys), nil
}
