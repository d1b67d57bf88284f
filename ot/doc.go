// Package ot is oblivious transfer for Tandem's comparison protocols: many
// 1-out-of-256 random OTs (or 1-out-of-n, n = 2, 4, …, 256: the Receiver
// chooses among the first n values and the Sender hashes n pads, PadsN)
// from a few hundred public-key base OTs, by the
// OT extension of Kolesnikov and Kumaresan (CRYPTO 2013, "KK13"), secure
// against semi-honest parties as DESIGN §2 assumes.
//
// Roles follow the extension, not the base OTs:
//
//   - the Receiver chooses one value v ∈ [0,256) per OT and learns one
//     pad, H(i, t_i);
//   - the Sender learns 256 pads per OT, one per value, H(i, q_i ⊕ C(v)∧s);
//     the Receiver's pad is the one at its choice and it learns nothing
//     about the others; the Sender learns nothing about the choice.
//
// The caller masks its 256 messages of OT i with the Sender's pads and the
// Receiver unmasks the one it chose (package bands). A pad is 64 bits;
// a longer message takes pads of more domains (Receiver.MorePads, the
// same row hashed under another tweak).
//
// Base OTs are circl's "simplest OT" (Chou–Orlandi) over ristretto255, 256
// of them, run once per job with the roles reversed (the extension
// Receiver sends seeds, the Sender chooses by its secret s). C is the
// Walsh–Hadamard code of length 256: two codewords differ in exactly 128
// positions, so a pad the Receiver did not choose hides behind 128 unknown
// bits of s (κ = 128).
//
// Cost per OT: the Receiver sends 32 bytes and hashes once; the Sender
// hashes 256 (n) times. The hash is built on fixed-key AES (see hash.go), the
// only primitive on the hot path; the package core does no I/O.
package ot
