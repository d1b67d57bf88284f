package ot

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/ot/simot"
)

// The base OTs: CodeBits runs of circl's simplest OT over ristretto255,
// in three messages (A from the extension Receiver, B back, then the
// encrypted seeds). The extension Receiver is the base sender of two
// random seeds per column; the extension Sender chooses one of them by
// bit j of its secret s.

const (
	seedBytes    = 16
	elementBytes = 32                  // a ristretto255 element
	sealedBytes  = 12 + seedBytes + 16 // circl's AES-GCM: nonce, seed, tag
)

// Sizes of the three base-OT messages.
const (
	BaseAMsgBytes = CodeBits * elementBytes
	BaseBMsgBytes = CodeBits * elementBytes
	BaseEMsgBytes = CodeBits * 2 * sealedBytes
)

// ErrMessage is wrapped by every error about a malformed peer message.
var ErrMessage = errors.New("ot: malformed message")

var curve = group.Ristretto255

// BaseSender is the extension Receiver's side of the base OTs.
type BaseSender struct {
	ots   [CodeBits]simot.Sender
	seeds [CodeBits][2][seedBytes]byte
	done  bool
}

// NewBaseSender draws the seed pairs from rand and returns the first
// message (A).
func NewBaseSender(rand io.Reader) (*BaseSender, []byte, error) {
	b := &BaseSender{}
	msg := make([]byte, 0, BaseAMsgBytes)
	for j := range CodeBits {
		if _, err := io.ReadFull(rand, b.seeds[j][0][:]); err != nil {
			return nil, nil, fmt.Errorf("ot: base seeds: %w", err)
		}
		if _, err := io.ReadFull(rand, b.seeds[j][1][:]); err != nil {
			return nil, nil, fmt.Errorf("ot: base seeds: %w", err)
		}
		A := b.ots[j].InitSender(curve, b.seeds[j][0][:], b.seeds[j][1][:], j)
		enc, err := A.MarshalBinary()
		if err != nil {
			return nil, nil, fmt.Errorf("ot: base A: %w", err)
		}
		msg = append(msg, enc...)
	}
	return b, msg, nil
}

// Respond takes the extension Sender's message B and returns the sealed
// seeds (E). It may be called once.
func (b *BaseSender) Respond(msgB []byte) ([]byte, error) {
	if b.done {
		return nil, errors.New("ot: base OTs already answered")
	}
	Bs, err := decodeElements(msgB, "B")
	if err != nil {
		return nil, err
	}
	b.done = true
	msg := make([]byte, 0, BaseEMsgBytes)
	for j := range CodeBits {
		e0, e1 := b.ots[j].Round2Sender(Bs[j])
		if len(e0) != sealedBytes || len(e1) != sealedBytes {
			return nil, fmt.Errorf("ot: base OT %d sealed %d and %d bytes, want %d", j, len(e0), len(e1), sealedBytes)
		}
		msg = append(append(msg, e0...), e1...)
	}
	return msg, nil
}

// Receiver returns the extension Receiver built on the seeds; call it
// after Respond.
func (b *BaseSender) Receiver() (*Receiver, error) {
	if !b.done {
		return nil, errors.New("ot: base OTs not answered yet")
	}
	return newReceiver(&b.seeds)
}

// BaseReceiver is the extension Sender's side of the base OTs.
type BaseReceiver struct {
	ots    [CodeBits]simot.Receiver
	s      row
	seeds  [CodeBits][seedBytes]byte
	chosen bool
	done   bool
}

// NewBaseReceiver draws the secret s from rand, takes the extension
// Receiver's message A and returns the message B.
func NewBaseReceiver(rand io.Reader, msgA []byte) (*BaseReceiver, []byte, error) {
	As, err := decodeElements(msgA, "A")
	if err != nil {
		return nil, nil, err
	}
	b := &BaseReceiver{}
	var sb [CodeBits / 8]byte
	if _, err := io.ReadFull(rand, sb[:]); err != nil {
		return nil, nil, fmt.Errorf("ot: base choices: %w", err)
	}
	msg := make([]byte, 0, BaseBMsgBytes)
	for j := range CodeBits {
		bit := int(sb[j/8]>>(j%8)) & 1
		b.s[j/64] |= uint64(bit) << (j % 64)
		B := b.ots[j].Round1Receiver(curve, bit, j, As[j])
		enc, err := B.MarshalBinary()
		if err != nil {
			return nil, nil, fmt.Errorf("ot: base B: %w", err)
		}
		msg = append(msg, enc...)
	}
	b.chosen = true
	return b, msg, nil
}

// Finish opens the chosen seeds from the message E.
func (b *BaseReceiver) Finish(msgE []byte) error {
	if b.done {
		return errors.New("ot: base OTs already finished")
	}
	if len(msgE) != BaseEMsgBytes {
		return fmt.Errorf("%w: base E of %d bytes, want %d", ErrMessage, len(msgE), BaseEMsgBytes)
	}
	for j := range CodeBits {
		e := msgE[j*2*sealedBytes:]
		bit := int(b.s[j/64]>>(j%64)) & 1
		if err := b.ots[j].Round3Receiver(e[:sealedBytes], e[sealedBytes:2*sealedBytes], bit); err != nil {
			return fmt.Errorf("%w: base OT %d does not open", ErrMessage, j)
		}
		seed := b.ots[j].Returnmc()
		if len(seed) != seedBytes {
			return fmt.Errorf("%w: base OT %d opens to %d bytes", ErrMessage, j, len(seed))
		}
		subtle.ConstantTimeCopy(1, b.seeds[j][:], seed)
	}
	b.done = true
	return nil
}

// Sender returns the extension Sender built on the chosen seeds; call it
// after Finish.
func (b *BaseReceiver) Sender() (*Sender, error) {
	if !b.done {
		return nil, errors.New("ot: base OTs not finished yet")
	}
	return newSender(b.s, &b.seeds)
}

// LocalPair runs both sides of the base OTs in one process and returns
// both extension sides: for tests and benchmarks (a job runs the base OTs
// between two nodes, protocol/score_bands.go).
func LocalPair(rand io.Reader) (*Receiver, *Sender, error) {
	bs, a, err := NewBaseSender(rand)
	if err != nil {
		return nil, nil, err
	}
	br, b, err := NewBaseReceiver(rand, a)
	if err != nil {
		return nil, nil, err
	}
	e, err := bs.Respond(b)
	if err != nil {
		return nil, nil, err
	}
	if err := br.Finish(e); err != nil {
		return nil, nil, err
	}
	rcv, err := bs.Receiver()
	if err != nil {
		return nil, nil, err
	}
	snd, err := br.Sender()
	return rcv, snd, err
}

func decodeElements(msg []byte, what string) ([]group.Element, error) {
	if len(msg) != CodeBits*elementBytes {
		return nil, fmt.Errorf("%w: base %s of %d bytes, want %d", ErrMessage, what, len(msg), CodeBits*elementBytes)
	}
	out := make([]group.Element, CodeBits)
	for j := range out {
		out[j] = curve.NewElement()
		if err := out[j].UnmarshalBinary(msg[j*elementBytes : (j+1)*elementBytes]); err != nil {
			return nil, fmt.Errorf("%w: base %s element %d is not a ristretto255 point", ErrMessage, what, j)
		}
		if out[j].IsIdentity() {
			return nil, fmt.Errorf("%w: base %s element %d is the identity", ErrMessage, what, j)
		}
	}
	return out, nil
}
