//go:build !amd64 || purego

package ntt

const useAsm = false

func (p *Plan) forwardAsm(a []uint64) { p.forwardGo(a) }
