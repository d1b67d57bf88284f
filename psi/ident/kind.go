package ident

import (
	"errors"
	"fmt"
	"strconv"
)

// Kind is the kind of identifier held in a column. The zero value is [Raw].
type Kind uint8

// The identifier kinds. Their names ([Kind.String]) are part of the wire and
// configuration format and must not change.
const (
	Raw      Kind = iota // opaque value, surrounding white space trimmed
	CNMobile             // mainland-China mobile number, canonical form E.164
	CNID                 // PRC resident identity card number, 18 characters
	Email                // e-mail address, NFKC and lower-cased
	numKinds
)

var kindNames = [numKinds]string{
	Raw:      "raw",
	CNMobile: "cn_mobile",
	CNID:     "cn_id",
	Email:    "email",
}

// ErrUnknownKind is matched (with [errors.Is]) by the error that [ParseKind]
// returns for a name it does not know and by the error that [Canonical] and
// [AppendCanonical] return for a Kind outside the defined constants. It
// signals a configuration or programming mistake, not bad data: callers
// should fail the whole dataset rather than count the row as invalid.
var ErrUnknownKind = errors.New("ident: unknown kind")

// kindError is the concrete error behind [ErrUnknownKind]. The name comes
// from configuration, never from identifier data.
type kindError struct{ name string }

func (e *kindError) Error() string        { return fmt.Sprintf("ident: unknown kind %q", e.name) }
func (e *kindError) Is(target error) bool { return target == ErrUnknownKind }

// ParseKind returns the Kind named s ("raw", "cn_mobile", "cn_id", "email").
// Names are matched exactly. For any other name it returns an error
// "ident: unknown kind %q" that matches [ErrUnknownKind].
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if s == name {
			return Kind(k), nil
		}
	}
	return 0, &kindError{name: s}
}

// String returns the name of k as accepted by [ParseKind], or "Kind(N)" for
// a value outside the defined constants.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// valid reports whether k is one of the defined constants.
func (k Kind) valid() bool { return k < numKinds }

// MarshalText implements [encoding.TextMarshaler] so that a Kind is written
// by name in JSON and YAML configuration. It fails for an undefined Kind.
func (k Kind) MarshalText() ([]byte, error) {
	if !k.valid() {
		return nil, &kindError{name: k.String()}
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler] with [ParseKind].
func (k *Kind) UnmarshalText(text []byte) error {
	v, err := ParseKind(string(text))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Reason says why a value was rejected. The zero value is not a valid
// reason.
type Reason uint8

// The rejection reasons. Their names ([Reason.String]) appear in reports
// and metrics and must not change.
const (
	ReasonEmpty        Reason = iota + 1 // nothing but white space
	ReasonBadChar                        // a character that cannot occur in this kind (letters in a number, invalid UTF-8)
	ReasonBadLength                      // wrong number of digits
	ReasonBadPrefix                      // not a mainland-China mobile prefix (1[3-9]), or a foreign country code
	ReasonBadChecksum                    // the resident ID check character does not match
	ReasonBadBirthDate                   // the resident ID birth date is impossible, before 1900 or in the future
	ReasonBadRegion                      // the resident ID does not start with a province code
	ReasonBadFormat                      // characters are allowed but their arrangement is not (misplaced "+", "@" count, …)
	numReasons
)

var reasonNames = [numReasons]string{
	ReasonEmpty:        "empty",
	ReasonBadChar:      "bad_char",
	ReasonBadLength:    "bad_length",
	ReasonBadPrefix:    "bad_prefix",
	ReasonBadChecksum:  "bad_checksum",
	ReasonBadBirthDate: "bad_birth_date",
	ReasonBadRegion:    "bad_region",
	ReasonBadFormat:    "bad_format",
}

// String returns the name of r, such as "bad_checksum", or "Reason(N)" for a
// value outside the defined constants.
func (r Reason) String() string {
	if r.valid() {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

func (r Reason) valid() bool { return r > 0 && r < numReasons }

// Error is the error returned when a value is rejected. It deliberately holds
// no part of the value, so it is safe to log and to return across the
// operator API.
type Error struct {
	Kind   Kind   // the kind the value was canonicalised as
	Reason Reason // why it was rejected
}

// Error returns a message such as "ident: invalid cn_mobile: bad_prefix".
func (e *Error) Error() string {
	return "ident: invalid " + e.Kind.String() + ": " + e.Reason.String()
}

// Is reports whether target is an *Error with the same Kind and Reason, so
// errors.Is(err, &ident.Error{Kind: ident.CNID, Reason: ident.ReasonBadChecksum})
// works. Use [errors.As] to read the Reason of any rejection.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && *t == *e
}
