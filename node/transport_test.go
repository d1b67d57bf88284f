package node

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

// chanStream is one end of an in-memory frame stream.
type chanStream struct {
	in, out chan *tandemv1.Frame
}

func (c chanStream) Send(f *tandemv1.Frame) error { c.out <- f; return nil }
func (c chanStream) Recv() (*tandemv1.Frame, error) {
	f, ok := <-c.in
	if !ok {
		return nil, io.EOF
	}
	return f, nil
}

// TestTransportHeartbeat: a peer that computes for longer than the
// per-frame deadline without sending data stays alive through heartbeats
// (which the protocol never sees), while a peer that goes silent is
// detected within the deadline.
func TestTransportHeartbeat(t *testing.T) {
	ab, ba := make(chan *tandemv1.Frame, 64), make(chan *tandemv1.Frame, 64)
	m := newMetrics()
	const idle, beat = 300 * time.Millisecond, 60 * time.Millisecond
	a := startStreamTransport(chanStream{in: ba, out: ab}, "job-1", m, idle, beat)
	b := startStreamTransport(chanStream{in: ab, out: ba}, "job-1", m, idle, beat)
	ctx := context.Background()

	// b is "busy" for 3 deadlines, then sends; a must still receive it.
	go func() {
		time.Sleep(3 * idle)
		b.Send(ctx, protocol.Msg{Step: "psi.r_elems", Payload: []byte("x"), Last: true})
	}()
	got, err := a.Recv(ctx)
	if err != nil || got.Step != "psi.r_elems" {
		t.Fatalf("Recv across a long silence with heartbeats: got %+v, %v", got, err)
	}

	// b dies (no more heartbeats): a's next Recv fails within the deadline.
	b.close()
	time.Sleep(beat) // let b's heartbeat goroutine stop
	for len(ab) > 0 {
		<-ab
	}
	start := time.Now()
	_, err = a.Recv(ctx)
	if err == nil || !strings.Contains(err.Error(), "no frame or heartbeat") {
		t.Fatalf("Recv from a dead peer: got %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 3*idle {
		t.Fatalf("dead peer detected after %s, want about %s", d, idle)
	}
	a.close()
}
