package node

import (
	"context"
	"fmt"
	"time"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

// frameStream is what gRPC's client and server Exchange streams share.
type frameStream interface {
	Send(*tandemv1.Frame) error
	Recv() (*tandemv1.Frame, error)
}

// streamTransport adapts one Exchange stream to protocol.Transport. A
// single reader goroutine pulls frames into a small buffer, so back-pressure
// is gRPC's flow control and every Recv has a per-chunk deadline.
type streamTransport struct {
	s      frameStream
	jobID  string
	idle   time.Duration
	frames chan *tandemv1.Frame
	errc   chan error
	done   chan struct{}
	m      *metrics
}

// chunkDeadline is how long a job waits for the peer's next frame.
const chunkDeadline = 2 * time.Minute

func newStreamTransport(s frameStream, jobID string, m *metrics) *streamTransport {
	t := &streamTransport{s: s, jobID: jobID, idle: chunkDeadline, frames: make(chan *tandemv1.Frame, 4), errc: make(chan error, 1), done: make(chan struct{}), m: m}
	go t.pump()
	return t
}

func (t *streamTransport) pump() {
	for {
		f, err := t.s.Recv()
		if err != nil {
			t.errc <- err
			close(t.frames)
			return
		}
		select {
		case t.frames <- f:
		case <-t.done:
			return
		}
	}
}

// close releases the reader goroutine once the job is done with the stream.
func (t *streamTransport) close() { close(t.done) }

func (t *streamTransport) Send(ctx context.Context, m protocol.Msg) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(m.Payload) > protocol.MaxPayload {
		return fmt.Errorf("node: frame payload %d bytes exceeds %d", len(m.Payload), protocol.MaxPayload)
	}
	t.m.peerBytes.WithLabelValues("sent").Add(float64(len(m.Payload)))
	return t.s.Send(&tandemv1.Frame{JobId: t.jobID, Step: m.Step, Seq: m.Seq, Payload: m.Payload, Last: m.Last, Total: m.Total})
}

func (t *streamTransport) Recv(ctx context.Context) (protocol.Msg, error) {
	timer := time.NewTimer(t.idle)
	defer timer.Stop()
	select {
	case f, ok := <-t.frames:
		if !ok {
			return protocol.Msg{}, fmt.Errorf("node: peer stream ended: %w", <-t.errc)
		}
		if f.JobId != "" && f.JobId != t.jobID {
			return protocol.Msg{}, fmt.Errorf("%w: frame for another job", protocol.ErrUnexpected)
		}
		t.m.peerBytes.WithLabelValues("received").Add(float64(len(f.Payload)))
		return protocol.Msg{Step: f.Step, Seq: f.Seq, Payload: f.Payload, Last: f.Last, Total: f.Total}, nil
	case <-ctx.Done():
		return protocol.Msg{}, ctx.Err()
	case <-timer.C:
		return protocol.Msg{}, fmt.Errorf("node: no frame from peer within %s", t.idle)
	}
}
