package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/node"
)

// pmmlParsed is the PMML as a consumer reads it back (independent of the
// writer's types).
type pmmlParsed struct {
	XMLName xml.Name `xml:"PMML"`
	Version string   `xml:"version,attr"`
	Header  struct {
		Copyright   string   `xml:"copyright,attr"`
		Description string   `xml:"description,attr"`
		Annotations []string `xml:"Annotation"`
		Timestamp   string   `xml:"Timestamp"`
	} `xml:"Header"`
	DataDictionary struct {
		NumberOfFields int `xml:"numberOfFields,attr"`
		Fields         []struct {
			Name   string `xml:"name,attr"`
			Optype string `xml:"optype,attr"`
			Values []struct {
				Value string `xml:"value,attr"`
			} `xml:"Value"`
		} `xml:"DataField"`
	} `xml:"DataDictionary"`
	Derived []struct {
		Name         string `xml:"name,attr"`
		Optype       string `xml:"optype,attr"`
		NormDiscrete struct {
			Field        string `xml:"field,attr"`
			Value        string `xml:"value,attr"`
			MapMissingTo string `xml:"mapMissingTo,attr"`
		} `xml:"NormDiscrete"`
	} `xml:"TransformationDictionary>DerivedField"`
	Model struct {
		FunctionName        string `xml:"functionName,attr"`
		NormalizationMethod string `xml:"normalizationMethod,attr"`
		MiningFields        []struct {
			Name        string `xml:"name,attr"`
			UsageType   string `xml:"usageType,attr"`
			Replacement string `xml:"missingValueReplacement,attr"`
			Treatment   string `xml:"missingValueTreatment,attr"`
		} `xml:"MiningSchema>MiningField"`
		OutputFields []struct {
			Name    string `xml:"name,attr"`
			Feature string `xml:"feature,attr"`
			Value   string `xml:"value,attr"`
		} `xml:"Output>OutputField"`
		Tables []struct {
			Intercept      string `xml:"intercept,attr"`
			TargetCategory string `xml:"targetCategory,attr"`
			Predictors     []struct {
				Name        string `xml:"name,attr"`
				Exponent    string `xml:"exponent,attr"`
				Coefficient string `xml:"coefficient,attr"`
			} `xml:"NumericPredictor"`
		} `xml:"RegressionTable"`
	} `xml:"RegressionModel"`
}

// pmmlTestDoc builds a part the way the node does (node.newModelPart):
// raw coefficients w/sd and the offset intercept − Σ w·mean/sd.
func pmmlTestDoc(side string, intercept *float64, clip float64, bankF, partnerF []string) modelDoc {
	feats := partnerF
	w := []float64{0.8, -1.25, 0.031}
	mean := []float64{1520.5, 3.2, -7}
	sd := []float64{410.25, 1.7, 2.5}
	if side == "bank" {
		feats = bankF
	}
	w, mean, sd = w[:len(feats)], mean[:len(feats)], sd[:len(feats)]
	p := node.ModelPart{Format: "tandem.vlr.part/v1", ModelID: "mdl-7", Side: side, Features: feats, Weights: w, Intercept: intercept,
		Mean: mean, SD: sd, Missing: "mean", ClipRange: clip}
	if intercept != nil {
		p.RawOffset = *intercept
	}
	for k := range w {
		p.RawWeights = append(p.RawWeights, w[k]/sd[k])
		p.RawOffset -= w[k] * mean[k] / sd[k]
	}
	c := node.ModelCard{ModelID: "mdl-7", Model: "vertical_logistic_regression", JobID: "job-7", AgreementID: "agr-3",
		Created: "2025-05-01T10:00:00Z", Side: side, Peer: "peer", Label: "has_card", BankFeatures: bankF, PartnerFeatures: partnerF}
	return modelDoc{Part: p, Card: c}
}

// standardisedScore is the part's linear predictor as the node computes it
// (node.partialScores): Σ w·(x−mean)/sd (+ intercept), a missing value
// (NaN here) counting as the mean.
func standardisedScore(p node.ModelPart, x []float64) float64 {
	s := 0.0
	for k := range p.Features {
		if !math.IsNaN(x[k]) {
			s += p.Weights[k] * (x[k] - p.Mean[k]) / p.SD[k]
		}
	}
	if p.Intercept != nil {
		s += *p.Intercept
	}
	return s
}

