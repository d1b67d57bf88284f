// Package protocol holds Tandem's transport-agnostic protocol logic: signed
// envelopes (Seal/Open over the exact signed bytes), agreement parsing and
// the single policy gate CheckJob, job-proposal freshness, the Transport
// abstraction with a per-direction transcript hash, and the per-job state
// machines (ping; PSI initiator and responder).
//
// It does no network I/O itself: the node supplies a Transport over its
// gRPC stream, tests supply an in-memory pipe. Steps are named after the
// protocol descriptions in each file's header comment.
package protocol
