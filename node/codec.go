package node

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec this one wraps
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

// frameCodec is the peer service's gRPC codec: protobuf, as gRPC's own,
// except for the Frame, which carries every protocol message. gRPC's codec
// decodes a frame's payload into a fresh allocation (proto.Unmarshal) and
// encodes frames over 1 MiB into fresh, zeroed buffers; a bands-only score
// job at 1e6 rows receives 1.2 GB of payloads, and on this machine those
// copies into new memory cost the partner 0.9 CPU-seconds, more than
// answering the OT tables. Here a large payload is read straight from
// gRPC's received buffers into a reused one, which protocol code that has
// copied it out hands back (protocol.Recycler), and a large frame is
// encoded into a reused buffer that gRPC hands back once it is sent. The
// wire format is unchanged: a peer on gRPC's codec reads and writes the
// same bytes.
type frameCodec struct{ proto encoding.CodecV2 }

func newFrameCodec() frameCodec { return frameCodec{proto: encoding.GetCodecV2("proto")} }

func (c frameCodec) Name() string { return c.proto.Name() }

func (c frameCodec) Marshal(v any) (mem.BufferSlice, error) {
	f, ok := v.(*tandemv1.Frame)
	if !ok || len(f.Payload) <= pooledPayload {
		return c.proto.Marshal(v)
	}
	o := proto.MarshalOptions{UseCachedSize: true}
	b := frames.Get(o.Size(f))
	out, err := o.MarshalAppend((*b)[:0], f)
	if err != nil {
		frames.Put(b)
		return nil, err
	}
	*b = out
	return mem.BufferSlice{mem.NewBuffer(b, frames)}, nil
}

func (c frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*tandemv1.Frame)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	r := data.Reader()
	defer r.Close()
	return decodeFrame(r, r.Remaining(), f)
}

// Frame field numbers (proto/tandem/v1/common.proto).
const (
	frameJobID   = 1
	frameStep    = 2
	frameSeq     = 3
	framePayload = 4
	frameLast    = 5
	frameTotal   = 6
)

var errFrame = errors.New("node: malformed frame")

// frameReader is what decodeFrame reads: gRPC's mem.Reader, or a
// bytes.Reader in tests.
type frameReader interface {
	io.Reader
	io.ByteReader
}

// decodeFrame decodes the n bytes of r as a Frame into f (reset first),
// as proto.Unmarshal would: fields in any order, the last occurrence of a
// field wins, unknown fields and known ones of another wire type are
// skipped, strings must be UTF-8. Groups (deprecated, never written by
// proto3) are refused.
func decodeFrame(r frameReader, n int, f *tandemv1.Frame) error {
	f.Reset()
	left := n
	uvarint := func() (uint64, error) {
		v, k, err := readUvarint(r, left)
		left -= k
		return v, err
	}
	bytesField := func(pooled bool) ([]byte, error) {
		l, err := uvarint()
		if err != nil {
			return nil, err
		}
		if l > uint64(left) {
			return nil, fmt.Errorf("%w: field of %d bytes, %d left", errFrame, l, left)
		}
		var b []byte
		if pooled {
			b = payloadBuffer(int(l))
		} else {
			b = make([]byte, l)
		}
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("%w: %v", errFrame, err)
		}
		left -= int(l)
		return b, nil
	}
	for left > 0 {
		tag, err := uvarint()
		if err != nil {
			return err
		}
		num, typ := tag>>3, tag&7
		if num == 0 || num > 1<<29-1 {
			return fmt.Errorf("%w: field number %d", errFrame, num)
		}
		switch {
		case typ == 2 && (num == frameJobID || num == frameStep):
			b, err := bytesField(false)
			if err != nil {
				return err
			}
			if !utf8.Valid(b) {
				return fmt.Errorf("%w: string field %d is not UTF-8", errFrame, num)
			}
			if num == frameJobID {
				f.JobId = string(b)
			} else {
				f.Step = string(b)
			}
		case typ == 2 && num == framePayload:
			if f.Payload, err = bytesField(true); err != nil {
				return err
			}
		case typ == 0:
			v, err := uvarint()
			if err != nil {
				return err
			}
			switch num {
			case frameSeq:
				f.Seq = v
			case frameLast:
				f.Last = v != 0
			case frameTotal:
				f.Total = v
			}
		case typ == 2: // an unknown field
			l, err := uvarint()
			if err != nil {
				return err
			}
			if l > uint64(left) {
				return fmt.Errorf("%w: field of %d bytes, %d left", errFrame, l, left)
			}
			if err := skip(r, int(l)); err != nil {
				return err
			}
			left -= int(l)
		case typ == 1 || typ == 5: // fixed64, fixed32
			k := 8
			if typ == 5 {
				k = 4
			}
			if k > left {
				return fmt.Errorf("%w: truncated fixed field", errFrame)
			}
			if err := skip(r, k); err != nil {
				return err
			}
			left -= k
		default:
			return fmt.Errorf("%w: wire type %d", errFrame, typ)
		}
	}
	return nil
}

