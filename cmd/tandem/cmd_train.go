package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tandem-dev/tandem/node"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

// cmdTrain submits a training job over a PSI job's alignment:
//
//	tandem train --psi-job ID --spec model.yaml [--partner-only] [--peer N] [--wait] [--json]
//
// With --wait the progress shows the epoch and the bank's loss (validation, or training without a hold-out).
func cmdTrain(ctx context.Context, g *globals, args []string) error {
	a, err := parseAlignedJob(ctx, g, "train", "model.yaml: label, bank_features, partner_features, epochs, learning_rate, l2, ...",
		"wait for the job to end (progress with the per-epoch loss: validation, or training without a hold-out)", args, func(b []byte) error {
			_, err := protocol.ParseTrainSpec(b)
			return err
		}, func(fs *flag.FlagSet) {
			fs.Bool("partner-only", false, "train a model over the partner's features only (the bank gives its label; spec partner_only: true)")
		})
	if err != nil {
		return err
	}
	return submit(ctx, g, &tandemv1.SubmitJobRequest{Kind: "train", Peer: a.peer, AgreementId: a.agreement,
		Train: &tandemv1.TrainParams{PsiJobId: a.psiJob, SpecYaml: a.spec}}, a.wait)
}

// modelDoc is the JSON of GetModel: this node's part and the model card.
type modelDoc struct {
	Part node.ModelPart `json:"part"`
	Card node.ModelCard `json:"card"`
}

// cmdModel shows this node's models:
//
//	tandem model list [--json]
//	tandem model show ID [--json]
//	tandem model export ID --out part.json [--format json|pmml]   (this node's part only)
//
// The export format is --format, else pmml for an --out ending in .pmml or
// .xml, else json (see pmml.go for the PMML of a part).
func cmdModel(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("model: want list, show ID or export ID --out FILE")
	}
	sub, args := args[0], args[1:]
	if sub == "score" {
		return cmdModelScore(ctx, g, args)
	}
	fs := flag.NewFlagSet("model "+sub, flag.ContinueOnError)
	fs.BoolVar(&g.json, "json", g.json, "JSON output")
	out := fs.String("out", "", "file to write (export)")
	format := fs.String("format", "", "export format: json or pmml (default: pmml for a .pmml or .xml --out, else json)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	switch sub {
	case "list":
		resp, err := c.ListModels(ctx, &tandemv1.ListModelsRequest{})
		if err != nil {
			return rpcErr(err)
		}
		var docs []map[string]any
		tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
		if !g.json {
			fmt.Fprintln(tw, "MODEL\tSIDE\tJOB\tPEER\tLABEL\tFEATURES (BANK | PARTNER)\tEPOCHS\tCREATED")
		}
		for _, m := range resp.Models {
			var d modelDoc
			if err := json.Unmarshal(m.ModelJson, &d); err != nil {
				return err
			}
			docs = append(docs, map[string]any{"id": m.Id, "job_id": m.JobId, "side": m.Side, "created_unix": m.CreatedUnix, "model": json.RawMessage(m.ModelJson)})
			if !g.json {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s | %s\t%d\t%s\n", m.Id, m.Side, m.JobId, d.Card.Peer, d.Card.Label,
					strings.Join(d.Card.BankFeatures, ","), strings.Join(d.Card.PartnerFeatures, ","), d.Card.Epochs, time.Unix(m.CreatedUnix, 0).UTC().Format(time.RFC3339))
			}
		}
		if g.json {
			return g.emit(docs, nil)
		}
		return tw.Flush()
	case "show", "export":
		if len(pos) != 1 {
			return fmt.Errorf("model %s: want ID", sub)
		}
		m, err := c.GetModel(ctx, &tandemv1.GetModelRequest{Id: pos[0]})
		if err != nil {
			return rpcErr(err)
		}
		var d modelDoc
		if err := json.Unmarshal(m.ModelJson, &d); err != nil {
			return err
		}
		if sub == "export" {
			if *out == "" {
				return fmt.Errorf("model export: want --out FILE")
			}
			f, err := exportFormat(*format, *out)
			if err != nil {
				return err
			}
			var b []byte
			if f == "pmml" {
				b, err = modelPMML(d)
			} else {
				b, err = json.MarshalIndent(d, "", "  ")
				b = append(b, '\n')
			}
			if err != nil {
				return err
			}
			if err := os.WriteFile(*out, b, 0o600); err != nil {
				return err
			}
			return g.emit(map[string]any{"model": m.Id, "side": m.Side, "out": *out, "format": f}, func(w io.Writer) {
				fmt.Fprintf(w, "wrote the %s part of model %s to %s (%s)\n", m.Side, m.Id, *out, f)
			})
		}
		if g.json {
			return g.emit(json.RawMessage(m.ModelJson), nil)
		}
		printModel(g.stdout, d)
		return nil
	}
	return fmt.Errorf("model: unknown subcommand %q (want list, show or export)", sub)
}

