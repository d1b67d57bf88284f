// Package merkle implements the RFC 6962 / RFC 9162 Merkle tree hash used by
// the audit log: leaf and node hashing with domain separation (0x00 for
// leaves, 0x01 for interior nodes, SHA-256), tree heads for any size,
// inclusion and consistency proofs (generation and verification), and a
// compact range that folds leaves into a root in O(log n) per append.
//
// The package is pure computation: it performs no I/O. Proof generation reads
// perfect-subtree hashes through the [NodeReader] interface so that a store
// can serve them from disk.
//
// All functions are safe for concurrent use; a [Compact] value is not.
package merkle

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
)

// HashSize is the size in bytes of every hash in the tree.
const HashSize = sha256.Size

// Hash is a SHA-256 digest of a leaf or a node.
type Hash = [HashSize]byte

// ErrVerify is returned (wrapped) by [VerifyInclusion] and
// [VerifyConsistency] when a proof does not verify. Callers treat it as
// evidence of tampering or of a buggy peer; retrying will not help.
var ErrVerify = errors.New("merkle: proof does not verify")

// ErrRange is returned (wrapped) when indices or sizes passed to a proof
// function are out of range (for example index >= size). It signals a caller
// bug or an invalid request, not tampering.
var ErrRange = errors.New("merkle: index or size out of range")

// EmptyRoot is MTH({}) = SHA-256(""), the root of the empty tree
// (RFC 6962 §2.1).
var EmptyRoot = Hash(sha256.Sum256(nil))

// HashLeaf returns MTH({d}) = SHA-256(0x00 || d) (RFC 6962 §2.1).
func HashLeaf(data []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// HashChildren returns SHA-256(0x01 || l || r) (RFC 6962 §2.1).
func HashChildren(l, r Hash) Hash {
	var buf [1 + 2*HashSize]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[1+HashSize:], r[:])
	return sha256.Sum256(buf[:])
}

// splitPoint returns k, the largest power of two strictly smaller than n
// (n >= 2), as used by MTH in RFC 6962 §2.1.
func splitPoint(n uint64) uint64 {
	return uint64(1) << (bits.Len64(n-1) - 1)
}

// Root returns MTH(D[n]) for the given leaf hashes (RFC 6962 §2.1).
func Root(leaves []Hash) Hash {
	if len(leaves) == 0 {
		return EmptyRoot
	}
	var c Compact
	for _, l := range leaves {
		c.Append(l, nil)
	}
	return c.Root()
}

// NodeReader returns hashes of perfect, aligned subtrees: Node(level, index)
// is the root of the subtree covering leaves [index<<level, (index+1)<<level).
// Level 0 returns leaf hashes.
type NodeReader interface {
	Node(level uint8, index uint64) (Hash, error)
}

// Leaves is an in-memory [NodeReader] over a slice of leaf hashes. It computes
// interior nodes on demand (O(2^level) per call) and is meant for tests and
// small trees.
type Leaves []Hash

// Node implements [NodeReader].
func (l Leaves) Node(level uint8, index uint64) (Hash, error) {
	lo := index << level
	hi := lo + 1<<level
	if hi > uint64(len(l)) || hi <= lo {
		return Hash{}, fmt.Errorf("%w: node %d/%d beyond %d leaves", ErrRange, level, index, len(l))
	}
	return Root(l[lo:hi]), nil
}

// Subtree returns MTH(D[lo:hi]) reading perfect subtrees from r. The range
// must be one that occurs in the RFC 6962 recursion: hi-lo > 0 and lo a
// multiple of the largest power of two not exceeding hi-lo.
func Subtree(r NodeReader, lo, hi uint64) (Hash, error) {
	n := hi - lo
	if hi <= lo {
		return Hash{}, fmt.Errorf("%w: empty subtree [%d,%d)", ErrRange, lo, hi)
	}
	if n&(n-1) == 0 {
		level := uint8(bits.TrailingZeros64(n))
		if lo&(n-1) != 0 {
			return Hash{}, fmt.Errorf("%w: unaligned subtree [%d,%d)", ErrRange, lo, hi)
		}
		return r.Node(level, lo>>level)
	}
	k := splitPoint(n)
	left, err := Subtree(r, lo, lo+k)
	if err != nil {
		return Hash{}, err
	}
	right, err := Subtree(r, lo+k, hi)
	if err != nil {
		return Hash{}, err
	}
	return HashChildren(left, right), nil
}

