// Package tandemv1 is the generated Go code of Tandem's wire API
// (proto/tandem/v1/*.proto): PeerService between nodes and ControlService
// for operators. Regenerate with `make proto`; `make check` fails when it
// is stale.
package tandemv1
