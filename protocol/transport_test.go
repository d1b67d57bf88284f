package protocol

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"lukechampine.com/blake3"
)

// The transcript's running hash is BLAKE3: the library against the
// specification's test vector for the empty input.
func TestBLAKE3KnownAnswer(t *testing.T) {
	got := blake3.Sum256(nil)
	if want := "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"; hex.EncodeToString(got[:]) != want {
		t.Fatalf("BLAKE3(\"\") = %x, want %s", got, want)
	}
}

// Both sides of a job compute the same transcript digest although they see
// the two directions interleaved differently, and any change of a payload,
// step, sequence number or direction changes it.
func TestTranscriptDigestAgrees(t *testing.T) {
	run := func(tamper bool) (initiator, responder []byte) {
		ctx := context.Background()
		a, b := newPipe()
		ti, tr := NewTranscript(a, "job-x", true), NewTranscript(b, "job-x", false)
		big := bytes.Repeat([]byte{7}, MaxPayload)
		// Initiator sends two, responder sends one before reading.
		if err := ti.Send(ctx, Msg{Step: "s.a", Payload: []byte("one")}); err != nil {
			t.Fatal(err)
		}
		if err := ti.Send(ctx, Msg{Step: "s.a", Seq: 1, Payload: big, Last: true}); err != nil {
			t.Fatal(err)
		}
		reply := []byte("reply")
		if tamper {
			reply = []byte("replz")
		}
		if err := tr.Send(ctx, Msg{Step: "s.b", Payload: reply, Last: true}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := tr.Recv(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ti.Recv(ctx); err != nil {
			t.Fatal(err)
		}
		return ti.Digest(), tr.Digest()
	}
	i, r := run(false)
	if !bytes.Equal(i, r) {
		t.Fatalf("initiator %x, responder %x", i, r)
	}
	if i2, _ := run(true); bytes.Equal(i, i2) {
		t.Fatal("a changed payload left the digest unchanged")
	}
}

// TestOutOfOrderNamesTheCause: a message out of protocol order fails with
// ErrUnexpected, both steps, and the cause an operator can act on.
func TestOutOfOrderNamesTheCause(t *testing.T) {
	a, b := newPipe()
	ctx := context.Background()
	if err := a.Send(ctx, Msg{Step: "score.cmp.u", Seq: 0, Last: true}); err != nil {
		t.Fatal(err)
	}
	_, err := expect(ctx, b, "score.ot.a", 0)
	if !errors.Is(err, ErrUnexpected) || !strings.Contains(err.Error(), "got score.cmp.u#0, want score.ot.a#0") ||
		!strings.Contains(err.Error(), "another version") {
		t.Fatalf("got %v", err)
	}
}
