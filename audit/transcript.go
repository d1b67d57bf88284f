package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// Direction is the absolute direction of a protocol message, so that both
// parties compute the same transcript digest.
type Direction uint8

// Message directions.
const (
	FromInitiator Direction = 1 // sent by the node that proposed the job
	FromResponder Direction = 2 // sent by the accepting node
)

const transcriptMagic = "tandem/audit/transcript\x00\x01"

// Transcript is a running SHA-256 over the protocol messages of one job, in
// order. Each message is absorbed as direction (1 byte) || length (8 bytes,
// big-endian) || message, after a domain-separation header that binds the
// protocol label. A Transcript is not safe for concurrent use.
type Transcript struct {
	h hash.Hash
	n uint64
}

// NewTranscript starts a transcript for the named protocol (e.g. "psi/v1").
func NewTranscript(protocol string) *Transcript {
	h := sha256.New()
	h.Write([]byte(transcriptMagic))
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(protocol)))
	h.Write(l[:])
	h.Write([]byte(protocol))
	return &Transcript{h: h}
}

// Add absorbs one message.
func (t *Transcript) Add(dir Direction, msg []byte) {
	var hdr [9]byte
	hdr[0] = byte(dir)
	binary.BigEndian.PutUint64(hdr[1:], uint64(len(msg)))
	t.h.Write(hdr[:])
	t.h.Write(msg)
	t.n++
}

// Len returns the number of messages absorbed.
func (t *Transcript) Len() uint64 { return t.n }

// Sum returns the digest of the messages so far, bound to their count; the
// transcript can keep absorbing afterwards.
func (t *Transcript) Sum() [32]byte {
	var out [32]byte
	var cnt [8]byte
	binary.BigEndian.PutUint64(cnt[:], t.n)
	// hash.Hash.Sum does not disturb the running state.
	b := t.h.Sum(nil)
	final := sha256.New()
	final.Write([]byte("tandem/audit/transcript-final\x00"))
	final.Write(b)
	final.Write(cnt[:])
	final.Sum(out[:0])
	return out
}
