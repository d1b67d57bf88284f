package fedlearn

// MarshalBinary encodes the plan for the bank (public metadata).
func (pl NumericPlan) MarshalBinary() ([]byte, error) {
	b := putHeader(nil, msgNumericPlan)
	b = appendU32(b, uint32(pl.L))
	b = append(b, byte(pl.LimbBits))
	b = appendU32(b, uint32(len(pl.Features)))
	for _, f := range pl.Features {
		miss := byte(0)
		if f.Missing {
			miss = 1
		}
		b = append(b, byte(int8(f.ScaleBits)), byte(f.SumLimbs), byte(f.SqLimbs), miss)
	}
	return b, nil
}

// maxPlanFeatures bounds the features of a plan accepted from a peer.
const maxPlanFeatures = 4096

// ParseNumericPlan decodes a NumericPlan received from the partner. It
// returns ErrMalformed unless the plan is well formed and consistent with
// maxLength and the result limits.
func ParseNumericPlan(b []byte, maxLength int) (NumericPlan, error) {
	body, err := checkHeader(b, msgNumericPlan)
	if err != nil {
		return NumericPlan{}, err
	}
	r := reader{b: body}
	pl := NumericPlan{L: int(r.u32()), LimbBits: int(r.u8())}
	n := int(r.u32())
	if r.err || pl.L < 1 || pl.L > maxLength || pl.LimbBits < 2 || pl.LimbBits > 62 || n < 1 || n > maxPlanFeatures || len(r.b) != 4*n {
		return NumericPlan{}, ErrMalformed
	}
	for range n {
		f := FeatureLayout{ScaleBits: int(int8(r.u8())), SumLimbs: int(r.u8()), SqLimbs: int(r.u8())}
		miss := r.u8()
		if miss > 1 || f.ScaleBits < -60 || f.ScaleBits > 60 || f.SumLimbs < 1 || f.SqLimbs < 1 ||
			f.SumLimbs*pl.LimbBits > 64 || f.SqLimbs*pl.LimbBits > 128 {
			return NumericPlan{}, ErrMalformed
		}
		f.Missing = miss == 1
		pl.Features = append(pl.Features, f)
	}
	if !r.done() || pl.Multipliers() > maxResults {
		return NumericPlan{}, ErrMalformed
	}
	return pl, nil
}

// MarshalBinary encodes the plan for the bank (public metadata).
func (pl BinnedPlan) MarshalBinary() ([]byte, error) {
	b := putHeader(nil, msgBinnedPlan)
	b = appendU32(b, uint32(pl.L))
	b = appendU32(b, uint32(len(pl.NumBins)))
	for _, nb := range pl.NumBins {
		b = appendU32(b, uint32(nb))
	}
	return b, nil
}

// ParseBinnedPlan decodes a BinnedPlan received from the partner; ErrMalformed
// on bad input.
func ParseBinnedPlan(b []byte, maxLength int) (BinnedPlan, error) {
	body, err := checkHeader(b, msgBinnedPlan)
	if err != nil {
		return BinnedPlan{}, err
	}
	r := reader{b: body}
	pl := BinnedPlan{L: int(r.u32())}
	n := int(r.u32())
	if r.err || pl.L < 1 || pl.L > maxLength || n < 1 || n > maxPlanFeatures || len(r.b) != 4*n {
		return BinnedPlan{}, ErrMalformed
	}
	total := 1
	for range n {
		nb := int(r.u32())
		if nb < 1 || nb > maxBins {
			return BinnedPlan{}, ErrMalformed
		}
		total += nb
		pl.NumBins = append(pl.NumBins, nb)
	}
	if !r.done() || total > maxResults {
		return BinnedPlan{}, ErrMalformed
	}
	return pl, nil
}
