package node

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestRunSidePanic: a panicking job side fails the job with an internal
// error; the log says where, not the panic's value.
func TestRunSidePanic(t *testing.T) {
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	res, err := runSide(t.Context(), log, "job-1", func() (any, error) {
		panic(errors.New("secret-value-42")) // a bug whose value carries data
	})
	if res != nil || err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("result %v, err %v", res, err)
	}
	out := logBuf.String()
	if !strings.Contains(out, "TestRunSidePanic") || strings.Contains(out, "secret-value-42") {
		t.Errorf("log: %s", out)
	}
	want := errors.New("job error")
	if res, err := runSide(t.Context(), log, "job-2", func() (any, error) { return 7, want }); res != 7 || err != want {
		t.Errorf("no panic: %v %v", res, err)
	}
}
