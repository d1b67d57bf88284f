package fedlearn

import (
	"errors"
	"fmt"
	"math"
)

// Params is the homomorphic parameter set of a job. The zero value selects
// the defaults documented on each field; both nodes must use the same values.
//
// Default set ("FL13-120"): ring degree N = 2^13, ciphertext modulus Q = two
// NTT-friendly 60-bit primes (log Q ≈ 120, no auxiliary modulus P), ternary
// secrets, errors of standard deviation 3.2 (key generation: lattigo's
// Gaussian) and 3.24 (encryptions: centred binomial, see cbdK). The
// HE-standard bound for 128-bit classical security at N = 2^13 is
// log QP ≤ 218, so this set is well above 128-bit security. Plaintext
// space is Z_t with t = 2^42 (exact integer arithmetic, BFV-style scaling
// Δ = ⌊Q/t⌋, coefficient encoding); the packed kernel of training
// (packed.go) uses the same keys with approximate slot encoding.
type Params struct {
	// LogN is log2 of the ring degree. Default 13.
	LogN int
	// LogQ lists the bit sizes of the ciphertext primes. Default {60, 60}.
	LogQ []int
	// LogT is log2 of the plaintext modulus t. Every inner product must
	// satisfy |Σ c·x| < t/2; InnerProducts checks the bound. Default 42.
	LogT int
	// FloodBits: release shares carry uniform smudging noise in
	// [-2^FloodBits, 2^FloodBits). Default 74.
	FloodBits int
	// MinSmudgeBits is the minimum statistical margin, in bits, between the
	// smudging noise and a high-probability bound of the ciphertext noise
	// (which depends on the partner's data). InnerProducts refuses columns
	// that would leave less. Default 30.
	MinSmudgeBits int
	// MaxLength bounds the aligned vector length L accepted from a peer.
	// Default 1<<24.
	MaxLength int
}

// ErrParams is returned by NewSession when Params are inconsistent.
var ErrParams = errors.New("fedlearn: invalid parameters")

// validate fills defaults and rejects nonsense.
func (p *Params) validate() error {
	if p.LogN == 0 {
		p.LogN = 13
	}
	if len(p.LogQ) == 0 {
		p.LogQ = []int{60, 60}
	}
	if p.LogT == 0 {
		p.LogT = 42
	}
	if p.FloodBits == 0 {
		p.FloodBits = 74
	}
	if p.MinSmudgeBits == 0 {
		p.MinSmudgeBits = 30
	}
	if p.MaxLength == 0 {
		p.MaxLength = 1 << 24
	}
	logQ := 0
	for _, b := range p.LogQ {
		if b < 30 || b > 60 {
			return fmt.Errorf("%w: prime size %d", ErrParams, b)
		}
		logQ += b
	}
	switch {
	case p.LogN < 10 || p.LogN > 15:
		return fmt.Errorf("%w: LogN %d", ErrParams, p.LogN)
	case p.LogT < 8 || p.LogT > 62:
		return fmt.Errorf("%w: LogT %d", ErrParams, p.LogT)
	case p.FloodBits < 20 || p.FloodBits > 120:
		return fmt.Errorf("%w: FloodBits %d", ErrParams, p.FloodBits)
	// Correctness: Δ/2 ≈ 2^(logQ-LogT-1) must exceed the flooding noise of
	// one share plus the (much smaller) ciphertext noise; keep 2 bits slack.
	case p.FloodBits > logQ-p.LogT-4:
		return fmt.Errorf("%w: FloodBits %d too large for log Q %d and LogT %d", ErrParams, p.FloodBits, logQ, p.LogT)
	case p.MaxLength < 1 || p.MaxLength > 1<<30:
		return fmt.Errorf("%w: MaxLength %d", ErrParams, p.MaxLength)
	}
	return nil
}

// freshNoiseStd is the standard deviation of one coefficient of the noise of
// a fresh public-key encryption under a two-party collective key
// (u·(e_B+e_P) + e0 + e1·(s_B+s_P), ternary u, s_i with P(±1)=2/3):
// Var ≈ N·σ²·(2/3·2 + 4/3) + σ².
func freshNoiseStd(n int) float64 {
	sigma := errSigma
	return math.Sqrt(float64(n)*sigma*sigma*8/3 + sigma*sigma)
}

// noiseTailFactor turns a standard deviation into a bound exceeded with
// probability below 2^-80 (Gaussian tail).
const noiseTailFactor = 10.6
