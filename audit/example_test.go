package audit_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-dev/tandem/audit"
)

func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	signer, _ := audit.NewEd25519Signer("bank.example", ed25519.NewKeyFromSeed(make([]byte, 32)))
	s, err := audit.OpenStore(filepath.Join(dir, "db"), audit.StoreOptions{Signer: signer})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	key := audit.IdemKey{Job: "job-1", Event: "started"}
	e := audit.Entry{Actor: audit.Actor{Kind: audit.ActorNode, Name: "bank.example"}, Kind: audit.KindJobStarted, JobID: "job-1"}
	seq, dup, _ := s.Append(ctx, "root", key, e)
	fmt.Println("appended", seq, dup)
	seq, dup, _ = s.Append(ctx, "root", key, e) // a retry
	fmt.Println("retried", seq, dup)

	bundle := filepath.Join(dir, "bundle")
	if err := audit.Export(ctx, s, "root", bundle, 0); err != nil {
		fmt.Println(err)
		return
	}
	rep, err := audit.VerifyBundle(bundle, audit.VerifyOptions{PubKey: signer.Verifier()})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("verified", rep.Size, "entries")
	// Output:
	// appended 0 false
	// retried 0 true
	// verified 1 entries
}