// RootAt returns the tree head MTH(D[0:size]) read from r.
func RootAt(r NodeReader, size uint64) (Hash, error) {
	if size == 0 {
		return EmptyRoot, nil
	}
	return Subtree(r, 0, size)
}

// InclusionProof returns PATH(index, D[0:size]) (RFC 6962 §2.1.1), leaf-side
// first. It returns an error wrapping [ErrRange] if index >= size.
func InclusionProof(r NodeReader, index, size uint64) ([]Hash, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: index %d, size %d", ErrRange, index, size)
	}
	var proof []Hash
	if err := path(r, index, 0, size, &proof); err != nil {
		return nil, err
	}
	return proof, nil
}

// path appends PATH(m, D[lo:hi]) to *out; m is relative to lo.
func path(r NodeReader, m, lo, hi uint64, out *[]Hash) error {
	n := hi - lo
	if n == 1 {
		return nil
	}
	k := splitPoint(n)
	if m < k {
		if err := path(r, m, lo, lo+k, out); err != nil {
			return err
		}
		h, err := Subtree(r, lo+k, hi)
		if err != nil {
			return err
		}
		*out = append(*out, h)
		return nil
	}
	if err := path(r, m-k, lo+k, hi, out); err != nil {
		return err
	}
	h, err := Subtree(r, lo, lo+k)
	if err != nil {
		return err
	}
	*out = append(*out, h)
	return nil
}

// ConsistencyProof returns PROOF(m, D[0:n]) (RFC 6962 §2.1.2). The proof is
// empty when m == 0 or m == n. It returns an error wrapping [ErrRange] if
// m > n.
func ConsistencyProof(r NodeReader, m, n uint64) ([]Hash, error) {
	if m > n {
		return nil, fmt.Errorf("%w: consistency %d > %d", ErrRange, m, n)
	}
	if m == 0 || m == n {
		return nil, nil
	}
	var proof []Hash
	if err := subproof(r, m, 0, n, true, &proof); err != nil {
		return nil, err
	}
	return proof, nil
}

// subproof appends SUBPROOF(m, D[lo:hi], b) to *out; m is relative to lo.
func subproof(r NodeReader, m, lo, hi uint64, b bool, out *[]Hash) error {
	n := hi - lo
	if m == n {
		if b {
			return nil
		}
		h, err := Subtree(r, lo, hi)
		if err != nil {
			return err
		}
		*out = append(*out, h)
		return nil
	}
	k := splitPoint(n)
	if m <= k {
		if err := subproof(r, m, lo, lo+k, b, out); err != nil {
			return err
		}
		h, err := Subtree(r, lo+k, hi)
		if err != nil {
			return err
		}
		*out = append(*out, h)
		return nil
	}
	if err := subproof(r, m-k, lo+k, hi, false, out); err != nil {
		return err
	}
	h, err := Subtree(r, lo, lo+k)
	if err != nil {
		return err
	}
	*out = append(*out, h)
	return nil
}

