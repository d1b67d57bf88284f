package node

import (
	"testing"
)

// TestConfigChangeRecorded: a config edited while the node was down is
// recorded as config_change in the root log when it starts again.
func TestConfigChangeRecorded(t *testing.T) {
	tn := newTestNode(t, "bank")
	tn.start()
	tn.stop()
	cfg, err := LoadConfig(tn.dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LogLevel = "debug"
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	tn.start()
	defer tn.stop()
	size, err := tn.n.audit.Size(rootLog)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := tn.n.audit.Entries(rootLog, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Kind == "config_change" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("config_change entries after one edit: got %d, want 1", n)
	}
}
