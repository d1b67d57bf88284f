package vlr

import (
	"encoding/binary"
	"testing"
)

func FuzzParseBankTerms(f *testing.F) {
	f.Add(appendEncVecs(msgBankTerms, encVecs{step: 1, rows: 10, scales: []int{3}, chunks: [][][]byte{{[]byte("abc")}}}))
	f.Add([]byte("tvl1\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseEncVecs(b, msgBankTerms)
		if err != nil {
			return
		}
		// Round trip of whatever was accepted.
		if string(appendEncVecs(msgBankTerms, v)) != string(b) {
			t.Fatal("accepted message does not re-encode identically")
		}
	})
}

func FuzzParseResidual(f *testing.F) {
	f.Add(appendEncVecs(msgResidual, encVecs{step: 0, scales: []int{-2, 5}, chunks: [][][]byte{{[]byte("x")}, {[]byte("yz"), []byte("w")}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseEncVecs(b, msgResidual)
		if err != nil {
			return
		}
		if len(v.scales) != len(v.chunks) || len(v.chunks) == 0 {
			t.Fatal("inconsistent decode")
		}
	})
}

// The decoders are only the envelope; the session-level ones (chunks,
// Results, shares) are fuzzed in fedlearn. Feed fuzzed envelopes through the
// step functions too: they must fail cleanly, never panic.
func FuzzStepsOnPeerInput(f *testing.F) {
	data := genSynth(200, 2, 2, 0.8, 9)
	bs, ps := sessions(f)
	cfg := Config{Degree: 2, Seed: 3}
	b, _ := NewBank(bs, cfg, data.bank, data.label, data.match, 2)
	p, _ := NewPartner(ps, cfg, data.partner, 2)
	terms, _ := b.EncryptResidualTerms()
	resid, _ := p.Residual(terms)
	f.Add(terms[:200], resid[:200])
	f.Fuzz(func(t *testing.T, tm, pw []byte) {
		// A fresh partner per input: an accepted message moves its state.
		p, _ := NewPartner(ps, cfg, data.partner, 2)
		_, _ = p.Residual(tm)
		_, _ = b.EvaluateBankGradient(pw)
		_, _ = b.ShareForPartner(tm)
		_, _ = p.ShareForBank(pw)
	})
}

// appendEncVecs writes the envelope from decoded parts, the inverse of
// parseEncVecs (envelope writes it in production, sealing in place).
func appendEncVecs(typ byte, v encVecs) []byte {
	n := 4 + 1 + 4 + 8 + 1
	for _, cs := range v.chunks {
		n += 6
		for _, c := range cs {
			n += 4 + len(c)
		}
	}
	b := make([]byte, 0, n)
	b = append(b, vlrMagic[:]...)
	b = append(b, typ)
	b = binary.LittleEndian.AppendUint32(b, v.step)
	b = binary.LittleEndian.AppendUint64(b, v.rows)
	b = append(b, byte(len(v.chunks)))
	for i, cs := range v.chunks {
		b = binary.LittleEndian.AppendUint16(b, uint16(int16(v.scales[i])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(cs)))
		for _, c := range cs {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(c)))
			b = append(b, c...)
		}
	}
	return b
}
