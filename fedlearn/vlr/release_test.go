package vlr

import (
	"errors"
	"testing"
)

// Each party's received release decodes only to its own gradient length, and
// neither co-signs a Result of another size.
func TestReleaseLengths(t *testing.T) {
	data := genSynth(600, 3, 4, 0.7, 3)
	bs, ps := sessions(t)
	cfg := Config{MaxEpochs: 1, Seed: 1, Degree: 3}
	b, err := NewBank(bs, cfg, data.bank, data.label, data.match, 4)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPartner(ps, cfg, data.partner, 3)
	if err != nil {
		t.Fatal(err)
	}
	terms, _ := b.EncryptResidualTerms()
	resid, err := p.Residual(terms)
	if err != nil {
		t.Fatal(err)
	}
	bres, err := b.EvaluateBankGradient(resid)
	if err != nil {
		t.Fatal(err)
	}
	pres, err := p.EvaluatePartnerGradient()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := bs.ResultCount(pres); n != 4 {
		t.Fatalf("partner result has %d statistics, want 4 (its features)", n)
	}
	if n, _ := ps.ResultCount(bres); n != 3+2 {
		t.Fatalf("bank result has %d statistics, want 5", n)
	}
	// A Result of the wrong size (e.g. the bank's, or the unsummed terms) is
	// refused before any share is made.
	if _, err := b.ShareForPartner(bres); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bank shared a %d-statistic result for the partner: %v", 5, err)
	}
	if _, err := p.ShareForBank(pres); !errors.Is(err, ErrMalformed) {
		t.Fatalf("partner shared a wrong-size result: %v", err)
	}
	bshare, err := b.ShareForPartner(pres)
	if err != nil {
		t.Fatal(err)
	}
	pshare, err := p.ShareForBank(bres)
	if err != nil {
		t.Fatal(err)
	}
	// Each share decrypts only its own Result, to its own length.
	if vals, err := ps.DecryptReal(pres, bshare); err != nil || len(vals) != 4 {
		t.Fatalf("partner release: %d values, %v", len(vals), err)
	}
	if vals, err := bs.DecryptReal(bres, pshare); err != nil || len(vals) != 5 {
		t.Fatalf("bank release: %d values, %v", len(vals), err)
	}
	if _, err := ps.DecryptReal(bres, bshare); err == nil {
		t.Fatal("partner decrypted the bank's result with its own share")
	}
	// A second share for the same Result is refused (ShareGuard).
	if _, err := b.ShareForPartner(pres); err == nil {
		t.Fatal("second share produced")
	}
	if _, err := b.ApplyGradient(bres, pshare); err != nil {
		t.Fatal(err)
	}
	if err := p.ApplyGradient(pres, bshare); err != nil {
		t.Fatal(err)
	}
	if !b.Done() {
		t.Fatal("MaxEpochs 1 not honoured")
	}
	if _, err := b.EncryptResidualTerms(); !errors.Is(err, ErrDone) {
		t.Fatal(err)
	}
}

// Out-of-order calls and messages for another step are refused.
func TestOrderAndStep(t *testing.T) {
	data := genSynth(300, 2, 2, 0.8, 4)
	bs, ps := sessions(t)
	cfg := Config{Degree: 2, Seed: 2}
	b, _ := NewBank(bs, cfg, data.bank, data.label, data.match, 2)
	p, _ := NewPartner(ps, cfg, data.partner, 2)
	if _, err := b.EvaluateBankGradient(nil); !errors.Is(err, ErrOrder) {
		t.Fatal(err)
	}
	terms, _ := b.EncryptResidualTerms()
	v, err := parseEncVecs(terms, msgBankTerms)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.EvaluatePartnerGradient(); !errors.Is(err, ErrOrder) {
		t.Fatal(err)
	}
	v.step = 5
	if _, err := p.Residual(appendEncVecs(msgBankTerms, v)); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	if _, err := p.Residual(terms[:len(terms)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	// Exponents other than the public rule's are refused.
	v.step = 0
	v.scales[2]++
	if _, err := p.Residual(appendEncVecs(msgBankTerms, v)); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	v.scales[2]--
	// A sealed chunk whose residues are out of range is refused, not wrapped.
	bad := append([]byte(nil), v.chunks[1][0]...)
	for i := len(bad) - 64; i < len(bad); i++ {
		bad[i] = 0xff
	}
	v.chunks[1][0] = bad
	if _, err := p.Residual(appendEncVecs(msgBankTerms, v)); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	resid, err := p.Residual(terms)
	if err != nil {
		t.Fatal(err)
	}
	// The residual must come at the public scale exponent and length.
	rv, err := parseEncVecs(resid, msgResidual)
	if err != nil {
		t.Fatal(err)
	}
	rv.scales[0]++
	if _, err := b.EvaluateBankGradient(appendEncVecs(msgResidual, rv)); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	if _, err := b.EvaluateBankGradient(terms); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
}
