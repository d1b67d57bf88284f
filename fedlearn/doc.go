// Package fedlearn is the two-party homomorphic-encryption engine of Tandem
// (DESIGN §4): collective key generation, encryption of the bank's aligned
// vectors, the partner's plaintext×ciphertext inner-product kernel, guarded
// noise-flooded release, and the statistics decoded from it (count, sum,
// mean, variance, histograms, crosstabs, WOE/IV, TGI).
//
// It is a pure core: no network, no logging, no files. Every step takes and
// returns byte messages that the protocol layer ships between the nodes;
// decoders of peer input validate sizes and ranges and return ErrMalformed.
//
// Scheme: RLWE over Z_Q[X]/(X^N+1) (lattigo v6 core/rlwe and multiparty),
// N = 2^13, Q ≈ 2^120, exact BFV-style plaintexts in Z_t with t = 2^42 and
// coefficient encoding; see README.md for the protocol steps, the parameter
// and overflow bounds, and what each party learns.
//
// Sessions are not safe for concurrent use; they parallelise internally.
package fedlearn