// RootFromInclusion recomputes the root from a leaf hash and its inclusion
// proof following RFC 9162 §2.1.3.2.
func RootFromInclusion(index, size uint64, leaf Hash, proof []Hash) (Hash, error) {
	if index >= size {
		return Hash{}, fmt.Errorf("%w: index %d, size %d", ErrVerify, index, size)
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range proof {
		if sn == 0 {
			return Hash{}, fmt.Errorf("%w: proof too long", ErrVerify)
		}
		if fn&1 == 1 || fn == sn {
			r = HashChildren(p, r)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			r = HashChildren(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return Hash{}, fmt.Errorf("%w: proof too short", ErrVerify)
	}
	return r, nil
}

// VerifyInclusion checks that leaf is at index in the tree of the given size
// and root (RFC 9162 §2.1.3.2). It returns nil or an error wrapping
// [ErrVerify].
func VerifyInclusion(index, size uint64, leaf Hash, proof []Hash, root Hash) error {
	got, err := RootFromInclusion(index, size, leaf, proof)
	if err != nil {
		return err
	}
	if got != root {
		return fmt.Errorf("%w: root mismatch", ErrVerify)
	}
	return nil
}

// VerifyConsistency checks that the tree (m, root1) is a prefix of the tree
// (n, root2) (RFC 9162 §2.1.4.2). It returns nil or an error wrapping
// [ErrVerify].
func VerifyConsistency(m, n uint64, root1, root2 Hash, proof []Hash) error {
	switch {
	case m > n:
		return fmt.Errorf("%w: size %d > %d", ErrVerify, m, n)
	case m == n:
		if len(proof) != 0 || root1 != root2 {
			return fmt.Errorf("%w: equal sizes need equal roots and an empty proof", ErrVerify)
		}
		return nil
	case m == 0:
		if len(proof) != 0 {
			return fmt.Errorf("%w: non-empty proof from the empty tree", ErrVerify)
		}
		return nil
	case len(proof) == 0:
		return fmt.Errorf("%w: empty proof", ErrVerify)
	}
	// Step 2: if m is an exact power of two, prepend root1.
	if m&(m-1) == 0 {
		proof = append([]Hash{root1}, proof...)
	}
	fn, sn := m-1, n-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := proof[0], proof[0]
	for _, c := range proof[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: proof too long", ErrVerify)
		}
		if fn&1 == 1 || fn == sn {
			fr = HashChildren(c, fr)
			sr = HashChildren(c, sr)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			sr = HashChildren(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || fr != root1 || sr != root2 {
		return fmt.Errorf("%w: consistency mismatch", ErrVerify)
	}
	return nil
}

// Compact is the compact range [0, size) of a growing tree: the roots of the
// perfect subtrees ("peaks") that make up the tree, largest first. Append is
// O(log n) and Root is O(log n). The zero value is the empty tree. A Compact
// is not safe for concurrent use.
type Compact struct {
	size  uint64
	peaks []Hash
}

// NewCompact rebuilds a compact range from a size and its peaks (largest
// first). It returns an error wrapping [ErrRange] if len(peaks) is not the
// number of set bits in size.
func NewCompact(size uint64, peaks []Hash) (*Compact, error) {
	if len(peaks) != bits.OnesCount64(size) {
		return nil, fmt.Errorf("%w: %d peaks for size %d", ErrRange, len(peaks), size)
	}
	return &Compact{size: size, peaks: append([]Hash(nil), peaks...)}, nil
}

// Size returns the number of leaves folded in.
func (c *Compact) Size() uint64 { return c.size }

// Peaks returns a copy of the peaks, largest subtree first.
func (c *Compact) Peaks() []Hash { return append([]Hash(nil), c.peaks...) }

// Clone returns an independent copy.
func (c *Compact) Clone() *Compact {
	return &Compact{size: c.size, peaks: append([]Hash(nil), c.peaks...)}
}

// Append folds in one leaf hash. If visit is non-nil it is called for every
// perfect subtree completed by this append, including the leaf itself at
// level 0, so that a store can persist node hashes.
func (c *Compact) Append(leaf Hash, visit func(level uint8, index uint64, h Hash)) {
	h := leaf
	idx := c.size
	if visit != nil {
		visit(0, idx, h)
	}
	var level uint8
	for s := c.size; s&1 == 1; s >>= 1 {
		left := c.peaks[len(c.peaks)-1]
		c.peaks = c.peaks[:len(c.peaks)-1]
		h = HashChildren(left, h)
		level++
		idx >>= 1
		if visit != nil {
			visit(level, idx, h)
		}
	}
	c.peaks = append(c.peaks, h)
	c.size++
}

// Root returns MTH(D[0:size]).
func (c *Compact) Root() Hash {
	if len(c.peaks) == 0 {
		return EmptyRoot
	}
	h := c.peaks[len(c.peaks)-1]
	for i := len(c.peaks) - 2; i >= 0; i-- {
		h = HashChildren(c.peaks[i], h)
	}
	return h
}

// PeaksAt returns the peaks (largest first) of the compact range [0, size),
// read from r: one perfect subtree per set bit of size.
func PeaksAt(r NodeReader, size uint64) ([]Hash, error) {
	var peaks []Hash
	var lo uint64
	for level := 63; level >= 0; level-- {
		if size&(1<<level) == 0 {
			continue
		}
		h, err := r.Node(uint8(level), lo>>level)
		if err != nil {
			return nil, err
		}
		peaks = append(peaks, h)
		lo += 1 << level
	}
	return peaks, nil
}