func parsePMML(t *testing.T, b []byte) pmmlParsed {
	t.Helper()
	var d pmmlParsed
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("PMML does not parse: %v\n%s", err, b)
	}
	if d.XMLName.Space != "http://www.dmg.org/PMML-4_4" || d.Version != "4.4" {
		t.Fatalf("root %v version %q", d.XMLName, d.Version)
	}
	// Only standard PMML 4.4 elements, all in its namespace.
	allowed := map[string]bool{"PMML": true, "Header": true, "Application": true, "Annotation": true, "Timestamp": true,
		"DataDictionary": true, "DataField": true, "Value": true, "RegressionModel": true, "MiningSchema": true,
		"MiningField": true, "Output": true, "OutputField": true, "RegressionTable": true, "NumericPredictor": true,
		"TransformationDictionary": true, "DerivedField": true, "NormDiscrete": true}
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if se, ok := tok.(xml.StartElement); ok && (!allowed[se.Name.Local] || se.Name.Space != "http://www.dmg.org/PMML-4_4") {
			t.Errorf("element %v", se.Name)
		}
	}
	return d
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("number %q: %v", s, err)
	}
	return v
}

// evalPMML evaluates the parsed table by hand: intercept + Σ coef·x, a
// missing value (NaN) replaced by the mining field's replacement value.
func evalPMML(t *testing.T, d pmmlParsed, table int, row map[string]float64) float64 {
	t.Helper()
	repl := map[string]float64{}
	for _, f := range d.Model.MiningFields {
		if f.UsageType == "active" {
			repl[f.Name] = num(t, f.Replacement)
		}
	}
	tb := d.Model.Tables[table]
	s := num(t, tb.Intercept)
	for _, p := range tb.Predictors {
		if p.Exponent != "1" {
			t.Fatalf("predictor %s exponent %q", p.Name, p.Exponent)
		}
		x, ok := row[p.Name]
		if !ok {
			t.Fatalf("no value for %s", p.Name)
		}
		if math.IsNaN(x) {
			x = repl[p.Name]
		}
		s += num(t, p.Coefficient) * x
	}
	return s
}

// checkPredictors checks the one-predictor-per-feature table, the
// intercept and the mining schema against the part.
func checkPredictors(t *testing.T, d pmmlParsed, p node.ModelPart, target string) {
	t.Helper()
	tb := d.Model.Tables[0]
	if len(tb.Predictors) != len(p.Features) {
		t.Fatalf("%d predictors for %d features", len(tb.Predictors), len(p.Features))
	}
	for k, f := range p.Features {
		if tb.Predictors[k].Name != f || num(t, tb.Predictors[k].Coefficient) != p.RawWeights[k] {
			t.Errorf("predictor %d: %+v, want %s %v", k, tb.Predictors[k], f, p.RawWeights[k])
		}
	}
	if got := num(t, tb.Intercept); got != p.RawOffset {
		t.Errorf("intercept %v, want RawOffset %v", got, p.RawOffset)
	}
	ms := d.Model.MiningFields
	if len(ms) != len(p.Features)+1 || ms[0].Name != target || ms[0].UsageType != "target" {
		t.Fatalf("mining schema %+v", ms)
	}
	for k, f := range p.Features {
		m := ms[k+1]
		if m.Name != f || m.UsageType != "active" || num(t, m.Replacement) != p.Mean[k] {
			t.Errorf("mining field %+v, want %s active, replacement %v", m, f, p.Mean[k])
		}
	}
	dd := d.DataDictionary
	if dd.NumberOfFields != len(p.Features)+1 || len(dd.Fields) != dd.NumberOfFields {
		t.Fatalf("data dictionary %+v", dd)
	}
	for k, f := range p.Features {
		if dd.Fields[k].Name != f || dd.Fields[k].Optype != "continuous" {
			t.Errorf("data field %+v", dd.Fields[k])
		}
	}
}

