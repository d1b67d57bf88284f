package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
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
// is gRPC's flow control, and every Recv has a per-chunk deadline.
//
// A peer may compute for a long time without sending protocol data (a PSI
// responder hashes and sorts its whole set before its first element goes
// out: 15 minutes at 1e7 rows). So each side also sends a heartbeat frame
// whenever it has sent nothing for heartbeatEvery; heartbeats are transport
// only (never seen by the protocol, not in the transcript) and reset the
// peer's deadline, which therefore detects a dead or stuck peer, not a busy
// one.
type streamTransport struct {
	s      frameStream
	jobID  string
	idle   time.Duration // per-frame deadline
	beat   time.Duration // heartbeat interval
	frames chan *tandemv1.Frame
	alive  chan struct{} // a heartbeat arrived
	errc   chan error
	ended  chan struct{} // closed when the reader saw the stream end; endErr is then set
	endErr error
	done   chan struct{}
	m      *metrics

	mu       sync.Mutex // one sender at a time on the gRPC stream
	lastSend time.Time
}

// chunkDeadline is how long a job waits for the peer's next frame or
// heartbeat; heartbeatEvery is how often an otherwise silent side sends one.
const (
	chunkDeadline  = 2 * time.Minute
	heartbeatEvery = 20 * time.Second
	heartbeatStep  = "_heartbeat"
)

func newStreamTransport(s frameStream, jobID string, m *metrics) *streamTransport {
	return startStreamTransport(s, jobID, m, chunkDeadline, heartbeatEvery)
}

func startStreamTransport(s frameStream, jobID string, m *metrics, idle, beat time.Duration) *streamTransport {
	t := &streamTransport{s: s, jobID: jobID, idle: idle, beat: beat, frames: make(chan *tandemv1.Frame, 4), alive: make(chan struct{}, 1),
		errc: make(chan error, 1), ended: make(chan struct{}), done: make(chan struct{}), m: m, lastSend: time.Now()}
	go t.pump()
	go t.heartbeat()
	return t
}

func (t *streamTransport) pump() {
	for {
		f, err := t.s.Recv()
		if err != nil {
			t.endErr = err
			close(t.ended)
			t.errc <- err
			close(t.frames)
			return
		}
		if f.Step == heartbeatStep {
			select {
			case t.alive <- struct{}{}:
			default:
			}
			continue
		}
		select {
		case t.frames <- f:
		case <-t.done:
			return
		}
	}
}

func (t *streamTransport) heartbeat() {
	tick := time.NewTicker(t.beat / 4)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-tick.C:
			t.mu.Lock()
			if time.Since(t.lastSend) >= t.beat {
				t.lastSend = time.Now()
				if t.s.Send(&tandemv1.Frame{JobId: t.jobID, Step: heartbeatStep}) != nil {
					t.mu.Unlock()
					return
				}
			}
			t.mu.Unlock()
		}
	}
}

// close releases the reader and heartbeat goroutines once the job is done
// with the stream.
func (t *streamTransport) close() { close(t.done) }

func (t *streamTransport) Send(ctx context.Context, m protocol.Msg) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(m.Payload) > protocol.MaxPayload {
		return fmt.Errorf("node: frame payload %d bytes exceeds %d", len(m.Payload), protocol.MaxPayload)
	}
	t.m.peerBytes.WithLabelValues("sent").Add(float64(len(m.Payload)))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastSend = time.Now()
	err := t.s.Send(&tandemv1.Frame{JobId: t.jobID, Step: m.Step, Seq: m.Seq, Payload: m.Payload, Last: m.Last, Total: m.Total})
	if errors.Is(err, io.EOF) {
		// gRPC reports a stream the peer ended as a bare EOF on Send;
		// the peer's status (why it stopped) arrives on the reader.
		select {
		case <-t.ended:
			return fmt.Errorf("node: peer stream ended: %w", t.endErr)
		case <-time.After(5 * time.Second):
		}
	}
	return err
}

func (t *streamTransport) Recv(ctx context.Context) (protocol.Msg, error) {
	timer := time.NewTimer(t.idle)
	defer timer.Stop()
	for {
		select {
		case <-t.alive:
			timer.Reset(t.idle) // the peer is busy, not gone
			continue
		case f, ok := <-t.frames:
			return t.frame(f, ok)
		case <-ctx.Done():
			return protocol.Msg{}, ctx.Err()
		case <-timer.C:
			return protocol.Msg{}, fmt.Errorf("node: no frame or heartbeat from peer within %s", t.idle)
		}
	}
}

func (t *streamTransport) frame(f *tandemv1.Frame, ok bool) (protocol.Msg, error) {
	if !ok {
		return protocol.Msg{}, fmt.Errorf("node: peer stream ended: %w", <-t.errc)
	}
	if f.JobId != "" && f.JobId != t.jobID {
		return protocol.Msg{}, fmt.Errorf("%w: frame for another job", protocol.ErrUnexpected)
	}
	t.m.peerBytes.WithLabelValues("received").Add(float64(len(f.Payload)))
	return protocol.Msg{Step: f.Step, Seq: f.Seq, Payload: f.Payload, Last: f.Last, Total: f.Total}, nil
}
