package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/protocol"
)

func TestPrintStatsTable(t *testing.T) {
	v := 12.5
	st := &protocol.StatsResult{Length: 100, Matched: 40, GroupBy: "has_card", MinCellSize: 5, Cells: []protocol.StatsCell{
		{Column: "monthly_spend", Statistic: "mean", Group: "1", Value: &v, Rows: 30, Noise: &protocol.StatsNoise{Mechanism: "laplace", Epsilon: 0.5, Scale: 2}},
		{Column: "monthly_spend", Statistic: "count", Group: "0", Suppressed: true},
	}}
	var b bytes.Buffer
	printStatsTable(&b, st, nil)
	out := b.String()
	for _, want := range []string{"matched rows 40 of 100", "12.5", "suppressed", "<k", "laplace b=2 ε=0.5"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
