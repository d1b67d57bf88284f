// Package testnet runs a local multi-node Tandem network on loopback for
// integrators, the demo and multi-process tests; testnet/synth generates
// its synthetic, deliberately messy data.
package testnet
