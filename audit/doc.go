// Package audit is Tandem's tamper-evident audit log (DESIGN.md §5): every
// agreement, job step, release and operator action is appended to a
// hash-chained, Merkle-tree log in Badger, checkpointed with a signed C2SP
// tlog-checkpoint, co-signed with the peer at the end of every job
// (Receipt), witnessed across nodes (WitnessCheckpoint), and exportable as
// a self-contained bundle that an auditor verifies offline (Export,
// VerifyBundle).
//
// # Entry encoding
//
// Entries use a versioned, length-prefixed binary encoding rather than
// canonical JSON. The bytes start with the domain-separation magic
// "tandem/audit/entry\x00" and a version byte, then every field in a fixed
// order: integers fixed-width big-endian, strings and lists as a uint32
// length plus data, Detail sorted by key, Release behind a presence byte.
// We chose it over canonical JSON because canonicality is then a property of
// a 200-line decoder that we can fuzz to a tight invariant (ParseEntry
// accepts b only if MarshalBinary reproduces b exactly, see FuzzParseEntry),
// with no number formatting, Unicode escaping or key-ordering rules to get
// wrong; floats are IEEE bits with NaN, Inf, negatives and -0 rejected. The
// stored bytes are what is hashed (RFC 6962 leaf hash) and, through the
// Merkle root, signed. Entry.PrevHash is the leaf hash of the previous entry,
// so the chain and the tree share one hash per entry.
//
// # Store
//
// OpenStore opens Badger with SyncWrites (and refuses otherwise). A single
// writer goroutine drains queued Append calls into one transaction (group
// commit); each Append returns after the commit's fsync. Per log it writes
// the entry, the leaf and newly completed subtree hashes (amortised two
// keys, O(log n) worst case), the compact-range metadata and, for keyed
// appends, the idempotency index and its reverse map — all in the same
// transaction, so OpenStore can check them against the entries and rebuild
// derived data if they ever disagree. Proofs read O(log n) stored nodes.
//
// # Checkpoints and keys
//
// Checkpoints are C2SP tlog-checkpoint bodies ("<origin>\n<size>\n<base64
// root>\n") signed as C2SP signed notes. Signing is behind the Signer and
// Verifier interfaces so that other algorithms (SM2) can be added; the
// Ed25519 implementation uses the note key-hash rule
// SHA-256(name || "\n" || 0x01 || pubkey)[:4] and the sumdb/note key
// encodings.
//
// # Bundles and exit codes
//
// VerifyBundle returns a *VerifyError whose Class maps to an exit code
// (Class.ExitCode): BitFlip 10, Deletion 11, Truncation 12, Reordering 13,
// Forged 14, MissingCoSignature 15, Inconsistent 16.
//
// # Concurrency and I/O
//
// Store, Signer and Verifier implementations, and the package functions are
// safe for concurrent use; Receipt, Transcript and merkle.Compact values
// are not. The package logs nothing and performs no network I/O; its only
// I/O is the Badger directory, export bundles and statfs (FreeBytes).
//
// Errors are prefixed "audit: "; sentinels are documented in errors.go and
// matched with errors.Is; tampering is reported as *VerifyError (errors.As).
package audit
