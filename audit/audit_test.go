package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/tandem-dev/tandem/audit"
	"github.com/tandem-dev/tandem/audit/audittest"
	"github.com/tandem-dev/tandem/audit/merkle"
)

func TestMain(m *testing.M) {
	audittest.MaybeRunChild()
	os.Exit(m.Run())
}

func testSigner(t testing.TB, name string, seed byte) *audit.Ed25519Signer {
	t.Helper()
	s, err := audit.NewEd25519Signer(name, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openStore(t testing.TB, dir string, signer audit.Signer, peerKeys ...string) *audit.Store {
	t.Helper()
	s, err := audit.OpenStore(dir, audit.StoreOptions{Signer: signer, PeerKeys: peerKeys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var nodeActor = audit.Actor{Kind: audit.ActorNode, Name: "bank.example"}

// TestNoteKnownVector checks the signed-note format and key-hash rule
// against the example in the golang.org/x/mod/sumdb/note package docs.
func TestNoteKnownVector(t *testing.T) {
	const (
		skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
		vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
		text = "If you think cryptography is the answer to your problem,\n" +
			"then you don't know what your problem is.\n"
		want = text + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
	)
	signer, err := audit.ParseSignerKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	if got := signer.SignerKey(); got != skey {
		t.Errorf("SignerKey = %q, want %q", got, skey)
	}
	if got := signer.VerifierKey(); got != vkey {
		t.Errorf("VerifierKey = %q, want %q", got, vkey)
	}
	msg, err := audit.SignNote(text, signer)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg) != want {
		t.Fatalf("SignNote = %q, want %q", msg, want)
	}
	v, err := audit.ParseVerifierKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := audit.OpenNote([]byte(want), v); err != nil || got != text {
		t.Fatalf("OpenNote = %q, %v", got, err)
	}
	bad := strings.Replace(want, "cryptography", "cryptographY", 1)
	if _, err := audit.OpenNote([]byte(bad), v); !errors.Is(err, audit.ErrBadSignature) {
		t.Fatalf("OpenNote(tampered) err = %v, want ErrBadSignature", err)
	}
	for i := 0; i < len(vkey); i++ {
		b := []byte(vkey)
		b[i] ^= 1
		if _, err := audit.ParseVerifierKey(string(b)); err == nil {
			t.Errorf("ParseVerifierKey accepted key mangled at %d", i)
		}
	}
}

func TestCheckpointFormat(t *testing.T) {
	s := testSigner(t, "bank.example/audit", 1)
	h := audit.Head{Origin: "tandem/root", Size: 42, Root: merkle.HashLeaf([]byte("x"))}
	msg, err := audit.SignHead(h, s)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(msg), "\n")
	if lines[0] != "tandem/root" || lines[1] != "42" || lines[2] != base64.StdEncoding.EncodeToString(h.Root[:]) ||
		lines[3] != "" || !strings.HasPrefix(lines[4], "— bank.example/audit ") {
		t.Fatalf("checkpoint layout wrong:\n%s", msg)
	}
	got, err := audit.OpenCheckpoint(msg, s.Verifier())
	if err != nil || got != h {
		t.Fatalf("OpenCheckpoint = %+v, %v; want %+v", got, err, h)
	}
	other := testSigner(t, "bank.example/audit", 2)
	if _, err := audit.OpenCheckpoint(msg, other.Verifier()); !errors.Is(err, audit.ErrBadSignature) {
		t.Fatalf("wrong key: err = %v", err)
	}
}

func sampleEntry() audit.Entry {
	return audit.Entry{
		Seq: 7, Time: time.Unix(1700000000, 123456789).UTC(),
		Actor: audit.Actor{Kind: audit.ActorOperator, Role: "admin", Name: "tok-1"},
		Kind:  audit.KindRelease, JobID: "job-1", AgreementID: "agr-1", Peer: "partner.example",
		DatasetDigests: []string{"sha256:aa", "sha256:bb"}, ParamsDigest: "sha256:cc",
		Release: &audit.Release{To: "partner.example", Rows: 10, Values: 30, Digest: "sha256:dd",
			Checks: []string{"min_cell_k=10"}, Epsilon: 0.5},
		Detail:   map[string]string{"b": "2", "a": "1"},
		PrevHash: merkle.HashLeaf([]byte("prev")),
	}
}

func TestEntryRoundTrip(t *testing.T) {
	e := sampleEntry()
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := audit.ParseEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := got.MarshalBinary()
	if !bytes.Equal(b, b2) || got.Time != e.Time || got.Release.Epsilon != 0.5 || got.Detail["b"] != "2" {
		t.Fatalf("round trip mismatch: %+v", got)
	}
	for _, tc := range []struct {
		name string
		mut  func(*audit.Entry)
	}{
		{"bad kind", func(e *audit.Entry) { e.Kind = "Bad Kind" }},
		{"nan epsilon", func(e *audit.Entry) { e.Release.Epsilon = math.NaN() }},
		{"negative epsilon", func(e *audit.Entry) { e.Release.Epsilon = -1 }},
		{"zero time", func(e *audit.Entry) { e.Time = time.Time{} }},
		{"no actor", func(e *audit.Entry) { e.Actor.Kind = 0 }},
		{"bad utf8", func(e *audit.Entry) { e.JobID = "\xff" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := sampleEntry()
			tc.mut(&e)
			if _, err := e.MarshalBinary(); !errors.Is(err, audit.ErrInvalidEntry) {
				t.Fatalf("err = %v, want ErrInvalidEntry", err)
			}
		})
	}
	// Non-canonical variants of valid bytes are rejected.
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"trailing byte", append(append([]byte(nil), b...), 0)},
		{"truncated", b[:len(b)-1]},
		{"version 2", func() []byte { c := append([]byte(nil), b...); c[19] = 2; return c }()},
	} {
		if _, err := audit.ParseEntry(tc.b); !errors.Is(err, audit.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tc.name, err)
		}
	}
	neg := sampleEntry()
	neg.Release.Epsilon = math.Copysign(0, -1)
	nb, _ := neg.MarshalBinary()
	pos := sampleEntry()
	pos.Release.Epsilon = 0
	pb, _ := pos.MarshalBinary()
	if !bytes.Equal(nb, pb) {
		t.Error("-0 epsilon not normalised")
	}
}

