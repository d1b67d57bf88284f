package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
)

// Output is one artefact a job produced.
type Output struct {
	Name   string
	Digest string
	Size   uint64
}

// ReceiptSig is one party's signature over Receipt.Body().
type ReceiptSig struct {
	Party   string // key name of the signer; one of Receipt.Parties
	KeyHash uint32 // note key hash of the signer
	Sig     []byte
}

// Receipt is the end-of-job record both nodes sign (DESIGN.md §5): neither
// node can later rewrite what the job consumed and produced without the
// other's key. A Receipt is not safe for concurrent mutation.
type Receipt struct {
	JobID            string
	AgreementID      string
	SpecDigest       string
	InputDigests     map[string]string // party -> digest of its input dataset(s)
	TranscriptDigest string            // hex of Transcript.Sum
	Outputs          []Output
	Outcome          string    // "succeeded", "failed", "cancelled"
	Parties          [2]string // key names of both nodes
	Checkpoints      [2][]byte // optional signed log checkpoints of each party at job end
	Sigs             []ReceiptSig
}

const (
	receiptMagic       = "tandem/audit/receipt\x00\x01"
	signedReceiptMagic = "tandem/audit/signed-receipt\x00\x01"
)

// Body returns the canonical bytes that parties sign: a domain-separation
// magic and version, then every field except Sigs, length-prefixed, maps
// sorted by key. It returns an error wrapping ErrInvalidEntry for oversize
// or non-UTF-8 fields.
func (r *Receipt) Body() ([]byte, error) {
	enc := encoder{b: []byte(receiptMagic)}
	enc.str(r.JobID)
	enc.str(r.AgreementID)
	enc.str(r.SpecDigest)
	keys := make([]string, 0, len(r.InputDigests))
	for k := range r.InputDigests {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	enc.b = binary.BigEndian.AppendUint32(enc.b, uint32(len(keys)))
	for _, k := range keys {
		enc.str(k)
		enc.str(r.InputDigests[k])
	}
	enc.str(r.TranscriptDigest)
	if len(r.Outputs) > maxList || len(keys) > maxList {
		return nil, fmt.Errorf("%w: too many outputs", ErrInvalidEntry)
	}
	enc.b = binary.BigEndian.AppendUint32(enc.b, uint32(len(r.Outputs)))
	for _, o := range r.Outputs {
		enc.str(o.Name)
		enc.str(o.Digest)
		enc.u64(o.Size)
	}
	enc.str(r.Outcome)
	enc.str(r.Parties[0])
	enc.str(r.Parties[1])
	for _, cp := range r.Checkpoints {
		if len(cp) > maxStr {
			return nil, fmt.Errorf("%w: checkpoint too large", ErrInvalidEntry)
		}
		enc.b = binary.BigEndian.AppendUint32(enc.b, uint32(len(cp)))
		enc.b = append(enc.b, cp...)
	}
	if enc.err != nil {
		return nil, enc.err
	}
	return enc.b, nil
}

// Digest returns "sha256:<hex>" of Body(); audit entries of kind receipt
// carry it in Detail["receipt"].
func (r *Receipt) Digest() (string, error) {
	b, err := r.Body()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Sign adds (or replaces) the signature of the party named s.Name(), which
// must be one of r.Parties. Errors: ErrInvalidKey if s is not a party, an
// encoding error, or the signer's error.
func (r *Receipt) Sign(s Signer) error {
	party := s.Name()
	if party == "" || (party != r.Parties[0] && party != r.Parties[1]) || r.Parties[0] == r.Parties[1] {
		return fmt.Errorf("%w: signer is not a party to the receipt", ErrInvalidKey)
	}
	body, err := r.Body()
	if err != nil {
		return err
	}
	sig, err := s.Sign(body)
	if err != nil {
		return fmt.Errorf("audit: sign receipt: %w", err)
	}
	r.Sigs = slices.DeleteFunc(r.Sigs, func(x ReceiptSig) bool { return x.Party == party })
	r.Sigs = append(r.Sigs, ReceiptSig{Party: party, KeyHash: s.KeyHash(), Sig: sig})
	slices.SortFunc(r.Sigs, func(a, b ReceiptSig) int { return cmpStr(a.Party, b.Party) })
	return nil
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Verify checks every signature with the verifier of the same name in keys.
// It returns unilateral = true when only one party has signed (a disputed or
// not-yet-countersigned receipt). Errors: ErrBadSignature (wrapped) when
// there is no signature, a signature is by a non-party or unknown key, or
// any signature fails. Safe for concurrent use if r is not mutated.
func (r *Receipt) Verify(keys []Verifier) (unilateral bool, err error) {
	body, err := r.Body()
	if err != nil {
		return false, err
	}
	if len(r.Sigs) == 0 {
		return false, fmt.Errorf("%w: receipt unsigned", ErrBadSignature)
	}
	seen := map[string]bool{}
	for _, s := range r.Sigs {
		if s.Party != r.Parties[0] && s.Party != r.Parties[1] || seen[s.Party] {
			return false, fmt.Errorf("%w: receipt signature by non-party", ErrBadSignature)
		}
		var v Verifier
		for _, k := range keys {
			if k.Name() == s.Party && k.KeyHash() == s.KeyHash {
				v = k
				break
			}
		}
		if v == nil || !v.Verify(body, s.Sig) {
			return false, fmt.Errorf("%w: receipt signature of party %q", ErrBadSignature, s.Party)
		}
		seen[s.Party] = true
	}
	return len(seen) == 1, nil
}

// Unilateral reports whether fewer than two parties have signed, without
// checking signatures.
func (r *Receipt) Unilateral() bool { return len(r.Sigs) < 2 }

// MarshalBinary returns Body() followed by the signatures, the form stored
// and exported.
func (r *Receipt) MarshalBinary() ([]byte, error) {
	body, err := r.Body()
	if err != nil {
		return nil, err
	}
	enc := encoder{b: []byte(signedReceiptMagic)}
	enc.b = binary.BigEndian.AppendUint32(enc.b, uint32(len(body)))
	enc.b = append(enc.b, body...)
	enc.b = binary.BigEndian.AppendUint32(enc.b, uint32(len(r.Sigs)))
	for _, s := range r.Sigs {
		enc.str(s.Party)
		enc.b = binary.BigEndian.AppendUint32(enc.b, s.KeyHash)
		enc.b = binary.BigEndian.AppendUint32(enc.b, uint32(len(s.Sig)))
		enc.b = append(enc.b, s.Sig...)
	}
	return enc.b, enc.err
}

// ParseReceipt decodes untrusted signed-receipt bytes. Non-canonical input
// (anything MarshalBinary would not produce) is rejected with an error
// wrapping ErrMalformed. Signatures are not verified.
func ParseReceipt(b []byte) (*Receipt, error) {
	bad := fmt.Errorf("%w: receipt", ErrMalformed)
	if len(b) > maxEntrySize || !bytes.HasPrefix(b, []byte(signedReceiptMagic)) {
		return nil, bad
	}
	d := decoder{b: b[len(signedReceiptMagic):]}
	body := d.take(int(d.u32()))
	if d.bad || !bytes.HasPrefix(body, []byte(receiptMagic)) {
		return nil, bad
	}
	r := &Receipt{}
	bd := decoder{b: body[len(receiptMagic):]}
	r.JobID, r.AgreementID, r.SpecDigest = bd.str(), bd.str(), bd.str()
	n := bd.u32()
	if n > maxList {
		return nil, bad
	}
	for i := uint32(0); i < n && !bd.bad; i++ {
		if r.InputDigests == nil {
			r.InputDigests = map[string]string{}
		}
		k, v := bd.str(), bd.str()
		r.InputDigests[k] = v
	}
	r.TranscriptDigest = bd.str()
	n = bd.u32()
	if n > maxList {
		return nil, bad
	}
	for i := uint32(0); i < n && !bd.bad; i++ {
		r.Outputs = append(r.Outputs, Output{Name: bd.str(), Digest: bd.str(), Size: bd.u64()})
	}
	r.Outcome = bd.str()
	r.Parties[0], r.Parties[1] = bd.str(), bd.str()
	for i := range r.Checkpoints {
		if cp := bd.take(int(bd.u32())); len(cp) > 0 {
			r.Checkpoints[i] = append([]byte(nil), cp...)
		}
	}
	if bd.bad || len(bd.b) != 0 {
		return nil, bad
	}
	n = d.u32()
	if n > 2 {
		return nil, bad
	}
	for i := uint32(0); i < n && !d.bad; i++ {
		s := ReceiptSig{Party: d.str(), KeyHash: d.u32()}
		s.Sig = append([]byte(nil), d.take(int(d.u32()))...)
		r.Sigs = append(r.Sigs, s)
	}
	if d.bad || len(d.b) != 0 {
		return nil, bad
	}
	// Canonical form: re-encoding must reproduce the input exactly (this
	// rejects unsorted maps, duplicate keys and unsorted signatures).
	again, err := r.MarshalBinary()
	if err != nil || !bytes.Equal(again, b) ||
		!slices.IsSortedFunc(r.Sigs, func(a, b ReceiptSig) int { return cmpStr(a.Party, b.Party) }) {
		return nil, bad
	}
	return r, nil
}
