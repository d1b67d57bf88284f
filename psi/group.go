package psi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// ErrInvalidElement is returned (wrapped, with the index of the first bad
// element) by Suite.Remask when the peer sent bytes that are not the canonical
// encoding of a group element the suite accepts. The input came from the peer:
// the caller should abort the job and report the peer as misbehaving; retrying
// with the same input cannot succeed.
var ErrInvalidElement = errors.New("psi: invalid group element")

// ErrUnknownSuite is returned by SuiteByName for a name no suite answers to.
// The caller should reject the job spec that named it.
var ErrUnknownSuite = errors.New("psi: unknown group suite")

// Suite is a prime-order-group instantiation of the DH-PSI blinding step.
//
// Both parties blind their own identifiers with HashMask and raise the
// peer's blinded values with Remask; since exponentiation commutes,
// H(x)^{ab} computed on either side is the same byte string, so the
// intersection is found by comparing encodings.
//
// Implementations are stateless and safe for concurrent use. They never
// include key material or identifiers in errors.
type Suite interface {
	// Name returns the suite's stable wire name ("ristretto255",
	// "x25519-ell2"). Both parties must use the same suite.
	Name() string
	// ElementSize returns the length in bytes of one encoded element.
	ElementSize() int
	// HashMask writes the encoding of H(domain, ids[i])^k into
	// dst[i*ElementSize():]. It is pure and deterministic; it runs on
	// `workers` goroutines (0 means GOMAXPROCS). It panics if
	// len(dst) != len(ids)*ElementSize() or k has been zeroed.
	HashMask(k *Key, domain []byte, ids [][]byte, dst []byte, workers int)
	// Remask raises each peer-supplied element in src to k and writes the
	// encodings into dst (len(dst) must equal len(src), else it panics).
	// It returns an error wrapping ErrInvalidElement, naming the lowest bad
	// index, if len(src) is not a multiple of ElementSize or any element is
	// not a valid encoding; dst is then unspecified.
	Remask(k *Key, src, dst []byte, workers int) error
}

// Ristretto255 returns the reference suite: ristretto255 (RFC 9496) with
// hash-to-group per RFC 9380 (expand_message_xmd, SHA-512, suite ID
// "ristretto255_XMD:SHA-512_R255MAP_RO_").
func Ristretto255() Suite { return ristrettoSuite{} }

// FastSuite returns the fast suite "x25519-ell2": RFC 9380
// curve25519_XMD:SHA-512_ELL2_RO_ hashing to the curve25519 u-coordinate and
// X25519 (RFC 7748) Montgomery-ladder exponentiation. Its output is not
// interchangeable with Ristretto255; both parties must agree on the suite.
func FastSuite() Suite { return x25519Suite{} }

// SuiteByName returns the suite whose Name is name, or an error wrapping
// ErrUnknownSuite.
func SuiteByName(name string) (Suite, error) {
	switch name {
	case r255SuiteName:
		return Ristretto255(), nil
	case x25519SuiteName:
		return FastSuite(), nil
	}
	// The name comes from a job spec; it is not secret but may be long.
	if len(name) > 64 {
		name = name[:64] + "…"
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownSuite, name)
}

// groupDSTPrefix starts every hash-to-group domain separation tag Tandem uses.
const groupDSTPrefix = "TANDEM-PSI-V1-"

// groupDST builds the RFC 9380 DST for suiteID and the caller's domain:
//
//	"TANDEM-PSI-V1-" || suiteID || "-" || uint16be(len(domain)) || domain
//
// The length prefix makes the map (suiteID, domain) → DST injective. A DST
// longer than 255 bytes is shortened by expandMessageXMD as RFC 9380 §5.3.3
// requires, so any domain up to 65535 bytes is accepted.
func groupDST(suiteID string, domain []byte) []byte {
	if len(domain) > 0xffff {
		panic("psi: hash-to-group domain longer than 65535 bytes")
	}
	dst := make([]byte, 0, len(groupDSTPrefix)+len(suiteID)+3+len(domain))
	dst = append(dst, groupDSTPrefix...)
	dst = append(dst, suiteID...)
	dst = append(dst, '-')
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(domain)))
	return append(dst, domain...)
}

// grpWorkers resolves the worker count for n items processed in chunks of at
// least minChunk.
func grpWorkers(workers, n, minChunk int) int {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if max := (n + minChunk - 1) / minChunk; workers > max {
		workers = max
	}
	if workers < 1 {
		workers = 1
	}
	return workers
}

// grpParallel splits [0, n) into `workers` contiguous ranges and calls fn on
// each, in parallel, returning when all are done.
func grpParallel(n, workers int, fn func(lo, hi int)) {
	if workers <= 1 || n == 0 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	per := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// grpRemask drives a per-element remask function over src in parallel and
// returns the error for the lowest invalid index.
func grpRemask(src, dst []byte, size, workers, minChunk int, fn func(src, dst []byte) (bad int)) error {
	if len(dst) != len(src) {
		panic("psi: Remask: len(dst) != len(src)")
	}
	if len(src)%size != 0 {
		return fmt.Errorf("%w: input length %d is not a multiple of %d", ErrInvalidElement, len(src), size)
	}
	n := len(src) / size
	w := grpWorkers(workers, n, minChunk)
	var mu sync.Mutex
	firstBad := -1
	grpParallel(n, w, func(lo, hi int) {
		bad := fn(src[lo*size:hi*size], dst[lo*size:hi*size])
		if bad >= 0 {
			mu.Lock()
			if firstBad < 0 || lo+bad < firstBad {
				firstBad = lo + bad
			}
			mu.Unlock()
		}
	})
	if firstBad >= 0 {
		return fmt.Errorf("%w at index %d", ErrInvalidElement, firstBad)
	}
	return nil
}