func FuzzParseEntry(f *testing.F) {
	e := sampleEntry()
	b, _ := e.MarshalBinary()
	f.Add(b)
	e.Release, e.Detail, e.DatasetDigests = nil, nil, nil
	b, _ = e.MarshalBinary()
	f.Add(b)
	f.Add([]byte("tandem/audit/entry\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := audit.ParseEntry(b)
		if err != nil {
			return
		}
		again, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("parsed entry does not re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("non-canonical encoding accepted:\n in  %x\n out %x", b, again)
		}
	})
}

func TestReceipt(t *testing.T) {
	bank, partner := testSigner(t, "bank.example", 1), testSigner(t, "partner.example", 2)
	keys := []audit.Verifier{bank.Verifier(), partner.Verifier()}
	r := &audit.Receipt{JobID: "job-1", AgreementID: "agr-1", SpecDigest: "sha256:01",
		InputDigests: map[string]string{"bank.example": "sha256:02", "partner.example": "sha256:03"},
		Outputs:      []audit.Output{{Name: "model", Digest: "sha256:04", Size: 100}},
		Outcome:      "succeeded", Parties: [2]string{"bank.example", "partner.example"}}
	if _, err := r.Verify(keys); !errors.Is(err, audit.ErrBadSignature) {
		t.Fatalf("unsigned: err = %v", err)
	}
	if err := r.Sign(bank); err != nil {
		t.Fatal(err)
	}
	if u, err := r.Verify(keys); err != nil || !u {
		t.Fatalf("one signature: unilateral=%v err=%v, want true nil", u, err)
	}
	if err := r.Sign(partner); err != nil {
		t.Fatal(err)
	}
	if u, err := r.Verify(keys); err != nil || u {
		t.Fatalf("two signatures: unilateral=%v err=%v", u, err)
	}
	if err := r.Sign(testSigner(t, "mallory", 3)); !errors.Is(err, audit.ErrInvalidKey) {
		t.Fatalf("non-party sign: err = %v", err)
	}
	raw, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := audit.ParseReceipt(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := back.Verify(keys); err != nil || u {
		t.Fatalf("parsed: unilateral=%v err=%v", u, err)
	}
	back.Outputs[0].Size = 101
	if _, err := back.Verify(keys); !errors.Is(err, audit.ErrBadSignature) {
		t.Fatalf("altered: err = %v", err)
	}
	if _, err := audit.ParseReceipt(append(raw, 0)); !errors.Is(err, audit.ErrMalformed) {
		t.Fatalf("trailing byte: err = %v", err)
	}
}

func TestTranscript(t *testing.T) {
	a, b := audit.NewTranscript("psi/v1"), audit.NewTranscript("psi/v1")
	for _, tr := range []*audit.Transcript{a, b} {
		tr.Add(audit.FromInitiator, []byte("hello"))
		tr.Add(audit.FromResponder, []byte("world"))
	}
	if a.Sum() != b.Sum() {
		t.Fatal("same messages, different digests")
	}
	c := audit.NewTranscript("psi/v1")
	c.Add(audit.FromInitiator, []byte("hello"))
	c.Add(audit.FromInitiator, []byte("world"))
	d := audit.NewTranscript("psi/v1")
	d.Add(audit.FromInitiator, []byte("hellow"))
	d.Add(audit.FromResponder, []byte("orld"))
	e := audit.NewTranscript("psi/v2")
	e.Add(audit.FromInitiator, []byte("hello"))
	e.Add(audit.FromResponder, []byte("world"))
	for name, x := range map[string]*audit.Transcript{"direction": c, "framing": d, "label": e} {
		if x.Sum() == a.Sum() {
			t.Errorf("%s change not reflected in digest", name)
		}
	}
	s1 := a.Sum()
	if a.Sum() != s1 {
		t.Error("Sum is not idempotent")
	}
}

func TestStoreAppend(t *testing.T) {
	dir := t.TempDir()
	signer := testSigner(t, "bank.example", 1)
	s := openStore(t, dir, signer)
	ctx := t.Context()
	key := audit.IdemKey{Job: "j1", Event: "started", Attempt: 0}
	seq, dup, err := s.Append(ctx, "root", key, audit.Entry{Actor: nodeActor, Kind: audit.KindJobStarted, JobID: "j1"})
	if err != nil || seq != 0 || dup {
		t.Fatalf("first append = %d %v %v", seq, dup, err)
	}
	seq, dup, err = s.Append(ctx, "root", key, audit.Entry{Actor: nodeActor, Kind: audit.KindJobStarted, JobID: "j1"})
	if err != nil || seq != 0 || !dup {
		t.Fatalf("retry = %d %v %v, want 0 true nil", seq, dup, err)
	}
	// Concurrent appends, some retried, across two logs.
	var wg sync.WaitGroup
	seqs := make([][]uint64, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				k := audit.IdemKey{Job: "j" + strconv.Itoa(g), Event: "e" + strconv.Itoa(i%30)}
				log := "root"
				if g%4 == 0 {
					log = "peer/partner"
				}
				seq, _, err := s.Append(ctx, log, k, audit.Entry{Actor: nodeActor, Kind: audit.KindOperatorAction, JobID: k.Job})
				if err != nil {
					t.Error(err)
					return
				}
				seqs[g] = append(seqs[g], seq)
			}
		}()
	}
	wg.Wait()
	// 16 goroutines x 30 distinct keys; g=1 reuses "j1/e0..": key (j1, started) differs.
	rootSize, _ := s.Size("root")
	peerSize, _ := s.Size("peer/partner")
	if got, want := rootSize, uint64(1+12*30); got != want {
		t.Errorf("root size = %d, want %d", got, want)
	}
	if got, want := peerSize, uint64(4*30); got != want {
		t.Errorf("peer size = %d, want %d", got, want)
	}
	for g := range 16 {
		for i := 30; i < 40; i++ {
			if seqs[g][i] != seqs[g][i-30] {
				t.Fatalf("retry of g%d e%d got seq %d, want %d", g, i-30, seqs[g][i], seqs[g][i-30])
			}
		}
	}
	entries, err := s.Entries("root", 0, rootSize)
	if err != nil {
		t.Fatal(err)
	}
	var prev merkle.Hash
	for i, e := range entries {
		if e.Seq != uint64(i) || e.PrevHash != prev || e.Time.IsZero() || e.Time.Location() != time.UTC {
			t.Fatalf("entry %d: seq %d prev ok %v", i, e.Seq, e.PrevHash == prev)
		}
		raw, _ := e.MarshalBinary()
		prev = merkle.HashLeaf(raw)
	}
	// Proofs verify against the signed checkpoint.
	cp, err := s.Checkpoint("root")
	if err != nil {
		t.Fatal(err)
	}
	head, err := audit.OpenCheckpoint(cp, signer.Verifier())
	if err != nil || head.Size != rootSize || head.Origin != "tandem/root" {
		t.Fatalf("checkpoint %+v %v", head, err)
	}
	for _, idx := range []uint64{0, 5, rootSize - 1} {
		p, err := s.InclusionProof("root", idx, head.Size)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := entries[idx].MarshalBinary()
		if err := merkle.VerifyInclusion(idx, head.Size, merkle.HashLeaf(raw), p, head.Root); err != nil {
			t.Fatalf("inclusion %d: %v", idx, err)
		}
	}
	for _, m := range []uint64{0, 1, 7, 100, rootSize} {
		p, err := s.ConsistencyProof("root", m, head.Size)
		if err != nil {
			t.Fatal(err)
		}
		r1, err := s.RootAt("root", m)
		if err != nil {
			t.Fatal(err)
		}
		if err := merkle.VerifyConsistency(m, head.Size, r1, head.Root, p); err != nil {
			t.Fatalf("consistency %d: %v", m, err)
		}
	}
	if _, err := s.InclusionProof("root", 0, head.Size+1); !errors.Is(err, audit.ErrRange) {
		t.Fatalf("proof beyond size: err = %v", err)
	}
	// Reopen: state and idempotency survive.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, _, err := s.Append(ctx, "root", audit.IdemKey{}, audit.Entry{Actor: nodeActor, Kind: audit.KindNodeStop}); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("append after close: err = %v", err)
	}
	s2 := openStore(t, dir, signer)
	seq, dup, err = s2.Append(ctx, "root", key, audit.Entry{Actor: nodeActor, Kind: audit.KindJobStarted, JobID: "j1"})
	if err != nil || seq != 0 || !dup {
		t.Fatalf("retry after reopen = %d %v %v", seq, dup, err)
	}
	seq, _, err = s2.Append(ctx, "root", audit.IdemKey{}, audit.Entry{Actor: nodeActor, Kind: audit.KindNodeStart})
	if err != nil || seq != rootSize {
		t.Fatalf("append after reopen = %d %v, want %d", seq, err, rootSize)
	}
	logs, _ := s2.Logs()
	if fmt.Sprint(logs) != "[peer/partner root]" {
		t.Errorf("Logs = %v", logs)
	}
}

