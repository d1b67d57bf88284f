package node

import (
	"context"
	"crypto/ed25519"
	"errors"

	"github.com/tandem-dev/tandem/protocol"
)

// pingKind proves the job path end to end: signed rounds both ways.
type pingKind struct{}

func (pingKind) initiate(ctx context.Context, j *jobRun) (any, error) {
	rounds := 3
	if p := j.prop.Ping; p != nil && p.Rounds > 0 {
		rounds = int(p.Rounds)
	}
	if len(j.peerKey) != ed25519.PublicKeySize {
		return nil, errors.New("node: peer public key unknown")
	}
	return protocol.RunPingInitiator(ctx, j.t, j.rec.ID, rounds, j.n.id, j.peerKey, func(p float64) { j.progress("ping", p) })
}

func (pingKind) respond(ctx context.Context, j *jobRun) (any, error) {
	if len(j.peerKey) != ed25519.PublicKeySize {
		return nil, errors.New("node: peer public key unknown")
	}
	return protocol.RunPingResponder(ctx, j.t, j.rec.ID, j.n.id, j.peerKey, func(p float64) { j.progress("ping", p) })
}
