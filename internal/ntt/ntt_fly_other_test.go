//go:build !amd64 || purego

package ntt

func butterflyCount(n int, q uint64) {}