func TestOpenStoreRefusesNoSync(t *testing.T) {
	_, err := audit.OpenStore(t.TempDir(), audit.StoreOptions{Badger: func(o badger.Options) badger.Options {
		return o.WithSyncWrites(false)
	}})
	if !errors.Is(err, audit.ErrNoSync) {
		t.Fatalf("err = %v, want ErrNoSync", err)
	}
}

func TestWitnessCheckpoint(t *testing.T) {
	peerSigner := testSigner(t, "partner.example", 2)
	peer := openStore(t, t.TempDir(), peerSigner)
	me := openStore(t, t.TempDir(), testSigner(t, "bank.example", 1))
	ctx := t.Context()
	var prevSize uint64
	for round := range 4 {
		for i := 0; i < 5+round*3; i++ {
			if _, _, err := peer.Append(ctx, "root", audit.IdemKey{}, audit.Entry{Actor: nodeActor, Kind: audit.KindNodeStart}); err != nil {
				t.Fatal(err)
			}
		}
		cp, _ := peer.Checkpoint("root")
		h, _ := audit.OpenCheckpoint(cp, peerSigner.Verifier())
		proof, err := peer.ConsistencyProof("root", prevSize, h.Size)
		if round == 0 {
			proof = nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := me.WitnessCheckpoint(ctx, "partner.example", peerSigner.Verifier(), cp, proof); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		prevSize = h.Size
	}
	// A fork: same key, different history, larger size.
	fork := openStore(t, t.TempDir(), peerSigner)
	for i := uint64(0); i < prevSize+3; i++ {
		fork.Append(ctx, "root", audit.IdemKey{}, audit.Entry{Actor: nodeActor, Kind: audit.KindNodeStop})
	}
	cp, _ := fork.Checkpoint("root")
	h, _ := audit.OpenCheckpoint(cp, peerSigner.Verifier())
	proof, _ := fork.ConsistencyProof("root", prevSize, h.Size)
	if err := me.WitnessCheckpoint(ctx, "partner.example", peerSigner.Verifier(), cp, proof); !errors.Is(err, audit.ErrInconsistent) {
		t.Fatalf("fork: err = %v, want ErrInconsistent", err)
	}
	// A rollback: an older checkpoint.
	old, _ := audit.SignHead(audit.Head{Origin: h.Origin, Size: 1, Root: merkle.Hash{}}, peerSigner)
	if err := me.WitnessCheckpoint(ctx, "partner.example", peerSigner.Verifier(), old, nil); !errors.Is(err, audit.ErrInconsistent) {
		t.Fatalf("rollback: err = %v, want ErrInconsistent", err)
	}
	if err := me.WitnessCheckpoint(ctx, "partner.example", testSigner(t, "partner.example", 9).Verifier(), cp, proof); !errors.Is(err, audit.ErrBadSignature) {
		t.Fatalf("wrong key: err = %v, want ErrBadSignature", err)
	}
	got, err := me.WitnessedCheckpoint("partner.example")
	if err != nil {
		t.Fatal(err)
	}
	if gh, _ := audit.OpenCheckpoint(got, peerSigner.Verifier()); gh.Size != prevSize {
		t.Fatalf("stored witnessed size %d, want %d", gh.Size, prevSize)
	}
}

func TestFreeBytes(t *testing.T) {
	n, err := audit.FreeBytes(t.TempDir())
	if err != nil || n == 0 {
		t.Fatalf("FreeBytes = %d, %v", n, err)
	}
	if _, err := audit.FreeBytes(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("FreeBytes on missing dir succeeded")
	}
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	n := 5
	if v, err := strconv.Atoi(os.Getenv("TANDEM_SOAK")); err == nil && v > 0 {
		n = v
	}
	audittest.CrashSoak(t, n)
}

// ---- bundle fixtures and tamper matrix ----

type fixture struct {
	bank, partner *audit.Ed25519Signer
	store         *audit.Store
	bundle        string
	receiptSeq    map[string]uint64
	n             int
}

// newFixture builds a log with jobs, releases and co-signed receipts and
// exports it.
func newFixture(t testing.TB, jobs int) *fixture {
	f := &fixture{bank: testSigner(t, "bank.example", 1), partner: testSigner(t, "partner.example", 2), receiptSeq: map[string]uint64{}}
	f.store = openStore(t, t.TempDir(), f.bank, f.partner.VerifierKey())
	ctx := context.Background()
	app := func(e audit.Entry) {
		if _, _, err := f.store.Append(ctx, "root", audit.IdemKey{}, e); err != nil {
			t.Fatal(err)
		}
	}
	app(audit.Entry{Actor: nodeActor, Kind: audit.KindNodeStart})
	for j := range jobs {
		job := fmt.Sprintf("job-%d", j)
		for _, k := range []audit.Kind{audit.KindJobProposed, audit.KindJobAccepted, audit.KindJobStarted} {
			app(audit.Entry{Actor: audit.Actor{Kind: audit.ActorPeer, Name: "partner.example"}, Kind: k, JobID: job,
				AgreementID: "agr-1", Peer: "partner.example", DatasetDigests: []string{"sha256:ab"}})
		}
		app(audit.Entry{Actor: nodeActor, Kind: audit.KindRelease, JobID: job, Peer: "partner.example",
			Release: &audit.Release{To: "partner.example", Rows: 5, Values: 10, Digest: "sha256:cd", Checks: []string{"k>=10"}, Epsilon: 0.1}})
		app(audit.Entry{Actor: nodeActor, Kind: audit.KindJobFinished, JobID: job})
		r := &audit.Receipt{JobID: job, AgreementID: "agr-1", SpecDigest: "sha256:01", Outcome: "succeeded",
			Parties: [2]string{"bank.example", "partner.example"}}
		r.Sign(f.bank)
		r.Sign(f.partner)
		seq, err := f.store.AppendReceipt(ctx, "root", nodeActor, r)
		if err != nil {
			t.Fatal(err)
		}
		f.receiptSeq[job] = seq
	}
	size, _ := f.store.Size("root")
	f.n = int(size)
	f.bundle = t.TempDir()
	if err := audit.Export(ctx, f.store, "root", f.bundle, 0); err != nil {
		t.Fatal(err)
	}
	return f
}

func copyBundle(t testing.TB, src string) string {
	dst := t.TempDir()
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
	}
	return dst
}

