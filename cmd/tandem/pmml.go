package main

import (
	"encoding/xml"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tandem-dev/tandem/node"
	"github.com/tandem-dev/tandem/node/dataset"
)

// PMML export of this node's part of a split model (`tandem model export
// ID --out FILE.pmml --format pmml`), PMML 4.4 (http://www.dmg.org/PMML-4_4):
// a RegressionModel over the part's features with the raw-scale
// coefficients (ModelPart.RawWeights) and ModelPart.RawOffset as the
// intercept (it folds the intercept and the standardisation), a missing
// value replaced by the feature's mean (ModelPart.Missing "mean") or, for a
// model trained on complete rows (Missing "drop"), an invalid result
// (missingValueTreatment returnInvalid: no score, as in the node). An
// indicator feature "column=level" becomes a NormDiscrete derived field of
// the categorical column (its DataField lists the levels the model uses,
// not every level the data holds: any other value gives 0, as in training).
//
//   - A complete model (the part has the intercept and the other side has
//     no features: a bank part without partner features, or the partner
//     part of a partner-only model) is a binary classification with the
//     logit normalisation: P(label = 1) = 1/(1+exp(−(b + Σ c_j·x_j))).
//   - Otherwise the part is a partial linear predictor of a split model, a
//     regression without normalisation whose predicted field is
//     "partial_linear_predictor_<side>": the score needs the other node's
//     part as well (federated scoring, `tandem score`); the header says so.

type pmmlDoc struct {
	XMLName         xml.Name             `xml:"http://www.dmg.org/PMML-4_4 PMML"`
	Version         string               `xml:"version,attr"`
	Header          pmmlHeader           `xml:"Header"`
	DataDictionary  pmmlDataDictionary   `xml:"DataDictionary"`
	Transformations *pmmlTransformations `xml:"TransformationDictionary"`
	RegressionModel pmmlRegressionModel  `xml:"RegressionModel"`
}

// pmmlTransformations holds one NormDiscrete per indicator feature
// "column=level": 1 where the categorical column equals level, else 0, and
// the indicator's training mean where the column is missing (mapMissingTo),
// which is the node's missing-value rule.
type pmmlTransformations struct {
	Fields []pmmlDerivedField `xml:"DerivedField"`
}

type pmmlDerivedField struct {
	Name         string           `xml:"name,attr"`
	Optype       string           `xml:"optype,attr"`
	DataType     string           `xml:"dataType,attr"`
	NormDiscrete pmmlNormDiscrete `xml:"NormDiscrete"`
}

type pmmlNormDiscrete struct {
	Field        string `xml:"field,attr"`
	Value        string `xml:"value,attr"`
	MapMissingTo string `xml:"mapMissingTo,attr"`
}

type pmmlHeader struct {
	Copyright   string          `xml:"copyright,attr,omitempty"`
	Description string          `xml:"description,attr,omitempty"`
	ModelVer    string          `xml:"modelVersion,attr,omitempty"`
	Application pmmlApplication `xml:"Application"`
	Annotations []string        `xml:"Annotation"`
	Timestamp   string          `xml:"Timestamp,omitempty"`
}

type pmmlApplication struct {
	Name    string `xml:"name,attr"`
	Version string `xml:"version,attr,omitempty"`
}

type pmmlDataDictionary struct {
	NumberOfFields int             `xml:"numberOfFields,attr"`
	Fields         []pmmlDataField `xml:"DataField"`
}

type pmmlDataField struct {
	Name     string      `xml:"name,attr"`
	Optype   string      `xml:"optype,attr"`
	DataType string      `xml:"dataType,attr"`
	Values   []pmmlValue `xml:"Value"`
}

type pmmlValue struct {
	Value string `xml:"value,attr"`
}

