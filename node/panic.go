package node

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
)

// runSide runs one side of a job (a kind's initiate or respond) and turns
// a panic, which is a bug, into the job's failure: one job's bug must not
// stop the node and every other job with it. The log gets where it
// happened (functions, files, lines) but not the panic's value nor the
// stack's argument words, which may hold data or key material. Panics in
// goroutines a kind starts itself are not caught here.
func runSide(ctx context.Context, log *slog.Logger, jobID string, side func() (any, error)) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			log.ErrorContext(ctx, "job failed on an internal error", "job", jobID, "where", callers(3))
			result, err = nil, fmt.Errorf("node: job %s: internal error (see the node log)", jobID)
		}
	}()
	return side()
}

// callers lists the calling functions with file and line, innermost first,
// skipping skip frames.
func callers(skip int) string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(skip, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var b strings.Builder
	for {
		f, more := frames.Next()
		fmt.Fprintf(&b, "%s (%s:%d); ", f.Function, f.File, f.Line)
		if !more {
			break
		}
	}
	return b.String()
}