func printModel(w io.Writer, d modelDoc) {
	c, p := d.Card, d.Part
	holds := "this node holds only its part"
	if wholeModel(d) {
		holds = "this node holds the whole model"
	}
	fmt.Fprintf(w, "model %s (%s, %s side; %s)\n", c.ModelID, c.Model, c.Side, holds)
	fmt.Fprintf(w, "  job %s, agreement %s, peer %s, created %s\n", c.JobID, c.AgreementID, c.Peer, c.Created)
	fmt.Fprintf(w, "  label %s; bank features %s; partner features %s\n", c.Label, strings.Join(c.BankFeatures, ","), strings.Join(c.PartnerFeatures, ","))
	if h := c.Hyperparameters; h != nil {
		fmt.Fprintf(w, "  epochs %d (ran %d%s), learning rate %g, momentum %g, l2 %g, validation %g, batch %d, seed %d, patience %d\n",
			h.Epochs, c.Epochs, map[bool]string{true: ", " + c.Stopped, false: ""}[c.Stopped != ""], h.LearningRate, h.Momentum, h.L2, h.ValidationFraction, h.Batch, h.Seed, h.EarlyStopping.Patience)
	}
	fmt.Fprintf(w, "  training data: psi job %s, dataset %s %s, %d aligned positions", c.Training.PSIJob, c.Training.Dataset, strings.Join(c.Training.DatasetDigests, ","), c.Training.AlignmentLength)
	if c.Training.MatchedRows > 0 {
		fmt.Fprintf(w, ", %d matched (%d train, %d validation)", c.Training.MatchedRows, c.Training.TrainRows, c.Training.ValidationRows)
	}
	fmt.Fprintln(w)
	switch {
	case p.Missing == "drop" && c.Side == "bank":
		fmt.Fprintf(w, "  missing values: complete rows only (missing: drop); left out %d matched rows missing a bank value, %d a partner value; no score where one is missing\n",
			c.Training.IncompleteBank, c.Training.IncompletePartner)
	case p.Missing == "drop":
		fmt.Fprintln(w, "  missing values: complete rows only (missing: drop); no score where one is missing")
	default:
		fmt.Fprintln(w, "  missing values: imputed with the feature's mean (missing: mean)")
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FEATURE\tWEIGHT (STD)\tMEAN\tSD\tRAW COEF")
	for k, f := range p.Features {
		fmt.Fprintf(tw, "  %s\t%.6g\t%.6g\t%.6g\t%.6g\n", f, p.Weights[k], p.Mean[k], p.SD[k], p.RawWeights[k])
	}
	if p.Intercept != nil {
		fmt.Fprintf(tw, "  (intercept)\t%.6g\t\t\t%.6g\n", *p.Intercept, p.RawOffset)
	}
	tw.Flush()
	if len(c.Metrics) > 0 {
		last := c.Metrics[len(c.Metrics)-1]
		fmt.Fprintf(w, "  epoch %d: ‖own gradient‖ %.3g", last.Epoch, last.GradNorm)
		if last.ValLoss != nil {
			fmt.Fprintf(w, ", validation loss %.5f (epoch 1: %.5f)", *last.ValLoss, derefOr(c.Metrics[0].ValLoss))
		}
		if last.TrainLoss != nil {
			fmt.Fprintf(w, ", training loss %.5f (epoch 1: %.5f)", *last.TrainLoss, derefOr(c.Metrics[0].TrainLoss))
		}
		if last.ValAUC != nil {
			fmt.Fprintf(w, ", validation AUC %.4f (epoch 1: %.4f)", *last.ValAUC, derefOr(c.Metrics[0].ValAUC))
		}
		fmt.Fprintln(w)
	}
}

func derefOr(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}
