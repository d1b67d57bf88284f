package node

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
	"github.com/tandem-dev/tandem/protocol"
)

func sameFrame(a, b *tandemv1.Frame) bool {
	return a.JobId == b.JobId && a.Step == b.Step && a.Seq == b.Seq && bytes.Equal(a.Payload, b.Payload) && a.Last == b.Last && a.Total == b.Total
}

// codecFrames are frames of every size class: none, small, pooled, the
// largest.
func codecFrames() []*tandemv1.Frame {
	big := bytes.Repeat([]byte{0xa5, 0x5a, 0x01}, protocol.MaxPayload/3+1)[:protocol.MaxPayload]
	return []*tandemv1.Frame{
		{},
		{JobId: "job-1", Step: "score.cmp.t", Seq: 7, Payload: []byte("x"), Last: true, Total: 3},
		{Step: "score.cmp.u", Seq: 1 << 40, Payload: big[:pooledPayload+1]},
		{JobId: "job-2", Step: "train.grad", Payload: big, Last: true},
		{JobId: "j", Step: "s", Seq: ^uint64(0), Total: ^uint64(0)},
	}
}

// TestFrameCodec: the codec writes what gRPC's proto codec writes and
// reads it back through gRPC's buffers, large payloads in reused buffers.
func TestFrameCodec(t *testing.T) {
	c := newFrameCodec()
	for _, want := range codecFrames() {
		data, err := c.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		flat := data.Materialize()
		if std, _ := proto.Marshal(want); !bytes.Equal(flat, std) {
			t.Fatalf("frame of %d payload bytes: encoding differs from proto.Marshal", len(want.Payload))
		}
		data.Free() // as gRPC does once it is sent: a large frame's buffer goes back to the list
		// As gRPC receives it: in pieces.
		var pieces mem.BufferSlice
		for len(flat) > 0 {
			n := min(len(flat), 16<<10)
			pieces = append(pieces, mem.SliceBuffer(flat[:n]))
			flat = flat[n:]
		}
		got := &tandemv1.Frame{JobId: "stale", Payload: []byte("stale")}
		if err := c.Unmarshal(pieces, got); err != nil || !sameFrame(got, want) {
			t.Fatalf("frame of %d payload bytes: decoded %v, %v", len(want.Payload), len(got.Payload), err)
		}
		if len(got.Payload) > pooledPayload && cap(got.Payload) != protocol.MaxPayload {
			t.Errorf("payload of %d bytes not in a pooled buffer (cap %d)", len(got.Payload), cap(got.Payload))
		}
		recyclePayload(got.Payload)
	}
	// Other messages go through gRPC's proto codec.
	var st tandemv1.JobState
	data, _ := c.Marshal(&tandemv1.JobState{Id: "job-3", Progress: 0.5})
	if err := c.Unmarshal(data, &st); err != nil || st.Id != "job-3" || st.Progress != 0.5 {
		t.Errorf("JobState through the codec: %v %v", &st, err)
	}
}

// TestFrameCodecRejects: malformed frames fail with errFrame and name the
// cause, as proto.Unmarshal fails them (but for a group, which proto3
// never writes).
func TestFrameCodecRejects(t *testing.T) {
	good, _ := proto.Marshal(&tandemv1.Frame{JobId: "job", Step: "s", Payload: []byte("abc")})
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated payload", good[:len(good)-1], "bytes"},
		{"truncated varint", []byte{0x18, 0x80}, "truncated varint"},
		{"varint overflow", append([]byte{0x18}, bytes.Repeat([]byte{0xff}, 10)...), "varint"},
		{"field number 0", []byte{0x00, 0x01}, "field number 0"},
		{"group", []byte{0x0b, 0x0c}, "wire type 3"},
		{"step not UTF-8", []byte{0x12, 0x01, 0xff}, "not UTF-8"},
		{"fixed64 cut", []byte{0x39, 1, 2, 3}, "truncated fixed"},
	} {
		var f tandemv1.Frame
		err := decodeFrame(bytes.NewReader(tc.b), len(tc.b), &f)
		if !errors.Is(err, errFrame) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error about %q", tc.name, err, tc.want)
		}
		if tc.name != "group" && proto.Unmarshal(tc.b, &f) == nil { // proto keeps a group as an unknown field
			t.Errorf("%s: proto.Unmarshal accepts it", tc.name)
		}
	}
}

// FuzzDecodeFrame checks decodeFrame against proto.Unmarshal on any bytes
// a peer could send: whatever it accepts, proto accepts, with the same
// fields; what proto accepts, it accepts too, but for groups.
func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range codecFrames()[:3] {
		b, _ := proto.Marshal(fr)
		f.Add(b)
	}
	f.Add([]byte{0x0b, 0x0c})
	f.Add([]byte{0x22, 0x00, 0x22, 0x01, 0x07, 0x45, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want tandemv1.Frame
		err := decodeFrame(bytes.NewReader(b), len(b), &got)
		perr := proto.Unmarshal(b, &want)
		switch {
		case err == nil && perr != nil:
			t.Fatalf("decodeFrame accepts what proto refuses (%v)", perr)
		case err == nil && !sameFrame(&got, &want):
			t.Fatalf("decodeFrame %v, proto %v", &got, &want)
		case err != nil && perr == nil && !strings.Contains(err.Error(), "wire type"):
			t.Fatalf("decodeFrame refuses what proto accepts: %v", err)
		case err != nil && !errors.Is(err, errFrame):
			t.Fatalf("error %v does not wrap errFrame", err)
		}
	})
}

// TestFrameCodecReuses: once payloads are handed back, decoding large
// frames allocates no payload memory.
func TestFrameCodecReuses(t *testing.T) {
	big := codecFrames()[3]
	data, _ := proto.Marshal(big)
	decode := func() {
		var f tandemv1.Frame
		if err := decodeFrame(bytes.NewReader(data), len(data), &f); err != nil || len(f.Payload) != protocol.MaxPayload {
			t.Fatalf("decode: %d bytes, %v", len(f.Payload), err)
		}
		recyclePayload(f.Payload)
	}
	decode() // the list may start empty
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		decode()
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > protocol.MaxPayload {
		t.Errorf("10 decodes of a %d-byte payload allocated %d bytes", protocol.MaxPayload, n)
	}
}
