//go:build !amd64 || purego

package ntt

const useAsm = false

func (p *Plan) forwardAsm(a, src []uint64) {
	copy(a, src)
	p.forwardGo(a)
}

func (p *Plan) inverseAsm(a, src []uint64) {
	copy(a, src)
	p.inverseGo(a)
}
