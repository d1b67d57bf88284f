package psi

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// testKey returns a deterministic key for tests.
func testKey(t testing.TB, seed uint64) *Key {
	t.Helper()
	k, err := GenerateKey(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testSuites() []Suite { return []Suite{Ristretto255(), FastSuite()} }

// testIDs returns n distinct identifiers prefixed by p.
func testIDs(p string, lo, hi int) [][]byte {
	ids := make([][]byte, 0, hi-lo)
	for i := lo; i < hi; i++ {
		ids = append(ids, fmt.Appendf(nil, "%s%08d", p, i))
	}
	return ids
}

func TestSuiteCommutes(t *testing.T) {
	for _, s := range testSuites() {
		t.Run(s.Name(), func(t *testing.T) {
			a, b := testKey(t, 1), testKey(t, 2)
			ids := testIDs("+86138", 0, 100)
			domain := []byte("job-42/mobile")
			n := s.ElementSize()
			ha := make([]byte, len(ids)*n)
			hb := make([]byte, len(ids)*n)
			s.HashMask(a, domain, ids, ha, 3)
			s.HashMask(b, domain, ids, hb, 0)
			hab := make([]byte, len(ha))
			hba := make([]byte, len(hb))
			if err := s.Remask(b, ha, hab, 2); err != nil {
				t.Fatal(err)
			}
			if err := s.Remask(a, hb, hba, 1); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(hab, hba) {
				t.Fatal("H(x)^ab != H(x)^ba")
			}
			if bytes.Equal(ha, hb) {
				t.Fatal("different keys gave the same masks")
			}
			// Worker count does not change the output.
			h1 := make([]byte, len(ha))
			s.HashMask(a, domain, ids, h1, 1)
			if !bytes.Equal(h1, ha) {
				t.Fatal("HashMask depends on workers")
			}
			// Domain separation.
			s.HashMask(a, []byte("job-43/mobile"), ids, h1, 1)
			if bytes.Equal(h1[:n], ha[:n]) {
				t.Fatal("domain ignored")
			}
		})
	}
}

// TestSuiteIntersection checks that the DH-PSI flow over each suite yields
// exactly the plaintext intersection, and that both suites agree.
func TestSuiteIntersection(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	bankIDs := testIDs("id", 0, 300)
	partnerIDs := testIDs("id", 200, 450) // plaintext overlap: id200…id299
	// Shuffle, and add a few random-only ids.
	r.Shuffle(len(partnerIDs), func(i, j int) { partnerIDs[i], partnerIDs[j] = partnerIDs[j], partnerIDs[i] })
	want := map[string]bool{}
	inPartner := map[string]bool{}
	for _, id := range partnerIDs {
		inPartner[string(id)] = true
	}
	for _, id := range bankIDs {
		if inPartner[string(id)] {
			want[string(id)] = true
		}
	}
	results := map[string]map[string]bool{}
	for _, s := range testSuites() {
		a, b := testKey(t, 11), testKey(t, 12)
		domain := []byte("job-7/id")
		n := s.ElementSize()
		ha := make([]byte, len(bankIDs)*n)
		hb := make([]byte, len(partnerIDs)*n)
		s.HashMask(a, domain, bankIDs, ha, 0)
		s.HashMask(b, domain, partnerIDs, hb, 0)
		hab := make([]byte, len(ha))
		hba := make([]byte, len(hb))
		if err := s.Remask(b, ha, hab, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Remask(a, hb, hba, 0); err != nil {
			t.Fatal(err)
		}
		set := map[string]bool{}
		for i := range partnerIDs {
			set[string(hba[i*n:(i+1)*n])] = true
		}
		got := map[string]bool{}
		for i, id := range bankIDs {
			if set[string(hab[i*n:(i+1)*n])] {
				got[string(id)] = true
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: intersection size %d, want %d", s.Name(), len(got), len(want))
		}
		for id := range want {
			if !got[id] {
				t.Fatalf("%s: missing %s", s.Name(), id)
			}
		}
		results[s.Name()] = got
	}
	// The fast suite finds the same intersection as the reference.
	if len(results[r255SuiteName]) != len(results[x25519SuiteName]) {
		t.Fatal("suites disagree")
	}
	for id := range results[r255SuiteName] {
		if !results[x25519SuiteName][id] {
			t.Fatalf("suites disagree on %s", id)
		}
	}
}

func TestRemaskInvalid(t *testing.T) {
	for _, s := range testSuites() {
		t.Run(s.Name(), func(t *testing.T) {
			k := testKey(t, 3)
			ids := testIDs("x", 0, 40)
			src := make([]byte, len(ids)*32)
			s.HashMask(k, nil, ids, src, 0)
			// Corrupt element 17 with a non-canonical encoding.
			copy(src[17*32:], bytes.Repeat([]byte{0xff}, 32))
			copy(src[30*32:], bytes.Repeat([]byte{0xff}, 32))
			err := s.Remask(k, src, make([]byte, len(src)), 4)
			if !errors.Is(err, ErrInvalidElement) {
				t.Fatalf("got %v, want ErrInvalidElement", err)
			}
			if !strings.Contains(err.Error(), "index 17") || !strings.HasPrefix(err.Error(), "psi: ") {
				t.Fatalf("error %q should name index 17 and start with psi:", err)
			}
			if err := s.Remask(k, src[:33], make([]byte, 33), 1); !errors.Is(err, ErrInvalidElement) {
				t.Fatalf("short input: got %v, want ErrInvalidElement", err)
			}
			if err := s.Remask(k, nil, nil, 1); err != nil {
				t.Fatalf("empty input: %v", err)
			}
		})
	}
}

func TestKeyRedactedAndZero(t *testing.T) {
	k := testKey(t, 5)
	secret := fmt.Sprintf("%x", k.x25519[:8])
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
		for _, v := range []any{k, *k} {
			out := fmt.Sprintf(f, v)
			if out != redactedKey || strings.Contains(out, secret) {
				t.Errorf("Sprintf(%s, key) = %q, want redacted", f, out)
			}
		}
	}
	k.Zero()
	if k.x25519 != [32]byte{} || k.r255.Equal(&new(Key).r255) != 1 {
		t.Fatal("Zero left secret material")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("HashMask with a zeroed key did not panic")
		}
	}()
	Ristretto255().HashMask(k, nil, [][]byte{[]byte("a")}, make([]byte, 32), 1)
}

func TestGenerateKeyError(t *testing.T) {
	_, err := GenerateKey(strings.NewReader("short"))
	if err == nil || !strings.HasPrefix(err.Error(), "psi: ") {
		t.Fatalf("got %v, want psi: error", err)
	}
}

func TestHashMaskNoAllocsPerElement(t *testing.T) {
	for _, s := range testSuites() {
		k := testKey(t, 9)
		ids := testIDs("a", 0, 256)
		dst := make([]byte, len(ids)*32)
		allocs := testing.AllocsPerRun(3, func() { s.HashMask(k, []byte("d"), ids, dst, 1) })
		if allocs > 20 {
			t.Errorf("%s: HashMask of 256 ids: %v allocs, want O(1)", s.Name(), allocs)
		}
		src := append([]byte(nil), dst...)
		allocs = testing.AllocsPerRun(3, func() { _ = s.Remask(k, src, dst, 1) })
		if allocs > 10 {
			t.Errorf("%s: Remask of 256 elements: %v allocs, want O(1)", s.Name(), allocs)
		}
	}
}
