package audit

import (
	"context"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestReconcileRebuilds deletes derived data (metadata, a node, index
// entries) behind the store's back and checks that OpenStore rebuilds it.
func TestReconcileRebuilds(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e := Entry{Actor: Actor{Kind: ActorNode}, Kind: KindNodeStart}
	for i := range 20 {
		if _, _, err := s.Append(ctx, "root", IdemKey{Job: "j", Event: "e", Attempt: uint32(i)}, e); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := s.Head("root")
	err = s.db.Update(func(txn *badger.Txn) error {
		txn.Delete(logKey("root", tagMeta))
		txn.Delete(nodeKey("root", 2, 1))
		txn.Delete(logKey("root", tagIdem, IdemKey{Job: "j", Event: "e", Attempt: 3}.encode()...))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The node table is only rebuilt together with metadata; deleting meta
	// forces both.
	s, err = OpenStore(dir, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, _ := s.Head("root")
	if got != want {
		t.Fatalf("head after rebuild = %+v, want %+v", got, want)
	}
	if _, err := s.InclusionProof("root", 5, 20); err != nil {
		t.Fatalf("proof after rebuild: %v", err)
	}
	seq, dup, err := s.Append(ctx, "root", IdemKey{Job: "j", Event: "e", Attempt: 3}, e)
	if err != nil || seq != 3 || !dup {
		t.Fatalf("retry after index rebuild = %d %v %v, want 3 true nil", seq, dup, err)
	}
}
