// Package node is the Tandem daemon as a library (DESIGN §3): Config and
// Init create a node home; New prepares a node, Run serves until its
// context ends, Close is idempotent.
//
// A node owns everything with I/O: the peer listener (gRPC over mutual TLS,
// peers accepted only by pinned key fingerprint, no CA; protocol frames
// through their own codec, codec.go), the control
// listener (bearer tokens with roles admin, analyst, compliance,
// marketing), gRPC health and reflection on both, Prometheus metrics, the
// Badger state (agreements, jobs, datasets, replay nonces), the audit log
// (package audit) and the dataset registry (package node/dataset).
//
// Jobs follow DESIGN §5: proposed (signed, nonce, expiry) → accepted |
// rejected → running → succeeded | failed | cancelled, persisted in Badger;
// an initiator resumes its running jobs after a restart.
//
// Errors become gRPC statuses in one place (errors.go). No secret key,
// token, share or raw identifier is ever logged or put in an error.
package node
