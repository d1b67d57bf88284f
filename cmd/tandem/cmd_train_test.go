package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/node"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

func TestPrintModel(t *testing.T) {
	ic, l1, l2 := -0.5, 0.69, 0.61
	d := modelDoc{
		Part: node.ModelPart{ModelID: "mdl-1", Side: "bank", Features: []string{"income"}, Weights: []float64{0.6}, Intercept: &ic,
			Mean: []float64{1000}, SD: []float64{200}, RawWeights: []float64{0.003}, RawOffset: -3.5},
		Card: node.ModelCard{ModelID: "mdl-1", Model: "vertical_logistic_regression", Side: "bank", JobID: "job-1", Label: "has_card",
			BankFeatures: []string{"income"}, PartnerFeatures: []string{"monthly_spend"}, Hyperparameters: &protocol.TrainSpec{Epochs: 2, L2: 0.001},
			Epochs: 2, Stopped: "max_epochs", Training: node.ModelTrainingData{PSIJob: "job-0", MatchedRows: 10, TrainRows: 8, ValidationRows: 2},
			Metrics: []node.ModelMetric{{Epoch: 1, ValLoss: &l1}, {Epoch: 2, ValLoss: &l2, GradNorm: 0.01}}},
	}
	var b bytes.Buffer
	printModel(&b, d)
	out := b.String()
	for _, want := range []string{"model mdl-1", "bank side", "label has_card", "income", "(intercept)", "10 matched (8 train, 2 validation)", "validation loss 0.61000 (epoch 1: 0.69000)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestPrintResult: objects print as key=value, lists of records one per
// line, scalars as themselves; never Go's map[…] syntax.
func TestPrintResult(t *testing.T) {
	var b strings.Builder
	printResult(&b, &tandemv1.JobState{ResultJson: []byte(`{"scored":806,"receipt":{"digest":"sha256:ab","signatures":2},` +
		`"invalid_ids":{"phone":3,"id_no":0},"bands":[{"band":1,"rows":82},{"band":2,"rows":81,"note":null}]}`)})
	want := "  result:\n" +
		"    bands:\n      band=1 rows=82\n      band=2 rows=81\n" +
		"    invalid_ids:           id_no=0 phone=3\n" +
		"    receipt:               digest=sha256:ab signatures=2\n" +
		"    scored:                806\n"
	if b.String() != want {
		t.Errorf("printResult:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestTakeJSONFlag: --json is accepted after the command and its
// arguments; a value "json" (model export --format json) is left alone.
func TestTakeJSONFlag(t *testing.T) {
	g := &globals{}
	got := takeJSONFlag(g, []string{"show", "customers", "--json"})
	if !g.json || len(got) != 2 || got[1] != "customers" {
		t.Errorf("dataset show customers --json: %v json=%v", got, g.json)
	}
	g = &globals{}
	got = takeJSONFlag(g, []string{"export", "m1", "--format", "json"})
	if g.json || len(got) != 4 {
		t.Errorf("model export --format json: %v json=%v", got, g.json)
	}
}

// TestPartnerOnlyFlag: --partner-only adds partner_only: true to a spec
// that lacks it and leaves one that already says so alone (a duplicate key
// used to fail the YAML parse).
func TestPartnerOnlyFlag(t *testing.T) {
	for _, body := range []string{
		"label: y\npartner_features: [a]\n",
		"label: y\npartner_only: true\npartner_features: [a]\n",
	} {
		f := t.TempDir() + "/model.yaml"
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		check := func(b []byte) error { _, err := protocol.ParseTrainSpec(b); return err }
		extra := func(fs *flag.FlagSet) { fs.Bool("partner-only", false, "") }
		a, err := parseAlignedJob(t.Context(), &globals{}, "train", "", "", []string{"--psi-job", "job-1", "--spec", f, "--peer", "p", "--partner-only"}, check, extra)
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if s, err := protocol.ParseTrainSpec(a.spec); err != nil || !s.PartnerOnly {
			t.Errorf("%q: spec %q: %v", body, a.spec, err)
		}
	}
}

// TestScoreBandsFlags: bad bands-only flags are refused with the cause
// named before any node is contacted.
func TestScoreBandsFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bands-only", "--bands", "40"}, "--bands-only needs --bands 2..32"},
		{[]string{"--bands-only"}, "--bands-only needs --bands 2..32"},
		{[]string{"--bands", "3", "--band-edges", "0.2,0.5"}, "--band-edges needs --bands-only"},
		{[]string{"--bands-only", "--bands", "3", "--band-edges", "0.5"}, "N-1 = 2 edges, got 1"},
		{[]string{"--bands-only", "--bands", "3", "--band-edges", "0.5,0.4"}, "ascending probabilities"},
		{[]string{"--bands-only", "--bands", "3", "--band-edges", "0.5,1"}, "strictly between 0 and 1"},
	} {
		args := append([]string{"--home", t.TempDir(), "score", "--model", "mdl-1", "--psi-job", "job-1"}, tc.args...)
		_, errOut, code := tandem(t, args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("tandem %v: exit %d, stderr %q; want an error containing %q", tc.args, code, errOut, tc.want)
		}
	}
	if e, err := parseEdges(" 0.1, 0.5 ,0.9"); err != nil || len(e) != 3 || e[1] != 0.5 {
		t.Errorf("parseEdges: %v %v", e, err)
	}
}