func TestPMMLBankPartial(t *testing.T) {
	ic := -0.37
	md := pmmlTestDoc("bank", &ic, 0, []string{"income", "tenure"}, []string{"monthly_spend"})
	b, err := modelPMML(md)
	if err != nil {
		t.Fatal(err)
	}
	d := parsePMML(t, b)
	if d.Model.FunctionName != "regression" || d.Model.NormalizationMethod != "none" || len(d.Model.Tables) != 1 || len(d.Model.OutputFields) != 0 {
		t.Fatalf("model %+v", d.Model)
	}
	checkPredictors(t, d, md.Part, "partial_linear_predictor_bank")
	tf := d.DataDictionary.Fields[len(d.DataDictionary.Fields)-1]
	if tf.Name != "partial_linear_predictor_bank" || tf.Optype != "continuous" {
		t.Errorf("target field %+v", tf)
	}
	desc := d.Header.Description
	for _, want := range []string{"PARTIAL model: only the bank part of a split", "needs the partner part", "tandem score", "mdl-7", "job-7", "agr-3", "2025-05-01T10:00:00Z"} {
		if !strings.Contains(desc, want) {
			t.Errorf("description lacks %q: %s", want, desc)
		}
	}
	if strings.Contains(desc, "clip") || len(d.Header.Annotations) == 0 || !strings.Contains(d.Header.Annotations[0], "partial_linear_predictor_bank + partial_linear_predictor_partner") ||
		d.Header.Timestamp != "2025-05-01T10:00:00Z" || !strings.Contains(d.Header.Copyright, "mdl-7") {
		t.Errorf("header %+v", d.Header)
	}
	for _, row := range [][]float64{{1800, 4.5}, {900.25, math.NaN()}, {math.NaN(), math.NaN()}} {
		got := evalPMML(t, d, 0, map[string]float64{"income": row[0], "tenure": row[1]})
		if want := standardisedScore(md.Part, row); math.Abs(got-want) > 1e-9 {
			t.Errorf("row %v: PMML %v, standardised %v", row, got, want)
		}
	}
}

func TestPMMLPartnerPartialClip(t *testing.T) {
	md := pmmlTestDoc("partner", nil, 4, []string{"income"}, []string{"monthly_spend", "visits", "balance"})
	b, err := modelPMML(md)
	if err != nil {
		t.Fatal(err)
	}
	d := parsePMML(t, b)
	if d.Model.FunctionName != "regression" || d.Model.NormalizationMethod != "none" {
		t.Fatalf("model %+v", d.Model)
	}
	checkPredictors(t, d, md.Part, "partial_linear_predictor_partner")
	if desc := d.Header.Description; !strings.Contains(desc, "clipped to ±4") || !strings.Contains(desc, "needs the bank part") {
		t.Errorf("description: %s", desc)
	}
	row := []float64{1700, 2, -3}
	got := evalPMML(t, d, 0, map[string]float64{"monthly_spend": row[0], "visits": row[1], "balance": row[2]})
	if want := standardisedScore(md.Part, row); math.Abs(got-want) > 1e-9 {
		t.Errorf("PMML %v, standardised %v", got, want)
	}
}

