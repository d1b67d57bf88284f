package synth_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/node/dataset"
	"github.com/tandem-dev/tandem/psi/ident"
	"github.com/tandem-dev/tandem/testnet/synth"
)

func testConfig(seed int64) synth.Config {
	return synth.Config{
		Seed:     seed,
		BankRows: 20000,
		Partners: []synth.PartnerConfig{
			{Name: "shop", Rows: 15000, Overlap: 0.4, Kind: "ecommerce"},
			{Name: "grid", Rows: 8000, Overlap: 0.7, Kind: "utility"},
			{Name: "tax", Rows: 5000, Overlap: 0.9, Kind: "tax"},
		},
	}
}

func readCSV(t *testing.T, path string) (map[string]int, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	idx := map[string]int{}
	for i, h := range recs[0] {
		idx[h] = i
	}
	return idx, recs[1:]
}

// canonSet canonicalises a column with ident and returns the set of valid
// canonical values and, per row, the canonical value ("" if invalid/null).
func canonSet(t *testing.T, rows [][]string, col int, k ident.Kind) (map[string]bool, []string) {
	set := map[string]bool{}
	per := make([]string, len(rows))
	for i, r := range rows {
		c, err := ident.Canonical(k, r[col])
		if err != nil {
			continue
		}
		if set[c] {
			t.Errorf("duplicate canonical %v in column %d (row %d)", k, col, i)
		}
		set[c] = true
		per[i] = c
	}
	return set, per
}

func TestTruthMatchesPlaintextJoin(t *testing.T) {
	dir := t.TempDir()
	truth, err := synth.Generate(dir, testConfig(7))
	if err != nil {
		t.Fatal(err)
	}
	bidx, bank := readCSV(t, truth.BankFile)
	if len(bank) != truth.BankRows {
		t.Fatalf("bank rows: got %d, want %d", len(bank), truth.BankRows)
	}
	bPhones, _ := canonSet(t, bank, bidx["phone"], ident.CNMobile)
	bIDs, _ := canonSet(t, bank, bidx["id_no"], ident.CNID)
	for _, pt := range truth.Partners {
		t.Run(pt.Name, func(t *testing.T) {
			pidx, rows := readCSV(t, pt.File)
			if len(rows) != pt.Rows {
				t.Fatalf("rows: got %d, want %d", len(rows), pt.Rows)
			}
			_, phones := canonSet(t, rows, pidx["phone"], ident.CNMobile)
			_, ids := canonSet(t, rows, pidx["id_no"], ident.CNID)
			var byPhone, byID, either int
			for i := range rows {
				p := phones[i] != "" && bPhones[phones[i]]
				d := ids[i] != "" && bIDs[ids[i]]
				if p {
					byPhone++
				}
				if d {
					byID++
				}
				if p || d {
					either++
				}
			}
			if byPhone != pt.ByPhone || byID != pt.ByIDNo || either != pt.ByEither {
				t.Errorf("join: got phone=%d id=%d either=%d, want %d %d %d", byPhone, byID, either, pt.ByPhone, pt.ByIDNo, pt.ByEither)
			}
			if pt.ByIDNoOnly == 0 || pt.ByEither <= pt.ByPhone {
				t.Errorf("no persons match by id_no only (%+v)", pt)
			}
			if pt.Shared != int(float64(pt.Rows)*map[string]float64{"shop": 0.4, "grid": 0.7, "tax": 0.9}[pt.Name]+0.5) {
				t.Errorf("shared: got %d", pt.Shared)
			}
			t.Logf("%+v", pt)
		})
	}
}

