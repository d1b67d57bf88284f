package merkle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"
)

// Known-answer vectors: the 8-leaf tree of RFC 6962 test data as published in
// github.com/transparency-dev/merkle, proof/verify_test.go (originally from
// the Certificate Transparency C++ log tests). Inclusion vectors use 1-based
// leaf numbers as in the source.
var (
	kaLeaves = []string{"", "00", "10", "2021", "3031", "40414243",
		"5051525354555657", "606162636465666768696a6b6c6d6e6f"}
	kaRoots = []string{
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	kaInclusion = []struct {
		leaf, size uint64
		proof      []string
	}{
		{1, 1, nil},
		{1, 8, []string{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
			"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
		{6, 8, []string{"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
			"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
			"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
		{3, 3, []string{"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
		{2, 5, []string{"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
			"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
	}
	kaConsistency = []struct {
		m, n  uint64
		proof []string
	}{
		{1, 1, nil},
		{1, 8, []string{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
			"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
		{6, 8, []string{"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
			"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
			"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
		{2, 5, []string{"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
		{6, 7, []string{"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
			"b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
			"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	}
)

func hx(t testing.TB, s string) Hash {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != HashSize {
		t.Fatalf("bad hex %q", s)
	}
	return Hash(b)
}

func hexes(t testing.TB, ss []string) []Hash {
	var out []Hash
	for _, s := range ss {
		out = append(out, hx(t, s))
	}
	return out
}

func kaLeafHashes(t testing.TB) Leaves {
	var ls Leaves
	for _, s := range kaLeaves {
		b, _ := hex.DecodeString(s)
		ls = append(ls, HashLeaf(b))
	}
	return ls
}

func TestKnownAnswers(t *testing.T) {
	if got, want := EmptyRoot, Hash(sha256.Sum256(nil)); got != want {
		t.Fatalf("EmptyRoot = %x, want %x", got, want)
	}
	ls := kaLeafHashes(t)
	for i, r := range kaRoots {
		if got, want := Root(ls[:i+1]), hx(t, r); got != want {
			t.Errorf("root(%d) = %x, want %x", i+1, got, want)
		}
	}
	for _, tc := range kaInclusion {
		t.Run(fmt.Sprintf("inclusion/%d/%d", tc.leaf, tc.size), func(t *testing.T) {
			want := hexes(t, tc.proof)
			got, err := InclusionProof(ls[:tc.size], tc.leaf-1, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("proof = %x, want %x", got, want)
			}
			root := hx(t, kaRoots[tc.size-1])
			if err := VerifyInclusion(tc.leaf-1, tc.size, ls[tc.leaf-1], want, root); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				bad := append([]Hash(nil), want...)
				bad[i][0] ^= 8
				if VerifyInclusion(tc.leaf-1, tc.size, ls[tc.leaf-1], bad, root) == nil {
					t.Errorf("verified with proof[%d] flipped", i)
				}
			}
			if VerifyInclusion(tc.leaf-1, tc.size, ls[tc.leaf-1], append(want, root), root) == nil {
				t.Error("verified with trailing garbage")
			}
		})
	}
	for _, tc := range kaConsistency {
		t.Run(fmt.Sprintf("consistency/%d/%d", tc.m, tc.n), func(t *testing.T) {
			want := hexes(t, tc.proof)
			got, err := ConsistencyProof(ls[:tc.n], tc.m, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("proof = %x, want %x", got, want)
			}
			r1, r2 := hx(t, kaRoots[tc.m-1]), hx(t, kaRoots[tc.n-1])
			if err := VerifyConsistency(tc.m, tc.n, r1, r2, want); err != nil {
				t.Fatal(err)
			}
			if tc.m != tc.n && VerifyConsistency(tc.m, tc.n, r2, r1, want) == nil {
				t.Error("verified with swapped roots")
			}
			for i := range want {
				bad := append([]Hash(nil), want...)
				bad[i][0] ^= 16
				if VerifyConsistency(tc.m, tc.n, r1, r2, bad) == nil {
					t.Errorf("verified with proof[%d] flipped", i)
				}
			}
		})
	}
}

// naiveRoot is MTH transcribed literally from RFC 6962 §2.1.
func naiveRoot(d [][]byte) Hash {
	switch len(d) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, d[0]...))
	}
	k := 1
	for k*2 < len(d) {
		k *= 2
	}
	l, r := naiveRoot(d[:k]), naiveRoot(d[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// naivePath is PATH(m, D[n]) from RFC 6962 §2.1.1.
func naivePath(m int, d [][]byte) []Hash {
	if len(d) <= 1 {
		return nil
	}
	k := 1
	for k*2 < len(d) {
		k *= 2
	}
	if m < k {
		return append(naivePath(m, d[:k]), naiveRoot(d[k:]))
	}
	return append(naivePath(m-k, d[k:]), naiveRoot(d[:k]))
}

// naiveSubproof is SUBPROOF(m, D[n], b) from RFC 6962 §2.1.2.
func naiveSubproof(m int, d [][]byte, b bool) []Hash {
	if m == len(d) {
		if b {
			return nil
		}
		return []Hash{naiveRoot(d)}
	}
	k := 1
	for k*2 < len(d) {
		k *= 2
	}
	if m <= k {
		return append(naiveSubproof(m, d[:k], b), naiveRoot(d[k:]))
	}
	return append(naiveSubproof(m-k, d[k:], false), naiveRoot(d[:k]))
}

func TestAgainstNaiveModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var data [][]byte
	var ls Leaves
	var c Compact
	nodes := map[[2]uint64]Hash{}
	for n := 0; n <= 300; n++ {
		if got, want := c.Root(), naiveRoot(data); got != want {
			t.Fatalf("size %d: compact root %x, want %x", n, got, want)
		}
		if got, _ := RootAt(ls, uint64(n)); got != naiveRoot(data) {
			t.Fatalf("size %d: RootAt mismatch", n)
		}
		if n > 0 {
			for try := 0; try < 3; try++ {
				m := rng.IntN(n)
				got, err := InclusionProof(ls, uint64(m), uint64(n))
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(naivePath(m, data)) {
					t.Fatalf("inclusion %d/%d differs from model", m, n)
				}
				if err := VerifyInclusion(uint64(m), uint64(n), ls[m], got, naiveRoot(data)); err != nil {
					t.Fatalf("inclusion %d/%d: %v", m, n, err)
				}
				m1 := rng.IntN(n + 1)
				cp, err := ConsistencyProof(ls, uint64(m1), uint64(n))
				if err != nil {
					t.Fatal(err)
				}
				var want []Hash
				if m1 > 0 && m1 < n {
					want = naiveSubproof(m1, data, true)
				}
				if fmt.Sprint(cp) != fmt.Sprint(want) {
					t.Fatalf("consistency %d/%d differs from model", m1, n)
				}
				if err := VerifyConsistency(uint64(m1), uint64(n), naiveRoot(data[:m1]), naiveRoot(data), cp); err != nil {
					t.Fatalf("consistency %d/%d: %v", m1, n, err)
				}
				if m1 > 0 && m1 < n {
					other := naiveRoot(append([][]byte{{0xff}}, data[1:m1]...))
					if VerifyConsistency(uint64(m1), uint64(n), other, naiveRoot(data), cp) == nil {
						t.Fatalf("consistency %d/%d verified a forked prefix", m1, n)
					}
				}
			}
		}
		d := make([]byte, rng.IntN(40))
		for i := range d {
			d[i] = byte(rng.Uint32())
		}
		data = append(data, d)
		ls = append(ls, HashLeaf(d))
		c.Append(HashLeaf(d), func(level uint8, index uint64, h Hash) {
			nodes[[2]uint64{uint64(level), index}] = h
		})
		// Every completed node reported by Append matches the model.
		for k, h := range nodes {
			if want, _ := ls.Node(uint8(k[0]), k[1]); want != h {
				t.Fatalf("node %v mismatch", k)
			}
			delete(nodes, k)
		}
	}
}
