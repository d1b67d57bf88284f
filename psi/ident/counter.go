package ident

// Counter tallies the values dropped while canonicalising a column: one
// count per rejection [Reason] and one for duplicates. It feeds the
// per-dataset quality report and metrics; it holds counts only, never
// values. The zero value is ready to use. A Counter is not safe for
// concurrent use: give each worker its own and combine them with
// [Counter.Merge].
type Counter struct {
	// invalid[0] collects reasons outside the defined constants.
	invalid    [numReasons]int64
	duplicates int64
}

// Reject counts one value rejected for reason r. A reason outside the
// defined constants is counted under "unknown" rather than dropped.
func (c *Counter) Reject(r Reason) {
	if !r.valid() {
		r = 0
	}
	c.invalid[r]++
}

// Observe counts err if it is an [*Error] (a rejection) and reports whether
// it did. Any other error, including nil, is not counted.
func (c *Counter) Observe(err error) bool {
	// A type assertion rather than errors.As keeps this allocation-free;
	// AppendCanonical never wraps its *Error.
	e, ok := err.(*Error)
	if ok && e != nil {
		c.Reject(e.Reason)
	}
	return ok
}

// Duplicate counts one value dropped because its canonical form had been
// seen before.
func (c *Counter) Duplicate() { c.duplicates++ }

// Invalid returns the rejection counts by reason name ("bad_checksum", …,
// and "unknown" for undefined reasons). Only reasons with a non-zero count
// appear; the map is never nil and is the caller's to keep.
func (c *Counter) Invalid() map[string]int64 {
	m := make(map[string]int64)
	for r, v := range c.invalid {
		if v == 0 {
			continue
		}
		name := "unknown"
		if r != 0 {
			name = Reason(r).String()
		}
		m[name] = v
	}
	return m
}

// Count returns the number of values rejected for reason r.
func (c *Counter) Count(r Reason) int64 {
	if !r.valid() {
		r = 0
	}
	return c.invalid[r]
}

// Rejected returns the number of values rejected for any reason.
func (c *Counter) Rejected() int64 {
	var t int64
	for _, v := range c.invalid {
		t += v
	}
	return t
}

// Duplicates returns the number of duplicates counted.
func (c *Counter) Duplicates() int64 { return c.duplicates }

// Total returns the number of values dropped: Rejected() + Duplicates().
func (c *Counter) Total() int64 { return c.Rejected() + c.duplicates }

// Merge adds the counts of o to c. o is not modified.
func (c *Counter) Merge(o *Counter) {
	for r, v := range o.invalid {
		c.invalid[r] += v
	}
	c.duplicates += o.duplicates
}

// Reset sets all counts to zero.
func (c *Counter) Reset() { *c = Counter{} }
