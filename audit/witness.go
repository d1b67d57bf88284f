package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/dgraph-io/badger/v4"

	"github.com/tandem-dev/tandem/audit/merkle"
)

func receiptKey(job string) []byte { return append(append([]byte(nil), prefixReceipt...), job...) }

func witnessKey(peer string, rest ...byte) []byte {
	b := append([]byte(nil), prefixWitness...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(peer)))
	b = append(b, peer...)
	return append(b, rest...)
}

// PutReceipt stores r under its JobID. If a receipt with the same body is
// already stored, the signatures are merged (a later co-signature upgrades a
// unilateral receipt). Errors: ErrConflict if a different body is stored,
// an encoding error, ErrClosed or a Badger error. Signatures are not
// verified here. Safe for concurrent use.
func (s *Store) PutReceipt(r *Receipt) error {
	if r.JobID == "" {
		return fmt.Errorf("%w: receipt without job id", ErrInvalidEntry)
	}
	body, err := r.Body()
	if err != nil {
		return err
	}
	s.witnessMu.Lock()
	defer s.witnessMu.Unlock()
	return s.update(func(txn *badger.Txn) error {
		merged := *r
		merged.Sigs = append([]ReceiptSig(nil), r.Sigs...)
		if old, err := getReceipt(txn, r.JobID); err == nil {
			oldBody, _ := old.Body()
			if !bytes.Equal(oldBody, body) {
				return ErrConflict
			}
			for _, os := range old.Sigs {
				found := false
				for _, ns := range merged.Sigs {
					found = found || ns.Party == os.Party
				}
				if !found {
					merged.Sigs = append(merged.Sigs, os)
				}
			}
			sortSigs(merged.Sigs)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		sortSigs(merged.Sigs)
		raw, err := merged.MarshalBinary()
		if err != nil {
			return err
		}
		return txn.Set(receiptKey(r.JobID), raw)
	})
}

func sortSigs(sigs []ReceiptSig) {
	for i := 1; i < len(sigs); i++ {
		for j := i; j > 0 && sigs[j].Party < sigs[j-1].Party; j-- {
			sigs[j], sigs[j-1] = sigs[j-1], sigs[j]
		}
	}
}

func getReceipt(txn *badger.Txn, job string) (*Receipt, error) {
	item, err := txn.Get(receiptKey(job))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	return ParseReceipt(v)
}

// Receipt returns the stored receipt for job. Errors: ErrNotFound,
// ErrClosed, ErrMalformed or a Badger error.
func (s *Store) Receipt(job string) (*Receipt, error) {
	var r *Receipt
	err := s.view(func(txn *badger.Txn) error {
		var err error
		r, err = getReceipt(txn, job)
		return err
	})
	return r, err
}

// AppendReceipt stores r (merging signatures) and appends a receipt entry
// to log recording the receipt digest and the number of signatures, so a
// bundle verifier can tell a stripped co-signature from a receipt that was
// unilateral when logged. Retries are idempotent per (job, signature count).
// Errors as PutReceipt and Append.
func (s *Store) AppendReceipt(ctx context.Context, log string, actor Actor, r *Receipt) (seq uint64, err error) {
	if err := s.PutReceipt(r); err != nil {
		return 0, err
	}
	stored, err := s.Receipt(r.JobID)
	if err != nil {
		return 0, err
	}
	digest, err := stored.Digest()
	if err != nil {
		return 0, err
	}
	peer := stored.Parties[0]
	if s.opts.Signer != nil && peer == s.opts.Signer.Name() {
		peer = stored.Parties[1]
	}
	n := len(stored.Sigs)
	e := Entry{
		Actor: actor, Kind: KindReceipt, JobID: r.JobID, AgreementID: r.AgreementID, Peer: peer,
		Detail: map[string]string{"receipt": digest, "signatures": strconv.Itoa(n), "outcome": r.Outcome},
	}
	seq, _, err = s.Append(ctx, log, IdemKey{Job: r.JobID, Event: "receipt", Attempt: uint32(n)}, e)
	return seq, err
}

// WitnessCheckpoint verifies a peer's signed checkpoint with v and stores it
// as the latest witnessed checkpoint of peer, provided proof shows it is an
// extension of the previously stored one (the first checkpoint is accepted
// as is: trust on first use). Errors: ErrBadSignature or ErrMalformedNote
// for the note, ErrInconsistent (wrapped) for an origin change, a smaller
// size or a failing consistency proof, ErrClosed or a Badger error. Safe
// for concurrent use.
func (s *Store) WitnessCheckpoint(ctx context.Context, peer string, v Verifier, cp []byte, proof []merkle.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	head, err := OpenCheckpoint(cp, v)
	if err != nil {
		return err
	}
	s.witnessMu.Lock()
	defer s.witnessMu.Unlock()
	return s.update(func(txn *badger.Txn) error {
		item, err := txn.Get(witnessKey(peer, 'c'))
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			old, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			text, _, err := ParseNote(old)
			if err != nil {
				return err
			}
			prev, err := ParseHead(text)
			if err != nil {
				return err
			}
			if prev.Origin != head.Origin {
				return fmt.Errorf("%w: origin changed", ErrInconsistent)
			}
			if head.Size < prev.Size {
				return fmt.Errorf("%w: size went from %d to %d", ErrInconsistent, prev.Size, head.Size)
			}
			if err := merkle.VerifyConsistency(prev.Size, head.Size, prev.Root, head.Root, proof); err != nil {
				return fmt.Errorf("%w: %v", ErrInconsistent, err)
			}
		}
		if err := txn.Set(witnessKey(peer, 'c'), cp); err != nil {
			return err
		}
		return txn.Set(witnessKey(peer, append([]byte{'h'}, binary.BigEndian.AppendUint64(nil, head.Size)...)...), cp)
	})
}

// WitnessedCheckpoint returns the latest checkpoint stored for peer by
// WitnessCheckpoint. Errors: ErrNotFound, ErrClosed or a Badger error.
func (s *Store) WitnessedCheckpoint(peer string) ([]byte, error) {
	var out []byte
	err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(witnessKey(peer, 'c'))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	return out, err
}
