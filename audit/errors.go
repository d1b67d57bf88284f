package audit

import "errors"

var (
	// ErrClosed is returned by Store methods called after Close. The caller
	// should stop using the Store.
	ErrClosed = errors.New("audit: store closed")

	// ErrMalformed is returned (wrapped) by ParseEntry and ParseReceipt for
	// bytes that are not a canonical encoding. The input is untrusted and
	// must be rejected; retrying will not help.
	ErrMalformed = errors.New("audit: malformed encoding")

	// ErrInvalidEntry is returned (wrapped) by Entry.MarshalBinary and
	// Store.Append when the entry cannot be encoded (bad kind, NaN epsilon,
	// oversize field). Fix the caller.
	ErrInvalidEntry = errors.New("audit: invalid entry")

	// ErrInvalidKey is returned when a key, key name or key encoding is
	// unusable.
	ErrInvalidKey = errors.New("audit: invalid key")

	// ErrMalformedNote is returned for signed notes and checkpoints that do
	// not follow C2SP signed-note / tlog-checkpoint syntax.
	ErrMalformedNote = errors.New("audit: malformed note")

	// ErrBadSignature is returned when no trusted signature verifies on a
	// note, checkpoint or receipt.
	ErrBadSignature = errors.New("audit: signature does not verify")

	// ErrInconsistent is returned by WitnessCheckpoint when a peer's new
	// checkpoint is not an extension of the one stored before (a fork or a
	// rollback). Treat it as evidence of misbehaviour: keep both checkpoints
	// and alert an operator.
	ErrInconsistent = errors.New("audit: checkpoint inconsistent with witnessed history")

	// ErrNotFound is returned when a log, entry, receipt or witnessed
	// checkpoint does not exist.
	ErrNotFound = errors.New("audit: not found")

	// ErrRange is returned for sequence ranges or proof sizes beyond the log.
	ErrRange = errors.New("audit: out of range")

	// ErrNoSync is returned by OpenStore when the Badger options would
	// disable synchronous writes; the audit log refuses to run without
	// fsync-on-commit.
	ErrNoSync = errors.New("audit: badger SyncWrites must be enabled")
)

// ErrConflict is returned by Store.PutReceipt when a receipt with a
// different body is already stored for the same job. Treat it as a dispute:
// keep the stored receipt and alert an operator.
var ErrConflict = errors.New("audit: conflicting receipt for job")
