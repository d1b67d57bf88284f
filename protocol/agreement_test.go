package protocol

import (
	"strings"
	"testing"
	"time"
)

// TestParseAgreementYAML: every field's bad value is refused with the
// field named; score_release reaches the signed agreement.
func TestParseAgreementYAML(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	const base = "purpose: cards\njob_kinds: [psi, score]\nvalid_days: 30\n"
	a, err := ParseAgreementYAML([]byte(base+"score_release: bands\n"), "bank", "partner-a", now)
	if err != nil || a.ScoreRelease != "bands" || a.ExpiresUnix != now.AddDate(0, 0, 30).Unix() {
		t.Fatalf("agreement %v, %v", a, err)
	}
	if a, err := ParseAgreementYAML([]byte(base), "bank", "partner-a", now); err != nil || a.ScoreRelease != "" {
		t.Fatalf("default score_release %q, %v", a.GetScoreRelease(), err)
	}
	for _, tc := range []struct{ yaml, field string }{
		{base + "score_release: everything\n", "score_release"},
		{strings.Replace(base, "score]", "scoring]", 1), "job_kinds"},
		{base + "psi_reveal: [all]\n", "psi_reveal"},
		{base + "min_cell_size: -1\n", "min_cell_size"},
		{base + "dp_epsilon_budget: -0.5\n", "dp_epsilon_budget"},
		{base + "expires: 2026-01-01T00:00:00Z\n", "expires"},
		{"job_kinds: [psi]\nvalid_days: 3\n", "purpose"},
		{base + "score_releases: bands\n", "score_releases"}, // unknown field
	} {
		_, err := ParseAgreementYAML([]byte(tc.yaml), "bank", "partner-a", now)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%q: got %v, want an error naming %s", tc.yaml, err, tc.field)
		}
	}
}
