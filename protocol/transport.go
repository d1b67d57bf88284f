package protocol

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"

	"lukechampine.com/blake3"
)

// MaxPayload is the largest payload of one message. Large vectors are split
// across messages so no gRPC message exceeds the 4 MiB limit whatever the
// data size.
const MaxPayload = 1 << 20

// Msg is one protocol message between the two nodes of a job.
type Msg struct {
	Step    string // protocol step, e.g. "psi.initiator_elements"
	Seq     uint64 // message number within the step
	Payload []byte // ≤ MaxPayload
	Last    bool   // last message of the step
	Total   uint64 // items in the whole step, when known (progress)
}

// Transport carries a job's messages to the peer and back. The node
// implements it over a gRPC stream; tests use an in-memory pipe. Send and
// Recv may be called from different goroutines, but each from one only.
type Transport interface {
	Send(ctx context.Context, m Msg) error
	Recv(ctx context.Context) (Msg, error)
}

// Recycler is implemented by a Transport whose received payloads come
// from a pool: a receiver that has copied a payload out, and keeps no
// reference to it, hands it back with Recycle. Other receivers need not
// (an unrecycled payload is garbage collected). Receiving 1 GB of OT
// tables into fresh memory cost the partner more CPU than answering them.
type Recycler interface {
	Recycle(payload []byte)
}

// recycle hands p back to t if t pools its payloads.
func recycle(t Transport, p []byte) {
	if r, ok := t.(Recycler); ok {
		r.Recycle(p)
	}
}

// ErrUnexpected is returned when the peer sends a message out of protocol
// order; the job fails and must be restarted.
var ErrUnexpected = errors.New("protocol: unexpected message")

// outOfOrder is the error for a message other than the one the protocol
// expects next. Short of a peer that deviates, the cause an operator can
// act on is two nodes of different releases whose protocols differ: the
// error says so.
func outOfOrder(m Msg, step string, seq uint64) error {
	return fmt.Errorf("%w: got %s#%d, want %s#%d (the peer deviates from the protocol, or its Tandem release speaks another version of it)",
		ErrUnexpected, m.Step, m.Seq, step, seq)
}

// expect receives the next message and checks its step and sequence.
func expect(ctx context.Context, t Transport, step string, seq uint64) (Msg, error) {
	m, err := t.Recv(ctx)
	if err != nil {
		return Msg{}, err
	}
	if m.Step != step || m.Seq != seq {
		return Msg{}, outOfOrder(m, step, seq)
	}
	if len(m.Payload) > MaxPayload {
		return Msg{}, fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrUnexpected, len(m.Payload), MaxPayload)
	}
	return m, nil
}

// Transcript wraps a Transport and hashes every message, one running hash
// per direction (initiator→responder, responder→initiator), so both nodes
// compute the same transcript digest for their co-signed receipt: the two
// directions interleave differently on each side, but each direction's
// order is the same on both. Send is safe to call from several goroutines.
//
// The running hashes are BLAKE3 (lukechampine.com/blake3), 5.2 GB/s here
// against SHA-256's 1.75 with the SHA extensions: a training epoch at 1e6
// rows moves ≈ 390 MB, and hashing it with SHA-256 on both nodes, on the
// path of every message, was the largest cost of the job outside the
// cryptography (≈ 0.4 CPU-s an epoch). The final digest stays SHA-256.
type Transcript struct {
	t         Transport
	jobID     string
	initiator bool
	mu        sync.Mutex // serialises Send (gRPC streams allow one sender)
	hI, hR    hash.Hash
	sent      int64 // bytes of payload sent
}

// NewTranscript wraps t. initiator tells which side this node is.
func NewTranscript(t Transport, jobID string, initiator bool) *Transcript {
	return &Transcript{t: t, jobID: jobID, initiator: initiator, hI: blake3.New(32, nil), hR: blake3.New(32, nil)}
}

func (tr *Transcript) record(fromInitiator bool, m Msg) {
	var hdr [1 + 8 + 8 + 8 + 1]byte
	h := tr.hR
	if fromInitiator {
		hdr[0], h = 'I', tr.hI
	} else {
		hdr[0] = 'R'
	}
	binary.BigEndian.PutUint64(hdr[1:], uint64(len(m.Step)))
	binary.BigEndian.PutUint64(hdr[9:], m.Seq)
	binary.BigEndian.PutUint64(hdr[17:], uint64(len(m.Payload)))
	if m.Last {
		hdr[25] = 1
	}
	h.Write(hdr[:])
	h.Write([]byte(m.Step))
	h.Write(m.Payload)
}

// Send records and forwards m.
func (tr *Transcript) Send(ctx context.Context, m Msg) error {
	if len(m.Payload) > MaxPayload {
		return fmt.Errorf("protocol: payload of %d bytes exceeds %d", len(m.Payload), MaxPayload)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.record(tr.initiator, m)
	tr.sent += int64(len(m.Payload))
	return tr.t.Send(ctx, m)
}

// Recv receives and records a message.
func (tr *Transcript) Recv(ctx context.Context) (Msg, error) {
	m, err := tr.t.Recv(ctx)
	if err != nil {
		return m, err
	}
	tr.mu.Lock()
	tr.record(!tr.initiator, m)
	tr.mu.Unlock()
	return m, nil
}

// Recycle passes a received payload back to the wrapped transport, if it
// pools them (see Recycler).
func (tr *Transcript) Recycle(p []byte) { recycle(tr.t, p) }

// Digest is SHA-256("tandem/v2 transcript\n" ‖ job ‖ "\n" ‖ H(I→R) ‖ H(R→I)),
// H = BLAKE3-256 over each direction's framed messages (v1 used SHA-256
// there).
// Call it when the protocol is done.
func (tr *Transcript) Digest() []byte {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	h := sha256.New()
	h.Write([]byte("tandem/v2 transcript\n" + tr.jobID + "\n"))
	h.Write(tr.hI.Sum(nil))
	h.Write(tr.hR.Sum(nil))
	return h.Sum(nil)
}

// BytesSent is the payload bytes this side sent.
func (tr *Transcript) BytesSent() int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.sent
}
