package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-dev/tandem/testnet"
)

// TestPSIKill9Resume kills either node with SIGKILL in the middle of a PSI
// job, restarts it, and checks the job ends with exactly the planted
// intersection and that neither node recorded the job's end twice
// (issue 3, "Resume").
func TestPSIKill9Resume(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process crash test")
	}
	dir := t.TempDir()
	if out, e, code := tandem(t, "testnet", "up", "--dir", dir, "--nodes", "bank,partner-a", "--rows", "40000"); code != 0 {
		t.Fatalf("testnet up: exit %d\n%s\n%s", code, out, e)
	}
	defer tandem(t, "testnet", "down", "--dir", dir)
	st, err := testnet.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	bank := filepath.Join(dir, "bank")
	want := int64(st.Truth.Partners[0].ByEither)
	for _, victim := range []string{"partner-a", "bank"} {
		t.Run("kill="+victim, func(t *testing.T) {
			out, e, code := tandem(t, "--home", bank, "--json", "psi", "--peer", "partner-a", "--dataset", "customers", "--peer-dataset", "users")
			if code != 0 {
				t.Fatalf("psi: exit %d: %s", code, e)
			}
			var j struct{ ID string }
			json.Unmarshal([]byte(out), &j)
			// Wait until the job is well under way, then kill -9.
			deadline := time.Now().Add(60 * time.Second)
			for {
				s := jobState(t, bank, j.ID)
				if s.State == "running" && s.Progress > 0.1 {
					break
				}
				if s.State == "succeeded" || time.Now().After(deadline) {
					t.Fatalf("job reached %s/%.2f before it could be interrupted; enlarge the dataset", s.State, s.Progress)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := testnet.Kill(st, victim); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			if err := testnet.Restart(dir, victim, os.Args[0]); err != nil {
				t.Fatal(err)
			}
			st, _ = testnet.Load(dir) // new pid
			out, e, code = tandem(t, "--home", bank, "--json", "job", "watch", j.ID)
			if code != 0 {
				t.Fatalf("job after restart: exit %d\n%s%s", code, out, e)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			var last struct {
				State  string
				Result struct {
					Intersection int64
					Receipt      struct{ Signatures int }
				}
			}
			json.Unmarshal([]byte(lines[len(lines)-1]), &last)
			if last.State != "succeeded" || last.Result.Intersection != want || last.Result.Receipt.Signatures != 2 {
				t.Fatalf("after kill -9 of %s: got %s, intersection %d, %d receipt signatures; want succeeded, %d, 2",
					victim, last.State, last.Result.Intersection, last.Result.Receipt.Signatures, want)
			}
			for _, home := range []string{bank, filepath.Join(dir, "partner-a")} {
				out, _, _ := tandem(t, "--home", home, "--json", "audit", "tail", "--job", j.ID)
				if n := strings.Count(out, `"Kind":"job_finished"`); n != 1 {
					t.Errorf("%s recorded job_finished %d times, want 1", filepath.Base(home), n)
				}
				if n := strings.Count(out, `"Kind":"receipt"`); n != 1 {
					t.Errorf("%s recorded %d receipts, want 1", filepath.Base(home), n)
				}
			}
		})
	}
}

type jobStatus struct {
	State    string
	Progress float64
}

func jobState(t *testing.T, home, id string) jobStatus {
	out, e, code := tandem(t, "--home", home, "--json", "job", "status", id)
	if code != 0 {
		// The bank may be the one restarting.
		return jobStatus{State: fmt.Sprintf("unreachable: %s", e)}
	}
	var s jobStatus
	json.Unmarshal([]byte(out), &s)
	return s
}
