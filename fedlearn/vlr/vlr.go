// Package vlr is the pure core of vertical logistic regression over the
// aligned positions of a PSI job (DESIGN §4): the bank holds the label, the
// match indicator and some features, the partner holds other features; each
// keeps its own weights and, per step, learns exactly its own gradient
// through the fedlearn inner-product kernel and a guarded, noise-flooded
// release. No network, no logging: every step takes and returns byte
// messages. See README.md for the protocol table, the math and the leakage.
package vlr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Config holds the job's training hyperparameters. Both parties must use
// the same Degree, Range, LearningRate, Momentum and L2 (part of
// the agreed job spec); the others are bank-only.
type Config struct {
	// Degree D of the residual polynomial in the partner's partial predictor
	// (1…9, default 9: on the German credit data degree 7's fixed point
	// was 0.3–1.0 % off exact logistic regression in the worst
	// coefficient, degree 9's 0.1–0.25 %, for 25 % more work per epoch).
	Degree int
	// Range R: the partner clips its partial predictor to |u_P| ≤ R and the
	// approximation is fitted on [−R, R] (default 4).
	Range float64
	// LearningRate η and Momentum μ (heavy ball: v ← μv − ηg, w ← w + v).
	// Defaults 1.5 and 0.6.
	LearningRate float64
	Momentum     float64
	// L2 is λ of the objective (1/n)Σ logloss + (λ/2)‖w‖² (intercept not
	// penalised). Default 0 (no penalty).
	L2 float64

	// Bank only.
	BatchSize   int     // 0: full batch; else mini-batches of this many training rows
	MaxEpochs   int     // default 100
	Patience    int     // early stopping: epochs without loss improvement (0: off); the loss is the training loss when nothing is held out
	Tol         float64 // minimum relative improvement that counts (default 1e-6)
	ValFraction float64 // fraction of matched rows held out for validation (default 0.2; negative: none)
	Seed        uint64  // drives the validation split and the batch order
}

func (c *Config) defaults() error {
	if c.Degree == 0 {
		c.Degree = 9
	}
	if c.Range == 0 {
		c.Range = 4
	}
	if c.LearningRate == 0 {
		c.LearningRate = 1.5
	}
	if c.Momentum == 0 {
		c.Momentum = 0.6
	}
	if c.MaxEpochs == 0 {
		c.MaxEpochs = 100
	}
	if c.Tol == 0 {
		c.Tol = 1e-6
	}
	if c.ValFraction == 0 {
		c.ValFraction = 0.2
	}
	switch {
	case c.Degree < 1 || c.Degree > 9, !(c.Range > 0) || c.Range > 16,
		!(c.LearningRate > 0),
		c.Momentum < 0 || c.Momentum >= 1, c.L2 < 0, c.BatchSize < 0,
		c.ValFraction >= 1, c.MaxEpochs < 1, c.Patience < 0:
		return ErrConfig
	}
	return nil
}

var (
	// ErrConfig: inconsistent hyperparameters or data shapes.
	ErrConfig = errors.New("vlr: invalid configuration or data")
	// ErrMalformed: a peer message could not be decoded or does not match
	// the job (wrong degree, length, step, statistic count). Abort the job.
	ErrMalformed = errors.New("vlr: malformed peer message")
	// ErrOrder: a step was called out of order.
	ErrOrder = errors.New("vlr: step called out of order")
	// ErrDone: training has stopped (early stopping or MaxEpochs).
	ErrDone = errors.New("vlr: training finished")
)

// Wire format of the vlr messages: magic "tvl1", type byte, u32 step,
// u64 batch rows (bank terms only), u8 vector count, then per vector an i16
// scale exponent, u32 chunk count and per chunk u32 length + a fedlearn
// chunk message (sealed for the bank's terms, a packed ciphertext for the
// partner's residual). Results and release shares are fedlearn messages.
const (
	msgBankTerms byte = 1
	msgResidual  byte = 4 // 2 was the partner's powers of the exact kernel
)

var vlrMagic = [4]byte{'t', 'v', 'l', '1'}