// readUvarint reads a protobuf varint of at most 10 bytes (and of the n
// left in the message); it returns the bytes it read.
func readUvarint(r io.ByteReader, n int) (uint64, int, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if i == n {
			return 0, i, fmt.Errorf("%w: truncated varint", errFrame)
		}
		b, err := r.ReadByte()
		if err != nil {
			return 0, i, fmt.Errorf("%w: %v", errFrame, err)
		}
		if i == 9 && b > 1 {
			return 0, i + 1, fmt.Errorf("%w: varint overflows 64 bits", errFrame)
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 10, fmt.Errorf("%w: varint longer than 10 bytes", errFrame)
}

func skip(r io.Reader, n int) error {
	if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
		return fmt.Errorf("%w: %v", errFrame, err)
	}
	return nil
}

// Payloads above pooledPayload bytes live in MaxPayload-sized buffers that
// are reused (payloads), and so do the encodings of frames that carry them
// (frames, which gRPC hands back through mem.BufferPool's Put once the
// frame is on the wire); smaller ones are ordinary allocations.
const pooledPayload = 64 << 10

var (
	payloads = newBufferList(protocol.MaxPayload)
	frames   = newBufferList(protocol.MaxPayload + 4<<10) // payload and the other fields
)

// bufferList is a bounded list of free buffers of one capacity, and a
// mem.BufferPool. A channel, not a sync.Pool: the garbage collector
// empties a sync.Pool, and a training epoch collects often enough that
// most buffers were new, each zeroed by the allocator (gRPC's own pool for
// messages over 1 MiB is one: 0.3 CPU-s an epoch, and as much again for
// the payloads). A job has a handful of frames in flight each way, so
// the lists keep a few tens of MB at most.
type bufferList struct {
	size int
	free chan *[]byte
}

func newBufferList(size int) *bufferList {
	return &bufferList{size: size, free: make(chan *[]byte, 16)}
}

// Get returns a buffer of length n (fresh if n exceeds the list's size).
func (l *bufferList) Get(n int) *[]byte {
	if n > l.size {
		b := make([]byte, n)
		return &b
	}
	select {
	case b := <-l.free:
		*b = (*b)[:n]
		return b
	default:
		b := make([]byte, n, l.size)
		return &b
	}
}

// Put keeps b for reuse if it is one of the list's and the list has room.
func (l *bufferList) Put(b *[]byte) {
	if cap(*b) != l.size {
		return
	}
	select {
	case l.free <- b:
	default:
	}
}

func payloadBuffer(n int) []byte {
	if n <= pooledPayload {
		return make([]byte, n)
	}
	return *payloads.Get(n)
}

// recyclePayload returns a payload's buffer for reuse, if it is one of
// payloadBuffer's.
func recyclePayload(p []byte) {
	if len(p) > pooledPayload {
		payloads.Put(&p)
	}
}

// Recycle implements protocol.Recycler.
func (t *streamTransport) Recycle(p []byte) { recyclePayload(p) }

var _ protocol.Recycler = (*streamTransport)(nil)
