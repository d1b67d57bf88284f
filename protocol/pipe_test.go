package protocol

import (
	"context"
	"sync"
)

// pipe is an in-memory Transport pair for protocol tests; it also records
// every message each side sends, for privacy checks (quiet: only counts
// the payload bytes, for benchmarks).
type pipe struct {
	in, out chan Msg
	mu      sync.Mutex
	sent    []Msg
	quiet   bool
	bytes   int
	// edit, if set, rewrites each blob this side sends (its pieces
	// joined; the result must keep the length): a peer that deviates.
	edit    func(step string, blob []byte) []byte
	emu     sync.Mutex // serialises the edited sends
	pending []Msg      // the pieces of a blob being edited
}

func newPipe() (*pipe, *pipe) {
	a, b := make(chan Msg, 8), make(chan Msg, 8)
	return &pipe{in: a, out: b}, &pipe{in: b, out: a}
}

func (p *pipe) Send(ctx context.Context, m Msg) error {
	m.Payload = append([]byte(nil), m.Payload...) // the sender may reuse its buffer, as over gRPC
	if p.edit != nil {
		p.emu.Lock()
		defer p.emu.Unlock()
		p.pending = append(p.pending, m)
		if !m.Last {
			return nil
		}
		var blob []byte
		for _, q := range p.pending {
			blob = append(blob, q.Payload...)
		}
		blob = p.edit(m.Step, blob)
		pieces := p.pending
		p.pending = nil
		for _, q := range pieces {
			q.Payload, blob = blob[:len(q.Payload)], blob[len(q.Payload):]
			if err := p.send(ctx, q); err != nil {
				return err
			}
		}
		return nil
	}
	return p.send(ctx, m)
}

func (p *pipe) send(ctx context.Context, m Msg) error {
	p.mu.Lock()
	p.bytes += len(m.Payload)
	if !p.quiet {
		p.sent = append(p.sent, m)
	}
	p.mu.Unlock()
	select {
	case p.out <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pipe) Recv(ctx context.Context) (Msg, error) {
	select {
	case m := <-p.in:
		return m, nil
	case <-ctx.Done():
		return Msg{}, ctx.Err()
	}
}