func TestPMMLPartnerOnlyComplete(t *testing.T) {
	ic := 0.42
	md := pmmlTestDoc("partner", &ic, 0, nil, []string{"monthly_spend", "visits", "balance"})
	b, err := modelPMML(md)
	if err != nil {
		t.Fatal(err)
	}
	d := parsePMML(t, b)
	m := d.Model
	if m.FunctionName != "classification" || m.NormalizationMethod != "logit" || len(m.Tables) != 2 {
		t.Fatalf("model %+v", m)
	}
	checkPredictors(t, d, md.Part, "has_card")
	if m.Tables[0].TargetCategory != "1" || m.Tables[1].TargetCategory != "0" || num(t, m.Tables[1].Intercept) != 0 || len(m.Tables[1].Predictors) != 0 {
		t.Errorf("tables %+v", m.Tables)
	}
	tf := d.DataDictionary.Fields[len(d.DataDictionary.Fields)-1]
	if tf.Name != "has_card" || tf.Optype != "categorical" || len(tf.Values) != 2 || tf.Values[0].Value != "0" || tf.Values[1].Value != "1" {
		t.Errorf("target field %+v", tf)
	}
	if len(m.OutputFields) != 1 || m.OutputFields[0].Feature != "probability" || m.OutputFields[0].Value != "1" {
		t.Errorf("output %+v", m.OutputFields)
	}
	if desc := d.Header.Description; strings.Contains(desc, "PARTIAL") || !strings.Contains(desc, "complete model") || !strings.Contains(desc, "agr-3") {
		t.Errorf("description: %s", desc)
	}
	for _, row := range [][]float64{{1700, 2, -3}, {math.NaN(), 9, -12.5}} {
		// PMML logit normalisation over the two tables: P(1) = 1/(1+exp(−y1)),
		// as the 4.4 spec defines it for binary logistic regression.
		y1 := evalPMML(t, d, 0, map[string]float64{"monthly_spend": row[0], "visits": row[1], "balance": row[2]})
		got := 1 / (1 + math.Exp(-y1))
		want := 1 / (1 + math.Exp(-standardisedScore(md.Part, row)))
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("row %v: PMML P(1) %v, standardised %v", row, got, want)
		}
	}

	// With a clip range the description warns that federated scoring clips.
	md.Part.ClipRange = 4
	b, err = modelPMML(md)
	if err != nil {
		t.Fatal(err)
	}
	if d := parsePMML(t, b); !strings.Contains(d.Header.Description, "clipped to ±4") || d.Model.FunctionName != "classification" {
		t.Errorf("description: %s", d.Header.Description)
	}
}

func TestPMMLNotComplete(t *testing.T) {
	// A bank part with the intercept is partial while the partner has features;
	// a bank part without partner features is complete.
	ic := 1.0
	for _, tc := range []struct {
		side     string
		ic       *float64
		bank, pa []string
		complete bool
	}{
		{"bank", &ic, []string{"income"}, []string{"monthly_spend"}, false},
		{"bank", &ic, []string{"income"}, nil, true},
		{"partner", nil, nil, []string{"monthly_spend"}, false},
		{"partner", &ic, []string{"income"}, []string{"monthly_spend"}, false},
	} {
		md := pmmlTestDoc(tc.side, tc.ic, 0, tc.bank, tc.pa)
		b, err := modelPMML(md)
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{true: "classification", false: "regression"}[tc.complete]
		if got := parsePMML(t, b).Model.FunctionName; got != want {
			t.Errorf("%+v: functionName %s, want %s", tc, got, want)
		}
	}
	md := pmmlTestDoc("bank", &ic, 0, []string{"has_card"}, nil) // a feature named like the label
	if _, err := modelPMML(md); err == nil {
		t.Error("feature clashing with the target: no error")
	}
}

func TestPMMLExportFormat(t *testing.T) {
	for _, tc := range []struct{ format, out, want string }{
		{"", "part.json", "json"}, {"", "part", "json"}, {"", "part.pmml", "pmml"}, {"", "PART.XML", "pmml"},
		{"pmml", "part.json", "pmml"}, {"json", "part.pmml", "json"}, {"PMML", "x", "pmml"},
	} {
		if got, err := exportFormat(tc.format, tc.out); err != nil || got != tc.want {
			t.Errorf("exportFormat(%q, %q) = %q, %v; want %q", tc.format, tc.out, got, err, tc.want)
		}
	}
	if _, err := exportFormat("csv", "x.csv"); err == nil {
		t.Error("--format csv: no error")
	}
}