type line struct {
	Seq    uint64 `json:"seq"`
	CRC32C uint32 `json:"crc32c"`
	Raw    string `json:"raw"`
}

func readLines(t testing.TB, dir, name string) [][]byte {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

func writeLines(t testing.TB, dir, name string, ls [][]byte) {
	var b []byte
	for _, l := range ls {
		b = append(append(b, l...), '\n')
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func decodeLine(t testing.TB, l []byte) (line, []byte) {
	var x line
	if err := json.Unmarshal(l, &x); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(x.Raw)
	return x, raw
}

func encodeLine(seq uint64, raw []byte, fixCRC bool, oldCRC uint32) []byte {
	crc := oldCRC
	if fixCRC {
		crc = crc32.Checksum(raw, crc32.MakeTable(crc32.Castagnoli))
	}
	b, _ := json.Marshal(line{Seq: seq, CRC32C: crc, Raw: base64.StdEncoding.EncodeToString(raw)})
	return b
}

func TestBundleVerifies(t *testing.T) {
	f := newFixture(t, 3)
	rep, err := audit.VerifyBundle(f.bundle, audit.VerifyOptions{PubKey: f.bank.Verifier()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != uint64(f.n) || rep.Receipts != 3 || len(rep.Cosigned) != 3 || len(rep.Unilateral) != 0 {
		t.Fatalf("report %+v", rep)
	}
	csv, _ := os.ReadFile(filepath.Join(f.bundle, audit.BundleJobs))
	if got := strings.Count(string(csv), "\n"); got != 4 || !strings.Contains(string(csv), "job-2,agr-1,partner.example") ||
		!strings.Contains(string(csv), ",cosigned") {
		t.Fatalf("jobs.csv:\n%s", csv)
	}
	keys, _ := os.ReadFile(filepath.Join(f.bundle, audit.BundleKeys))
	if string(keys) != f.bank.VerifierKey()+"\n"+f.partner.VerifierKey()+"\n" {
		t.Fatalf("keys.txt:\n%s", keys)
	}

	// Incremental: append more, export since the old size, verify against
	// the old checkpoint.
	ctx := t.Context()
	for range 10 {
		f.store.Append(ctx, "root", audit.IdemKey{}, audit.Entry{Actor: nodeActor, Kind: audit.KindConfigChange})
	}
	inc := t.TempDir()
	if err := audit.Export(ctx, f.store, "root", inc, rep.Size); err != nil {
		t.Fatal(err)
	}
	if n := len(readLines(t, inc, audit.BundleEntries)); n != 10 {
		t.Fatalf("incremental bundle has %d entries, want 10", n)
	}
	rep2, err := audit.VerifyBundle(inc, audit.VerifyOptions{PubKey: f.bank.Verifier(), TrustedCheckpoint: rep.Checkpoint})
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Size != rep.Size+10 {
		t.Fatalf("incremental size %d", rep2.Size)
	}
	// Wrong key → Forged.
	_, err = audit.VerifyBundle(f.bundle, audit.VerifyOptions{PubKey: testSigner(t, "bank.example", 5).Verifier()})
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.Class != audit.Forged || ve.Index != -1 {
		t.Fatalf("wrong key: %v", err)
	}
}

// TestTamperMatrix applies every tamper class at random positions and
// requires detection with the right class and index, every time.
func TestTamperMatrix(t *testing.T) {
	f := newFixture(t, 6)
	rng := rand.New(rand.NewPCG(7, 7))
	const trials = 25
	opts := audit.VerifyOptions{PubKey: f.bank.Verifier()}
	n := f.n
	type tamper struct {
		class audit.Class
		apply func(dir string) int64 // returns the expected index
	}
	tampers := []tamper{
		{audit.BitFlip, func(dir string) int64 {
			ls := readLines(t, dir, audit.BundleEntries)
			i := rng.IntN(n)
			x, raw := decodeLine(t, ls[i])
			raw[rng.IntN(len(raw))] ^= 1 << rng.IntN(8)
			ls[i] = encodeLine(x.Seq, raw, false, x.CRC32C)
			writeLines(t, dir, audit.BundleEntries, ls)
			return int64(i)
		}},
		{audit.Deletion, func(dir string) int64 {
			ls := readLines(t, dir, audit.BundleEntries)
			i := rng.IntN(n - 1)
			writeLines(t, dir, audit.BundleEntries, append(ls[:i:i], ls[i+1:]...))
			return int64(i)
		}},
		{audit.Truncation, func(dir string) int64 {
			ls := readLines(t, dir, audit.BundleEntries)
			c := rng.IntN(n)
			writeLines(t, dir, audit.BundleEntries, ls[:c])
			return int64(c)
		}},
		{audit.Reordering, func(dir string) int64 {
			ls := readLines(t, dir, audit.BundleEntries)
			i := rng.IntN(n - 1)
			j := i + 1 + rng.IntN(n-i-1)
			ls[i], ls[j] = ls[j], ls[i]
			writeLines(t, dir, audit.BundleEntries, ls)
			return int64(i)
		}},
		{audit.Forged, func(dir string) int64 {
			// Rewrite entry i and re-chain everything after it, fixing
			// checksums: only the signed root can tell.
			ls := readLines(t, dir, audit.BundleEntries)
			i := rng.IntN(n)
			var prevLeaf merkle.Hash
			for k := i; k < n; k++ {
				x, raw := decodeLine(t, ls[k])
				e, err := audit.ParseEntry(raw)
				if err != nil {
					t.Fatal(err)
				}
				if k == i {
					e.Peer = "mallory.example"
				} else {
					e.PrevHash = prevLeaf
				}
				raw, _ = e.MarshalBinary()
				prevLeaf = merkle.HashLeaf(raw)
				ls[k] = encodeLine(x.Seq, raw, true, 0)
			}
			writeLines(t, dir, audit.BundleEntries, ls)
			return int64(i)
		}},
		{audit.Forged, func(dir string) int64 {
			// Corrupt the checkpoint signature.
			b, _ := os.ReadFile(filepath.Join(dir, audit.BundleCheckpoint))
			ls := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			last := ls[len(ls)-1]
			sp := strings.LastIndex(last, " ")
			blob, _ := base64.StdEncoding.DecodeString(last[sp+1:])
			blob[4+rng.IntN(len(blob)-4)] ^= 1 << rng.IntN(8)
			ls[len(ls)-1] = last[:sp+1] + base64.StdEncoding.EncodeToString(blob)
			os.WriteFile(filepath.Join(dir, audit.BundleCheckpoint), []byte(strings.Join(ls, "\n")+"\n"), 0o644)
			return -1
		}},
		{audit.MissingCoSignature, func(dir string) int64 {
			ls := readLines(t, dir, audit.BundleReceipts)
			i := rng.IntN(len(ls))
			var rl struct{ Job, Raw string }
			json.Unmarshal(ls[i], &rl)
			raw, _ := base64.StdEncoding.DecodeString(rl.Raw)
			r, err := audit.ParseReceipt(raw)
			if err != nil {
				t.Fatal(err)
			}
			r.Sigs = r.Sigs[:1] // keep the bank's, drop the partner's
			raw, _ = r.MarshalBinary()
			ls[i], _ = json.Marshal(map[string]string{"job": rl.Job, "raw": base64.StdEncoding.EncodeToString(raw)})
			writeLines(t, dir, audit.BundleReceipts, ls)
			return int64(f.receiptSeq[rl.Job])
		}},
	}
	for _, tc := range tampers {
		t.Run(tc.class.String(), func(t *testing.T) {
			for trial := range trials {
				dir := copyBundle(t, f.bundle)
				want := tc.apply(dir)
				_, err := audit.VerifyBundle(dir, opts)
				var ve *audit.VerifyError
				if !errors.As(err, &ve) {
					t.Fatalf("trial %d: tamper not detected (err = %v)", trial, err)
				}
				if ve.Class != tc.class || ve.Index != want {
					t.Fatalf("trial %d: got %v at %d, want %v at %d (%v)", trial, ve.Class, ve.Index, tc.class, want, err)
				}
			}
		})
	}
	t.Run("inconsistent", func(t *testing.T) {
		// The log key itself rewrites history: a fork of the same length,
		// and a rollback to a shorter log.
		fork := openStore(t, t.TempDir(), f.bank)
		for i := 0; i < n; i++ {
			fork.Append(t.Context(), "root", audit.IdemKey{}, audit.Entry{Actor: nodeActor, Kind: audit.KindOperatorAction,
				Detail: map[string]string{"i": strconv.Itoa(i)}})
		}
		forkDir := t.TempDir()
		if err := audit.Export(t.Context(), fork, "root", forkDir, 0); err != nil {
			t.Fatal(err)
		}
		for trial := range trials {
			m := uint64(1 + rng.IntN(n))
			root, _ := f.store.RootAt("root", m)
			trusted, _ := audit.SignHead(audit.Head{Origin: "tandem/root", Size: m, Root: root}, f.bank)
			_, err := audit.VerifyBundle(forkDir, audit.VerifyOptions{PubKey: f.bank.Verifier(), TrustedCheckpoint: trusted})
			var ve *audit.VerifyError
			if !errors.As(err, &ve) || ve.Class != audit.Inconsistent || ve.Index != int64(m) {
				t.Fatalf("trial %d: fork vs trusted size %d: %v", trial, m, err)
			}
			if _, err := audit.VerifyBundle(f.bundle, audit.VerifyOptions{PubKey: f.bank.Verifier(), TrustedCheckpoint: trusted}); err != nil {
				t.Fatalf("trial %d: honest bundle vs trusted size %d: %v", trial, m, err)
			}
		}
		short := openStore(t, t.TempDir(), f.bank)
		short.Append(t.Context(), "root", audit.IdemKey{}, audit.Entry{Actor: nodeActor, Kind: audit.KindNodeStart})
		shortDir := t.TempDir()
		audit.Export(t.Context(), short, "root", shortDir, 0)
		full, _ := f.store.Checkpoint("root")
		_, err := audit.VerifyBundle(shortDir, audit.VerifyOptions{PubKey: f.bank.Verifier(), TrustedCheckpoint: full})
		var ve *audit.VerifyError
		if !errors.As(err, &ve) || ve.Class != audit.Inconsistent || ve.Index != 1 {
			t.Fatalf("rollback: %v", err)
		}
	})
	// The untouched bundle still verifies.
	if _, err := audit.VerifyBundle(f.bundle, opts); err != nil {
		t.Fatal(err)
	}
}

func TestExitCodes(t *testing.T) {
	seen := map[int]bool{}
	for c := audit.BitFlip; c <= audit.Inconsistent; c++ {
		code := c.ExitCode()
		if code < 10 || code > 16 || seen[code] {
			t.Errorf("%v.ExitCode() = %d", c, code)
		}
		seen[code] = true
	}
}
