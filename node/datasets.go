package node

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/tandem-dev/tandem/node/dataset"
	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// datasetRecord is a registered dataset as stored under "ds/<name>".
type datasetRecord struct {
	Spec       datasetSpec      `json:"spec"`
	Profile    *dataset.Profile `json:"profile"`
	Registered int64            `json:"registered_unix"`
}

// datasetSpec is the stored form of dataset.Spec (kinds by name).
type datasetSpec struct {
	Name     string   `json:"name"`
	File     string   `json:"file"`
	IDs      string   `json:"ids"`
	Label    string   `json:"label,omitempty"`
	Features []string `json:"features,omitempty"`
	Attrs    []string `json:"attrs,omitempty"`
	Consent  string   `json:"consent,omitempty"`
}

func (s datasetSpec) spec() (dataset.Spec, error) {
	ids, err := dataset.ParseIDFlag(s.IDs)
	if err != nil {
		return dataset.Spec{}, err
	}
	return dataset.Spec{Name: s.Name, File: s.File, IDs: ids, Label: s.Label, Features: s.Features, Attrs: s.Attrs, Consent: s.Consent}, nil
}

// addDataset validates and profiles a file and registers it. Re-adding a
// name replaces the registration (a new version with a new digest); the
// audit log keeps both.
func (n *Node) addDataset(ctx context.Context, req *tandemv1.AddDatasetRequest, role string) (*datasetRecord, error) {
	if !nameRE.MatchString(req.Name) {
		return nil, fmt.Errorf("%w: dataset name %q must match %s", errInvalid, req.Name, nameRE)
	}
	if !filepath.IsAbs(req.File) {
		return nil, fmt.Errorf("%w: dataset file must be an absolute path", errInvalid)
	}
	ds := datasetSpec{Name: req.Name, File: req.File, IDs: req.Ids, Label: req.Label, Features: req.Features, Attrs: req.Attrs, Consent: req.Consent}
	spec, err := ds.spec()
	if err != nil {
		return nil, fmt.Errorf("%w: --id: %v", errInvalid, err)
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalid, err)
	}
	prof, err := dataset.Scan(ctx, spec, nil)
	// Scanning a large file is a one-off peak (8 bytes per identifier for
	// the duplicate count); give that memory back before jobs run.
	debug.FreeOSMemory()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalid, err)
	}
	rec := &datasetRecord{Spec: ds, Profile: prof, Registered: time.Now().Unix()}
	if err := n.st.putJSON("ds/"+req.Name, rec); err != nil {
		return nil, err
	}
	n.log.InfoContext(ctx, "dataset registered", "dataset", req.Name, "rows", prof.Rows, "digest", prof.Digest)
	n.record(ctx, event{Kind: "dataset_registered", Actor: "operator:" + role, Detail: fmt.Sprintf("%s rows=%d digest=%s", req.Name, prof.Rows, prof.Digest)})
	return rec, nil
}

func (n *Node) dataset(name string) (*datasetRecord, error) {
	var r datasetRecord
	if err := n.st.getJSON("ds/"+name, &r); err != nil {
		return nil, fmt.Errorf("%w: dataset %s", err, name)
	}
	return &r, nil
}

func (n *Node) datasets() ([]*datasetRecord, error) {
	var out []*datasetRecord
	err := n.st.scan("ds/", func(_ string, b []byte) error {
		var r datasetRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		out = append(out, &r)
		return nil
	})
	return out, err
}

func (r *datasetRecord) info() *tandemv1.DatasetInfo {
	prof, _ := json.Marshal(r.Profile)
	return &tandemv1.DatasetInfo{Name: r.Spec.Name, File: r.Spec.File, Rows: r.Profile.Rows, Digest: r.Profile.Digest, ProfileJson: prof, RegisteredUnix: r.Registered}
}

func (s *controlServer) AddDataset(ctx context.Context, req *tandemv1.AddDatasetRequest) (*tandemv1.DatasetInfo, error) {
	rec, err := s.n.addDataset(ctx, req, callerRole(ctx))
	if err != nil {
		s.n.metrics.badInput.WithLabelValues("dataset").Inc()
		return nil, toStatus(err)
	}
	return rec.info(), nil
}

func (s *controlServer) ListDatasets(ctx context.Context, _ *tandemv1.ListDatasetsRequest) (*tandemv1.ListDatasetsResponse, error) {
	all, err := s.n.datasets()
	if err != nil {
		return nil, toStatus(err)
	}
	out := &tandemv1.ListDatasetsResponse{}
	for _, r := range all {
		out.Datasets = append(out.Datasets, r.info())
	}
	return out, nil
}

func (s *controlServer) GetDataset(ctx context.Context, req *tandemv1.GetDatasetRequest) (*tandemv1.DatasetInfo, error) {
	r, err := s.n.dataset(req.Name)
	if err != nil {
		return nil, toStatus(err)
	}
	return r.info(), nil
}

// idColumns names the dataset's id columns.
func idColumns(spec dataset.Spec) []string {
	ids := make([]string, len(spec.IDs))
	for i, c := range spec.IDs {
		ids[i] = c.Column
	}
	return ids
}
