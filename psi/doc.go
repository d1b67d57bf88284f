// Package psi is the pure core of Tandem's private set intersection
// (DESIGN §3, §4): group suites that hash identifiers to a prime-order group
// and blind them with a per-job secret (ristretto255 per RFC 9380/9496 as the
// reference, an X25519/Elligator 2 suite as the fast path), truncated tags,
// an external sorter that spills to disk so memory stays bounded, the
// sorted-merge intersection, the per-job shuffle permutation, and the
// alignment file that every later private computation reads.
//
// Identifier canonicalisation lives in the sub-package psi/ident.
//
// The package does no network I/O and no logging; the protocol package
// drives it over a transport. Errors never contain key material or
// identifiers.
package psi
