// Package audittest holds test helpers for code that uses package audit,
// chiefly a crash-safety soak: a child process appends forever and prints
// every acknowledged sequence number; the parent kills it with SIGKILL,
// restarts it, and finally checks that no acknowledged entry was lost or
// duplicated and that an export bundle verifies.
//
// To use it, call MaybeRunChild from TestMain before m.Run, then call
// CrashSoak from a test.
package audittest

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/audit"
)

// Environment variables understood by the child.
const (
	ChildEnv = "TANDEM_AUDIT_CRASH_CHILD" // store directory; set => run as child
	RunEnv   = "TANDEM_AUDIT_CRASH_RUN"   // iteration number
)

// Log is the log name the soak appends to.
const Log = "root"

// MaybeRunChild runs AppendForever and exits if ChildEnv is set; otherwise
// it returns immediately. Call it first thing in TestMain.
func MaybeRunChild() {
	dir := os.Getenv(ChildEnv)
	if dir == "" {
		return
	}
	run, _ := strconv.Atoi(os.Getenv(RunEnv))
	if err := AppendForever(dir, run, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(0)
}

// AppendForever opens the store in dir and appends from 8 goroutines until
// the process is killed, writing one line "seq job event dup" per
// acknowledged append to w with a single Write each (atomic on a pipe). It
// first retries the first 10 keys of the previous run, which must come back
// as duplicates with their original seqs if they had been acknowledged.
// It returns only on error.
func AppendForever(dir string, run int, w io.Writer) error {
	s, err := audit.OpenStore(dir, audit.StoreOptions{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	var mu sync.Mutex
	appendOne := func(key audit.IdemKey) error {
		e := audit.Entry{
			Actor: audit.Actor{Kind: audit.ActorNode, Name: "soak"}, Kind: audit.KindOperatorAction,
			JobID: key.Job, Detail: map[string]string{"event": key.Event},
		}
		seq, dup, err := s.Append(ctx, Log, key, e)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%d %s %s %v\n", seq, key.Job, key.Event, dup)
		mu.Lock()
		defer mu.Unlock()
		_, err = io.WriteString(w, line)
		return err
	}
	if run > 0 {
		for i := 0; i < 10; i++ {
			if err := appendOne(audit.IdemKey{Job: fmt.Sprintf("run%d", run-1), Event: fmt.Sprintf("g0-%d", i)}); err != nil {
				return err
			}
		}
	}
	errc := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; ; i++ {
				if err := appendOne(audit.IdemKey{Job: fmt.Sprintf("run%d", run), Event: fmt.Sprintf("g%d-%d", g, i)}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	return <-errc
}

// CrashSoak runs iterations of: start the test binary as a child appending
// to a store in a fresh temp dir, SIGKILL it after a random 50–400 ms, and
// record what it acknowledged. Afterwards it checks that every acknowledged
// append is in the log at its acknowledged seq, that no idempotency key
// appears twice, that retried keys came back as duplicates with their
// original seq, and that an exported bundle verifies. The test binary's
// TestMain must call MaybeRunChild.
func CrashSoak(t testing.TB, iterations int) {
	t.Helper()
	dir := t.TempDir()
	acked := map[string]uint64{} // "job event" -> seq
	for it := 0; it < iterations; it++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), ChildEnv+"="+dir, RunEnv+"="+strconv.Itoa(it))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan []string, 1)
		go func() {
			var got []string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				got = append(got, sc.Text())
			}
			lines <- got
		}()
		time.Sleep(time.Duration(50+rand.IntN(350)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		got := <-lines
		werr := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("iteration %d: child exited on its own (%v): %s", it, werr, stderr.String())
		}
		for _, l := range got {
			f := strings.Fields(l)
			if len(f) != 4 {
				t.Fatalf("bad child line %q", l)
			}
			seq, _ := strconv.ParseUint(f[0], 10, 64)
			k := f[1] + " " + f[2]
			if prev, ok := acked[k]; ok && prev != seq {
				t.Fatalf("key %s acknowledged at seq %d and %d", k, prev, seq)
			}
			if _, ok := acked[k]; ok && f[3] != "true" {
				t.Fatalf("retry of acknowledged key %s was not reported as duplicate", k)
			}
			acked[k] = seq
		}
	}
	signer, err := audit.NewEd25519Signer("soak.test", ed25519.NewKeyFromSeed(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.OpenStore(dir, audit.StoreOptions{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	size, err := s.Size(Log)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := s.Entries(Log, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	inLog := map[string]uint64{}
	for _, e := range entries {
		k := e.JobID + " " + e.Detail["event"]
		if prev, dup := inLog[k]; dup {
			t.Fatalf("key %s stored twice (seq %d and %d)", k, prev, e.Seq)
		}
		inLog[k] = e.Seq
	}
	lost := 0
	for k, seq := range acked {
		if got, ok := inLog[k]; !ok || got != seq {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged entries lost or moved", lost)
	}
	bundle := t.TempDir()
	if err := audit.Export(context.Background(), s, Log, bundle, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.VerifyBundle(bundle, audit.VerifyOptions{PubKey: signer.Verifier()}); err != nil {
		t.Fatal(err)
	}
	t.Logf("crash soak: %d iterations, %d acknowledged, %d in log", iterations, len(acked), size)
}