// TestTruthMatchesDataset runs the same join through node/dataset's streams.
func TestTruthMatchesDataset(t *testing.T) {
	dir := t.TempDir()
	truth, err := synth.Generate(dir, testConfig(11))
	if err != nil {
		t.Fatal(err)
	}
	ids := []dataset.IDColumn{{Column: "phone", Kind: ident.CNMobile}, {Column: "id_no", Kind: ident.CNID}}
	bank := map[string]bool{}
	ctx := context.Background()
	err = dataset.EachIDAny(ctx, dataset.Spec{File: truth.BankFile, IDs: ids}, nil, func(_ int64, k ident.Kind, c []byte) error {
		bank[k.String()+":"+string(c)] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range truth.Partners {
		matched := map[int64]bool{}
		err := dataset.EachIDAny(ctx, dataset.Spec{File: pt.File, IDs: ids}, nil, func(row int64, k ident.Kind, c []byte) error {
			if bank[k.String()+":"+string(c)] {
				matched[row] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(matched) != pt.ByEither {
			t.Errorf("%s: matched rows got %d, want %d", pt.Name, len(matched), pt.ByEither)
		}
	}
	prof, err := dataset.Scan(ctx, dataset.Spec{File: truth.BankFile, IDs: ids, Label: "has_card",
		Features: []string{"age", "income", "tenure_months"}, Attrs: []string{"city_tier"}, Consent: "consent_marketing"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if prof.Label.Positives != int64(truth.BankPositives) {
		t.Errorf("positives: got %d, want %d", prof.Label.Positives, truth.BankPositives)
	}
	for _, ip := range prof.IDs {
		if ip.Duplicates != 0 {
			t.Errorf("%s: %d duplicates", ip.Column, ip.Duplicates)
		}
		rate := float64(ip.Valid) / float64(prof.Rows)
		if rate < 0.97 || rate > 0.995 {
			t.Errorf("%s: valid rate %.4f", ip.Column, rate)
		}
	}
	if prof.Features[0].Min < 18 || prof.Features[0].Max > 76 {
		t.Errorf("age range %v..%v", prof.Features[0].Min, prof.Features[0].Max)
	}
}

func TestDeterministic(t *testing.T) {
	gen := func(seed int64) map[string][]byte {
		dir := t.TempDir()
		if _, err := synth.Generate(dir, testConfig(seed)); err != nil {
			t.Fatal(err)
		}
		out := map[string][]byte{}
		for _, n := range []string{"bank.csv", "shop.csv", "grid.csv", "tax.csv"} {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			out[n] = b
		}
		return out
	}
	a, b, c := gen(1), gen(1), gen(2)
	for n := range a {
		if !bytes.Equal(a[n], b[n]) {
			t.Errorf("%s differs between two runs with the same seed", n)
		}
		if bytes.Equal(a[n], c[n]) {
			t.Errorf("%s is the same for seeds 1 and 2", n)
		}
	}
}

func TestFormatsVary(t *testing.T) {
	dir := t.TempDir()
	truth, err := synth.Generate(dir, testConfig(3))
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string]*regexp.Regexp{
		"national":   regexp.MustCompile(`^1\d{10}$`),
		"e164":       regexp.MustCompile(`^\+861\d{10}$`),
		"dashed":     regexp.MustCompile(`^\+86 1\d\d-\d{4}-\d{4}$`),
		"0086":       regexp.MustCompile(`^0086 1\d{10}$`),
		"paren":      regexp.MustCompile(`^\(\+86\)1\d\d \d{4} \d{4}$`),
		"full-width": regexp.MustCompile(`^[０-９]{11}$`),
		"id lower x": regexp.MustCompile(`^\d{17}x$`),
		"id legacy":  regexp.MustCompile(`^\d{15}$`),
		"email case": regexp.MustCompile(`[A-Z].*@`),
		"email pad":  regexp.MustCompile(`^\s+\S+@\S+\s+$`),
	}
	seen := map[string]int{}
	diffSide := 0
	for _, file := range []string{truth.BankFile, truth.Partners[0].File} {
		idx, rows := readCSV(t, file)
		for _, r := range rows {
			for name, re := range shapes {
				for _, col := range []string{"phone", "id_no", "email"} {
					if re.MatchString(r[idx[col]]) {
						seen[name]++
					}
				}
			}
		}
	}
	for name := range shapes {
		if seen[name] == 0 {
			t.Errorf("format %s never written", name)
		}
	}
	// Shared persons: raw texts differ between sides, canonical forms agree.
	_, bank := readCSV(t, truth.BankFile)
	byCanon := map[string]string{}
	for _, r := range bank {
		if c, err := ident.Canonical(ident.CNMobile, r[1]); err == nil {
			byCanon[c] = r[1]
		}
	}
	_, part := readCSV(t, truth.Partners[0].File)
	same := 0
	for _, r := range part {
		if c, err := ident.Canonical(ident.CNMobile, r[1]); err == nil {
			if raw, ok := byCanon[c]; ok {
				if raw == r[1] {
					same++
				} else {
					diffSide++
				}
			}
		}
	}
	if same != 0 || diffSide == 0 {
		t.Errorf("shared phones: %d written identically, %d differently; want 0 and >0", same, diffSide)
	}
	t.Logf("format counts: %v", seen)
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]synth.Config{
		"no bank":     {},
		"overlap":     {BankRows: 10, Partners: []synth.PartnerConfig{{Name: "p", Rows: 100, Overlap: 0.5}}},
		"bad name":    {BankRows: 10, Partners: []synth.PartnerConfig{{Name: "../x", Rows: 1}}},
		"bank name":   {BankRows: 10, Partners: []synth.PartnerConfig{{Name: "bank", Rows: 1}}},
		"bad kind":    {BankRows: 10, Partners: []synth.PartnerConfig{{Name: "p", Rows: 1, Kind: "telco"}}},
		"overlap > 1": {BankRows: 10, Partners: []synth.PartnerConfig{{Name: "p", Rows: 1, Overlap: 2}}},
	} {
		if _, err := synth.Generate(t.TempDir(), cfg); !errors.Is(err, synth.ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
}

func TestSignalAndAges(t *testing.T) {
	dir := t.TempDir()
	truth, err := synth.Generate(dir, testConfig(5))
	if err != nil {
		t.Fatal(err)
	}
	idx, bank := readCSV(t, truth.BankFile)
	var incSum [2]float64
	var incN [2]int
	card := map[string]int{}
	for _, r := range bank {
		lab := 0
		if r[idx["has_card"]] == "1" {
			lab = 1
		}
		if inc, err := strconv.ParseFloat(r[idx["income"]], 64); err == nil {
			incSum[lab] += math.Log(inc)
			incN[lab]++
		}
		if c, err := ident.Canonical(ident.CNID, r[idx["id_no"]]); err == nil {
			card[c] = lab
			born, _ := time.Parse("20060102", c[6:14])
			ref := time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC)
			age := ref.Year() - born.Year()
			if born.Month() > ref.Month() || (born.Month() == ref.Month() && born.Day() > ref.Day()) {
				age--
			}
			if strconv.Itoa(age) != r[idx["age"]] {
				t.Fatalf("age column %s inconsistent with id birth date (%d)", r[idx["age"]], age)
			}
		}
	}
	if incSum[1]/float64(incN[1]) <= incSum[0]/float64(incN[0])+0.1 {
		t.Errorf("log income: positives %.3f, negatives %.3f; want a clear gap", incSum[1]/float64(incN[1]), incSum[0]/float64(incN[0]))
	}
	// Partner feature signal among shared persons matched by id_no.
	pidx, rows := readCSV(t, truth.Partners[0].File)
	var spend [2]float64
	var n [2]int
	for _, r := range rows {
		c, err := ident.Canonical(ident.CNID, r[pidx["id_no"]])
		lab, ok := card[c]
		if err != nil || !ok {
			continue
		}
		if s, err := strconv.ParseFloat(r[pidx["monthly_spend"]], 64); err == nil {
			spend[lab] += math.Log(s)
			n[lab]++
		}
	}
	if spend[1]/float64(n[1]) <= spend[0]/float64(n[0])+0.2 {
		t.Errorf("log monthly_spend: positives %.3f, negatives %.3f; want a clear gap", spend[1]/float64(n[1]), spend[0]/float64(n[0]))
	}
	rate := float64(truth.BankPositives) / float64(truth.BankRows)
	if rate < 0.2 || rate > 0.6 {
		t.Errorf("positive rate %.3f", rate)
	}
}