const (
	maxVectors  = 10
	maxChunks   = 1 << 14
	maxChunkLen = 1 << 22
)

// encVecs is a decoded list of encrypted vectors with their scale exponents.
type encVecs struct {
	step   uint32
	rows   uint64
	scales []int
	chunks [][][]byte
}

// parseEncVecs decodes the envelope (peer input). The chunk messages
// themselves are validated by fedlearn when used.
func parseEncVecs(b []byte, typ byte) (encVecs, error) {
	var v encVecs
	if len(b) < 18 || [4]byte(b[:4]) != vlrMagic || b[4] != typ {
		return v, ErrMalformed
	}
	v.step = binary.LittleEndian.Uint32(b[5:])
	v.rows = binary.LittleEndian.Uint64(b[9:])
	count := int(b[17])
	b = b[18:]
	if count < 1 || count > maxVectors {
		return v, ErrMalformed
	}
	for range count {
		if len(b) < 6 {
			return v, ErrMalformed
		}
		scale := int(int16(binary.LittleEndian.Uint16(b)))
		nc := int(binary.LittleEndian.Uint32(b[2:]))
		b = b[6:]
		if nc < 1 || nc > maxChunks || scale < -64 || scale > 64 {
			return v, ErrMalformed
		}
		cs := make([][]byte, nc)
		for k := range cs {
			if len(b) < 4 {
				return v, ErrMalformed
			}
			l := int(binary.LittleEndian.Uint32(b))
			b = b[4:]
			if l < 1 || l > maxChunkLen || l > len(b) {
				return v, ErrMalformed
			}
			cs[k] = b[:l:l]
			b = b[l:]
		}
		v.scales = append(v.scales, scale)
		v.chunks = append(v.chunks, cs)
	}
	if len(b) != 0 {
		return v, ErrMalformed
	}
	return v, nil
}

// standardise centres and scales each column over the rows where use[i]
// (all rows if use is nil); unused rows are set to 0. Constant columns get
// sd = 1. Columns are modified in place.
func standardise(cols [][]float64, use []bool) (mean, sd []float64) {
	mean = make([]float64, len(cols))
	sd = make([]float64, len(cols))
	for j, col := range cols {
		var s, n float64
		for i, x := range col {
			if use == nil || use[i] {
				s += x
				n++
			}
		}
		m := s / math.Max(n, 1)
		var ss float64
		for i, x := range col {
			if use == nil || use[i] {
				ss += (x - m) * (x - m)
			}
		}
		d := math.Sqrt(ss / math.Max(n, 1))
		if !(d > 1e-12) {
			d = 1
		}
		mean[j], sd[j] = m, d
		for i, x := range col {
			if use == nil || use[i] {
				col[i] = (x - m) / d
			} else {
				col[i] = 0
			}
		}
	}
	return mean, sd
}

// columnsLayout validates a column-major matrix of at least minCols
// columns of the given length. The bank passes 0 (a partner-only model: its
// side is just the intercept), the partner 1 (without a feature it has no
// gradient to learn and nothing to contribute).
func columnsLayout(cols [][]float64, length, minCols int) error {
	if len(cols) < minCols || len(cols) > 4096 {
		return fmt.Errorf("%w: %d feature columns", ErrConfig, len(cols))
	}
	for _, c := range cols {
		if len(c) != length {
			return fmt.Errorf("%w: column length %d, want %d", ErrConfig, len(c), length)
		}
		for _, x := range c {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%w: non-finite value", ErrConfig)
			}
		}
	}
	return nil
}

// forRows runs f on contiguous row ranges [lo, hi) covering [0, n), one per
// core (the per-row work of a step: partial predictors, table lookups;
// single-threaded it was a fifth of the bank's step at 1e6 rows).
func forRows(n int, f func(lo, hi int)) {
	parts := min(runtime.GOMAXPROCS(0), max(n/4096, 1))
	var wg sync.WaitGroup
	for k := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(k*n/parts, (k+1)*n/parts)
		}()
	}
	wg.Wait()
}
