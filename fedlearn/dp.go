package fedlearn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

// ErrBudgetExhausted is returned by Budget.Spend when the requested ε would
// exceed the remaining privacy budget. The release must not happen.
var ErrBudgetExhausted = errors.New("fedlearn: differential-privacy budget exhausted")

// Budget is a sequential-composition ε accountant. Safe for concurrent use.
type Budget struct {
	mu    sync.Mutex
	total float64
	spent float64
}

// NewBudget returns a budget of total ε.
func NewBudget(total float64) *Budget { return &Budget{total: total} }

// Spend reserves eps, or returns ErrBudgetExhausted and reserves nothing.
func (b *Budget) Spend(eps float64) error {
	if !(eps > 0) || math.IsInf(eps, 0) {
		return fmt.Errorf("fedlearn: invalid epsilon")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.spent+eps > b.total*(1+1e-12) {
		return ErrBudgetExhausted
	}
	b.spent += eps
	return nil
}

// Remaining returns the unspent ε.
func (b *Budget) Remaining() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total - b.spent
}

// DiscreteLaplace draws n samples of the two-sided geometric distribution
// P(k) ∝ exp(-ε|k|/Δ) for sensitivity Δ (ε-DP for a query of L1 sensitivity
// Δ), as the difference of two geometric variables. The partner adds them
// under encryption with Session.AddNoise before releasing counts. Uses
// float64 inverse-CDF sampling from 53 random bits (adequate for a core; a
// constant-time exact sampler is future work).
func DiscreteLaplace(r io.Reader, eps, sensitivity float64, n int) ([]int64, error) {
	if !(eps > 0) || !(sensitivity > 0) {
		return nil, fmt.Errorf("fedlearn: invalid epsilon or sensitivity")
	}
	p := math.Exp(-eps / sensitivity) // geometric "failure" prob
	buf := make([]byte, 16*n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("fedlearn: reading randomness: %w", err)
	}
	geo := func(b []byte) int64 {
		u := (float64(binary.LittleEndian.Uint64(b)>>11) + 0.5) / (1 << 53) // (0,1)
		return int64(math.Floor(math.Log(u) / math.Log(p)))
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = geo(buf[16*i:]) - geo(buf[16*i+8:])
	}
	return out, nil
}
