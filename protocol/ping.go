package protocol

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"time"
)

// PingResult is what a ping job records on both nodes.
type PingResult struct {
	Rounds int           `json:"rounds"`
	RTT    time.Duration `json:"rtt_ns"`
}

const pingDomain = "tandem/v1 ping\n"

func pingInput(jobID string, dir byte, round uint32) []byte {
	b := append([]byte(pingDomain), jobID...)
	b = append(b, '\n', dir)
	return binary.BigEndian.AppendUint32(b, round)
}

// RunPingInitiator sends `rounds` signed pings and checks each signed pong
// against the peer's public key. It proves the job path end to end: both
// nodes sign, verify and record every round.
func RunPingInitiator(ctx context.Context, t Transport, jobID string, rounds int, s Signer, peer ed25519.PublicKey, progress func(float64)) (PingResult, error) {
	start := time.Now()
	for i := range rounds {
		sig := s.Sign(pingInput(jobID, 'I', uint32(i)))
		if err := t.Send(ctx, Msg{Step: "ping", Seq: uint64(i), Payload: sig, Last: i == rounds-1, Total: uint64(rounds)}); err != nil {
			return PingResult{}, err
		}
		m, err := expect(ctx, t, "pong", uint64(i))
		if err != nil {
			return PingResult{}, err
		}
		if !ed25519.Verify(peer, pingInput(jobID, 'R', uint32(i)), m.Payload) {
			return PingResult{}, fmt.Errorf("%w: pong %d", ErrBadSignature, i)
		}
		if progress != nil {
			progress(float64(i+1) / float64(rounds))
		}
	}
	return PingResult{Rounds: rounds, RTT: time.Since(start) / time.Duration(max(rounds, 1))}, nil
}

// RunPingResponder answers signed pings with signed pongs until the
// initiator's last ping.
func RunPingResponder(ctx context.Context, t Transport, jobID string, s Signer, peer ed25519.PublicKey, progress func(float64)) (PingResult, error) {
	start := time.Now()
	for i := 0; ; i++ {
		m, err := expect(ctx, t, "ping", uint64(i))
		if err != nil {
			return PingResult{}, err
		}
		if !ed25519.Verify(peer, pingInput(jobID, 'I', uint32(i)), m.Payload) {
			return PingResult{}, fmt.Errorf("%w: ping %d", ErrBadSignature, i)
		}
		if err := t.Send(ctx, Msg{Step: "pong", Seq: uint64(i), Payload: s.Sign(pingInput(jobID, 'R', uint32(i)))}); err != nil {
			return PingResult{}, err
		}
		if progress != nil && m.Total > 0 {
			progress(float64(i+1) / float64(m.Total))
		}
		if m.Last {
			return PingResult{Rounds: i + 1, RTT: time.Since(start) / time.Duration(i+1)}, nil
		}
	}
}