type pmmlRegressionModel struct {
	ModelName           string                `xml:"modelName,attr,omitempty"`
	FunctionName        string                `xml:"functionName,attr"`
	AlgorithmName       string                `xml:"algorithmName,attr,omitempty"`
	NormalizationMethod string                `xml:"normalizationMethod,attr"`
	MiningSchema        pmmlMiningSchema      `xml:"MiningSchema"`
	Output              *pmmlOutput           `xml:"Output"`
	Tables              []pmmlRegressionTable `xml:"RegressionTable"`
}

type pmmlMiningSchema struct {
	Fields []pmmlMiningField `xml:"MiningField"`
}

type pmmlMiningField struct {
	Name                    string `xml:"name,attr"`
	UsageType               string `xml:"usageType,attr"`
	MissingValueReplacement string `xml:"missingValueReplacement,attr,omitempty"`
	MissingValueTreatment   string `xml:"missingValueTreatment,attr,omitempty"`
}

type pmmlOutput struct {
	Fields []pmmlOutputField `xml:"OutputField"`
}

type pmmlOutputField struct {
	Name     string `xml:"name,attr"`
	Optype   string `xml:"optype,attr"`
	DataType string `xml:"dataType,attr"`
	Feature  string `xml:"feature,attr"`
	Value    string `xml:"value,attr,omitempty"`
}

type pmmlRegressionTable struct {
	Intercept      string                 `xml:"intercept,attr"`
	TargetCategory string                 `xml:"targetCategory,attr,omitempty"`
	Predictors     []pmmlNumericPredictor `xml:"NumericPredictor"`
}

type pmmlNumericPredictor struct {
	Name        string `xml:"name,attr"`
	Exponent    int    `xml:"exponent,attr"`
	Coefficient string `xml:"coefficient,attr"`
}

// exportFormat is the format of `model export`: --format if given, else
// pmml for an --out ending in .pmml or .xml, else json.
func exportFormat(format, out string) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(format)); f {
	case "json", "pmml":
		return f, nil
	case "":
		switch strings.ToLower(filepath.Ext(out)) {
		case ".pmml", ".xml":
			return "pmml", nil
		}
		return "json", nil
	}
	return "", fmt.Errorf("model export: unknown --format %q (want json or pmml)", format)
}

// wholeModel reports whether the part is a complete model on its own: it
// has the intercept and the other side contributes no features.
func wholeModel(d modelDoc) bool {
	if d.Part.Intercept == nil {
		return false
	}
	switch d.Part.Side {
	case "bank":
		return len(d.Card.PartnerFeatures) == 0
	case "partner":
		return len(d.Card.BankFeatures) == 0
	}
	return false
}

