package psi_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"

	"github.com/tandem-dev/tandem/psi"
)

// The initiator's side after the crypto: tag both final-element streams,
// sort them out of core, intersect, sort the matches by position and persist
// the alignment.
func Example_intersect() {
	// Final elements H(x)^{bp}: the bank's in its row order, the partner's
	// in the partner's shuffled position order. Real ones are 32-byte group
	// encodings; these stand-ins are enough for tags.
	bank := []string{"alice", "bob", "carol", "dave"}
	partner := []string{"erin", "carol", "alice", "frank", "gus"}

	ts := psi.TagSize(int64(len(bank)), int64(len(partner)))
	dir := os.TempDir()
	sortTags := func(elems []string) *psi.Sorter {
		s := psi.NewSorter(dir, ts+8, 64<<20)
		rec := make([]byte, ts+8)
		for i, e := range elems {
			psi.Tag(rec[:ts], []byte(e)) // tag ‖ big-endian index
			binary.BigEndian.PutUint64(rec[ts:], uint64(i))
			if err := s.Add(rec); err != nil {
				panic(err)
			}
		}
		return s
	}
	sb, sp := sortTags(bank), sortTags(partner)
	defer sb.Close()
	defer sp.Close()
	itB, err := sb.Sort()
	if err != nil {
		panic(err)
	}
	itP, err := sp.Sort()
	if err != nil {
		panic(err)
	}

	// Matches come in tag order; re-sort them as position ‖ row.
	pairs := psi.NewSorter(dir, 16, 64<<20)
	defer pairs.Close()
	var rec [16]byte
	m, err := psi.IntersectSorted(itB, itP, ts, func(row, pos uint64) error {
		binary.BigEndian.PutUint64(rec[:8], pos)
		binary.BigEndian.PutUint64(rec[8:], row)
		return pairs.Add(rec[:])
	})
	if err != nil {
		panic(err)
	}
	byPos, err := pairs.Sort()
	if err != nil {
		panic(err)
	}
	var file bytes.Buffer
	h := psi.AlignmentHeader{Reveal: psi.RevealInitiator, Length: uint64(len(partner)), Matched: uint64(m)}
	if err := psi.WriteAlignment(&file, h, byPos); err != nil {
		panic(err)
	}

	a, err := psi.ReadAlignment(&file)
	if err != nil {
		panic(err)
	}
	fmt.Printf("L=%d matched=%d reveal=%v\n", a.Length, a.Matched, a.Reveal)
	for i, pos := range a.Positions {
		fmt.Printf("position %d -> bank row %d (%s)\n", pos, a.Rows[i], bank[a.Rows[i]])
	}
	// Output:
	// L=5 matched=2 reveal=initiator
	// position 1 -> bank row 2 (carol)
	// position 2 -> bank row 0 (alice)
}