// TestPMMLIndicators: indicator features "column=level" become NormDiscrete
// derived fields of one categorical DataField per column, the indicator's
// mean standing in for a missing category, so that the PMML scores every
// row as the node does (a category the model does not name counts 0).
func TestPMMLIndicators(t *testing.T) {
	ic := 0.25
	md := pmmlTestDoc("bank", &ic, 0, []string{"income", "checking=none", "checking=lt_0"}, nil)
	md.Part.Mean[1], md.Part.Mean[2] = 0.39, 0.27  // indicator means are fractions
	md.Part.RawWeights, md.Part.RawOffset = nil, 0 // derived from weights, means and sds
	b, err := modelPMML(md)
	if err != nil {
		t.Fatal(err)
	}
	d := parsePMML(t, b)
	if d.Model.FunctionName != "classification" {
		t.Fatalf("a bank part without partner features is complete: %+v", d.Model)
	}
	dd := d.DataDictionary.Fields
	if len(dd) != 3 || dd[0].Name != "income" || dd[1].Name != "checking" || dd[1].Optype != "categorical" ||
		len(dd[1].Values) != 2 || dd[1].Values[0].Value != "none" || dd[1].Values[1].Value != "lt_0" {
		t.Fatalf("data dictionary %+v", dd)
	}
	ms := d.Model.MiningFields
	if len(ms) != 3 || ms[1].Name != "income" || ms[2].Name != "checking" || ms[2].Replacement != "" {
		t.Fatalf("mining schema %+v", ms)
	}
	if len(d.Derived) != 2 {
		t.Fatalf("derived fields %+v", d.Derived)
	}
	derived := map[string]int{}
	for i, f := range d.Derived {
		derived[f.Name] = i
		if f.NormDiscrete.Field != "checking" || f.Optype != "continuous" || "checking="+f.NormDiscrete.Value != f.Name {
			t.Errorf("derived field %+v", f)
		}
	}
	// Evaluate the PMML as a consumer would: numeric fields replaced by
	// their mining replacement when missing, derived fields by NormDiscrete.
	repl := map[string]float64{}
	for _, f := range ms {
		if f.UsageType == "active" && f.Replacement != "" {
			repl[f.Name] = num(t, f.Replacement)
		}
	}
	for _, row := range []struct {
		income   float64
		checking string // "" = missing
	}{{1800, "none"}, {1800, "lt_0"}, {900, "gt_200"}, {math.NaN(), ""}} {
		tb := d.Model.Tables[0]
		got := num(t, tb.Intercept)
		x := []float64{row.income, 0, 0}
		for _, p := range tb.Predictors {
			var v float64
			if i, ok := derived[p.Name]; ok {
				nd := d.Derived[i].NormDiscrete
				switch {
				case row.checking == "":
					v = num(t, nd.MapMissingTo)
				case row.checking == nd.Value:
					v = 1
				}
			} else if v = row.income; math.IsNaN(v) {
				v = repl[p.Name]
			}
			got += num(t, p.Coefficient) * v
		}
		switch row.checking {
		case "none":
			x[1] = 1
		case "lt_0":
			x[2] = 1
		case "":
			x[1], x[2] = math.NaN(), math.NaN()
		}
		if want := standardisedScore(md.Part, x); math.Abs(got-want) > 1e-9 {
			t.Errorf("row %+v: PMML %v, node %v", row, got, want)
		}
	}
}

// TestPMMLMissingDrop: a model trained on complete rows (missing: drop)
// exports every feature, numeric or categorical, as returnInvalid (no
// score where a value is missing, as the node scores); the default model
// replaces a missing number by its mean.
func TestPMMLMissingDrop(t *testing.T) {
	ic := 0.25
	for _, rule := range []string{"mean", "drop"} {
		md := pmmlTestDoc("bank", &ic, 0, []string{"income", "checking=none", "checking=lt_0"}, nil)
		md.Part.Missing = rule
		b, err := modelPMML(md)
		if err != nil {
			t.Fatalf("%s: %v", rule, err)
		}
		d := parsePMML(t, b)
		for _, f := range d.Model.MiningFields {
			if f.UsageType == "target" {
				continue
			}
			want, repl := "returnInvalid", false
			if rule == "mean" {
				want, repl = map[string]string{"income": "asMean", "checking": ""}[f.Name], f.Name == "income"
			}
			if f.Treatment != want || (f.Replacement != "") != repl {
				t.Errorf("missing: %s: mining field %+v, want treatment %q", rule, f, want)
			}
		}
		if notes := strings.Join(d.Header.Annotations, " "); rule == "drop" && !strings.Contains(notes, "no score (returnInvalid)") {
			t.Errorf("missing: drop: annotations %q do not say so", notes)
		}
	}
	md := pmmlTestDoc("bank", &ic, 0, []string{"income"}, nil)
	md.Part.Missing = "median"
	if _, err := modelPMML(md); err == nil || !strings.Contains(err.Error(), `missing-value rule "median"`) {
		t.Errorf("unknown rule: %v", err)
	}
}