func pmmlNum(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// modelPMML converts this node's part of a model to PMML 4.4.
func modelPMML(d modelDoc) ([]byte, error) {
	p, c := d.Part, d.Card
	if p.Side != "bank" && p.Side != "partner" {
		return nil, fmt.Errorf("model export: pmml: unknown side %q", p.Side)
	}
	drop := p.Missing == "drop" // a row with a missing value has no score: PMML's returnInvalid
	if p.Missing != "" && p.Missing != "mean" && !drop {
		return nil, fmt.Errorf("model export: pmml: missing-value rule %q (want mean or drop)", p.Missing)
	}
	n := len(p.Features)
	if len(p.Mean) != n {
		return nil, fmt.Errorf("model export: pmml: %d features but %d means", n, len(p.Mean))
	}
	raw, offset := p.RawWeights, p.RawOffset
	if len(raw) == 0 && n > 0 {
		// A part stored without the raw-scale coefficients: derive them
		// as the node does (w_j/sd_j; intercept − Σ w_j·mean_j/sd_j).
		if len(p.Weights) != n || len(p.SD) != n {
			return nil, fmt.Errorf("model export: pmml: %d features but %d weights and %d standard deviations", n, len(p.Weights), len(p.SD))
		}
		raw, offset = make([]float64, n), 0
		if p.Intercept != nil {
			offset = *p.Intercept
		}
		for k, w := range p.Weights {
			raw[k] = w / p.SD[k]
			offset -= w * p.Mean[k] / p.SD[k]
		}
	}
	if len(raw) != n {
		return nil, fmt.Errorf("model export: pmml: %d features but %d raw coefficients", n, len(raw))
	}
	for k := range n {
		if !finite(raw[k]) || !finite(p.Mean[k]) {
			return nil, fmt.Errorf("model export: pmml: feature %s: coefficient %v, mean %v", p.Features[k], raw[k], p.Mean[k])
		}
	}
	if !finite(offset) {
		return nil, fmt.Errorf("model export: pmml: offset %v", offset)
	}

	complete := wholeModel(d)
	doc := pmmlDoc{Version: "4.4"}
	doc.Header = pmmlHeader{
		Copyright:   fmt.Sprintf("tandem model %s, %s part (job %s, agreement %s)", p.ModelID, p.Side, c.JobID, c.AgreementID),
		Application: pmmlApplication{Name: "tandem", Version: node.Version},
		Timestamp:   c.Created,
	}
	ids := fmt.Sprintf("model %s, job %s, agreement %s, created %s", p.ModelID, c.JobID, c.AgreementID, c.Created)
	label := c.Label
	if label == "" {
		label = "label"
	}
	var target string
	rm := pmmlRegressionModel{ModelName: p.ModelID, AlgorithmName: "vertical_logistic_regression"}
	table := pmmlRegressionTable{Intercept: pmmlNum(offset)}
	for k, f := range p.Features {
		table.Predictors = append(table.Predictors, pmmlNumericPredictor{Name: f, Exponent: 1, Coefficient: pmmlNum(raw[k])})
	}
	var targetField pmmlDataField
	var desc string
	var notes []string
	clipped := p.Side == "partner" && p.ClipRange > 0
	if complete {
		target = label
		rm.FunctionName, rm.NormalizationMethod = "classification", "logit"
		targetField = pmmlDataField{Name: target, Optype: "categorical", DataType: "string", Values: []pmmlValue{{"0"}, {"1"}}}
		table.TargetCategory = "1"
		rm.Tables = []pmmlRegressionTable{table, {Intercept: "0", TargetCategory: "0"}}
		rm.Output = &pmmlOutput{Fields: []pmmlOutputField{{Name: "probability_1", Optype: "continuous", DataType: "double", Feature: "probability", Value: "1"}}}
		desc = fmt.Sprintf("logistic regression for P(%s = 1), a complete model: the %s part holds every feature and the intercept (%s)", target, p.Side, ids)
		notes = append(notes, fmt.Sprintf("P(%s = 1) = 1/(1+exp(−(intercept + Σ coefficient·x))); the other node contributes no features to this model", target))
		if clipped {
			r := pmmlNum(p.ClipRange)
			desc += fmt.Sprintf("; federated scoring clips the partner partial predictor: it is clipped to ±%s there, not in this PMML", r)
			notes = append(notes, fmt.Sprintf("federated scoring (`tandem score`) clips the partner partial predictor (here the whole linear predictor) to ±%s before the logistic function; "+
				"a PMML RegressionModel cannot express the clip, so its probabilities differ where the linear predictor lies outside ±%s", r, r))
		}
	} else {
		target = "partial_linear_predictor_" + p.Side
		other := map[string]string{"bank": "partner", "partner": "bank"}[p.Side]
		rm.FunctionName, rm.NormalizationMethod = "regression", "none"
		targetField = pmmlDataField{Name: target, Optype: "continuous", DataType: "double"}
		rm.Tables = []pmmlRegressionTable{table}
		desc = fmt.Sprintf("PARTIAL model: only the %s part of a split logistic regression model for %s (%s); it outputs %s, not a score: "+
			"scoring needs the %s part too (federated scoring with `tandem score`)", p.Side, label, ids, target, other)
		notes = append(notes, fmt.Sprintf("split model: each node holds only its own part; P(%s = 1) = 1/(1+exp(−(partial_linear_predictor_bank + partial_linear_predictor_partner))), "+
			"and only federated scoring (`tandem score`) combines the two parts", label))
		if clipped {
			r := pmmlNum(p.ClipRange)
			desc += fmt.Sprintf("; the partner partial predictor is clipped to ±%s before it is added (not expressed in this PMML)", r)
			notes = append(notes, fmt.Sprintf("the partner partial predictor is clipped to ±%s before it is added to the bank partial predictor; "+
				"a PMML RegressionModel cannot express the clip, so this model outputs the unclipped value", r))
		}
	}
	doc.Header.Description = desc
	if p.Intercept == nil {
		notes = append(notes, "this part holds no intercept (the bank part does): the RegressionTable intercept only folds the standardisation of its features (−Σ w_j·mean_j/sd_j)")
	}
	if drop {
		notes = append(notes, "coefficients on the raw scale (w_j/sd_j of the standardised weights w_j); trained on complete rows (missing: drop): a row with a missing feature value has no score (returnInvalid)")
	} else {
		notes = append(notes, "coefficients on the raw scale (w_j/sd_j of the standardised weights w_j); a missing feature value is replaced by the feature mean (standardised 0)")
	}
	// treat sets a feature's missing-value rule (a categorical column's
	// indicators map a missing cell to their mean in the transformation).
	treat := func(f pmmlMiningField, mean float64, categorical bool) pmmlMiningField {
		if drop {
			f.MissingValueTreatment = "returnInvalid"
		} else if !categorical {
			f.MissingValueReplacement, f.MissingValueTreatment = pmmlNum(mean), "asMean"
		}
		return f
	}
	doc.Header.Annotations = notes

	rm.MiningSchema.Fields = append(rm.MiningSchema.Fields, pmmlMiningField{Name: target, UsageType: "target"})
	var fields []pmmlDataField // the features (an indicator's column once), then the target
	var derived []pmmlDerivedField
	category := map[string]int{} // categorical column → its index in fields
	seen := map[string]bool{target: true}
	if complete {
		seen["probability_1"] = true
	}
	for k, f := range p.Features {
		if f == "" || seen[f] {
			return nil, fmt.Errorf("model export: pmml: feature name %q is empty or clashes with another field", f)
		}
		seen[f] = true
		col, level, indicator := dataset.SplitIndicator(f)
		if !indicator {
			fields = append(fields, pmmlDataField{Name: f, Optype: "continuous", DataType: "double"})
			rm.MiningSchema.Fields = append(rm.MiningSchema.Fields, treat(pmmlMiningField{Name: f, UsageType: "active"}, p.Mean[k], false))
			continue
		}
		derived = append(derived, pmmlDerivedField{Name: f, Optype: "continuous", DataType: "double",
			NormDiscrete: pmmlNormDiscrete{Field: col, Value: level, MapMissingTo: pmmlNum(p.Mean[k])}})
		if i, ok := category[col]; ok {
			fields[i].Values = append(fields[i].Values, pmmlValue{level})
			continue
		}
		if seen[col] {
			return nil, fmt.Errorf("model export: pmml: categorical column %q of feature %q clashes with another field", col, f)
		}
		seen[col] = true
		category[col] = len(fields)
		fields = append(fields, pmmlDataField{Name: col, Optype: "categorical", DataType: "string", Values: []pmmlValue{{level}}})
		rm.MiningSchema.Fields = append(rm.MiningSchema.Fields, treat(pmmlMiningField{Name: col, UsageType: "active"}, 0, true))
	}
	if len(derived) > 0 {
		doc.Transformations = &pmmlTransformations{Fields: derived}
	}
	fields = append(fields, targetField)
	doc.DataDictionary = pmmlDataDictionary{NumberOfFields: len(fields), Fields: fields}
	doc.RegressionModel = rm

	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
