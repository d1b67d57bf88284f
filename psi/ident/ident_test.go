package ident

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// testToday is the date every test runs at (see TestMain), so that birth-date
// limits do not drift with the calendar.
var testToday = time.Date(2025, time.June, 30, 15, 4, 5, 0, time.FixedZone("CST", 8*3600))

func TestMain(m *testing.M) {
	now = func() time.Time { return testToday }
	os.Exit(m.Run())
}

// canonCase is one row of a canonicalisation table: want is the canonical
// form when reason is 0, otherwise the expected rejection reason.
type canonCase struct {
	name   string
	in     string
	want   string
	reason Reason
}

// runCanonCases checks Canonical and AppendCanonical for every case, and
// that accepted outputs are fixed points.
func runCanonCases(t *testing.T, k Kind, cases []canonCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonical(k, tc.in)
			if tc.reason != 0 {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("Canonical(%s, %q) = %q, %v; want *Error %s", k, tc.in, got, err, tc.reason)
				}
				if e.Kind != k || e.Reason != tc.reason {
					t.Errorf("Canonical(%s, %q): got %s/%s, want %s/%s", k, tc.in, e.Kind, e.Reason, k, tc.reason)
				}
				if got != "" {
					t.Errorf("Canonical(%s, %q) returned %q with an error, want \"\"", k, tc.in, got)
				}
				dst := []byte("prefix")
				b, err := AppendCanonical(dst, k, tc.in)
				if err == nil || string(b) != "prefix" {
					t.Errorf("AppendCanonical(%s, %q) = %q, %v; want dst unchanged and an error", k, tc.in, b, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Canonical(%s, %q) = %q, %v; want %q, nil", k, tc.in, got, err, tc.want)
			}
			b, err := AppendCanonical([]byte("prefix"), k, tc.in)
			if err != nil || string(b) != "prefix"+tc.want {
				t.Errorf("AppendCanonical(%s, %q) = %q, %v; want %q", k, tc.in, b, err, "prefix"+tc.want)
			}
			again, err := Canonical(k, got)
			if err != nil || again != got {
				t.Errorf("Canonical(%s, %q) = %q, %v; not idempotent", k, got, again, err)
			}
		})
	}
}

func TestRaw(t *testing.T) {
	runCanonCases(t, Raw, []canonCase{
		{name: "plain", in: "abc123", want: "abc123"},
		{name: "trim", in: " \tabc 123\r\n", want: "abc 123"},
		{name: "trim unicode spaces", in: "\u3000x\u00a0", want: "x"},
		{name: "case kept", in: "AbC", want: "AbC"},
		{name: "full-width kept", in: "ＡＢ", want: "ＡＢ"},
		{name: "empty", in: "", reason: ReasonEmpty},
		{name: "white space only", in: " \t\n\u00a0\u3000", reason: ReasonEmpty},
	})
}

func TestParseKind(t *testing.T) {
	for _, k := range []Kind{Raw, CNMobile, CNID, Email} {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", k.String(), got, err, k)
		}
	}
	names := map[Kind]string{Raw: "raw", CNMobile: "cn_mobile", CNID: "cn_id", Email: "email"}
	for k, want := range names {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
	for _, s := range []string{"", "RAW", "mobile", "cn_mobile ", "phone"} {
		_, err := ParseKind(s)
		if err == nil || !errors.Is(err, ErrUnknownKind) {
			t.Errorf("ParseKind(%q) error = %v, want ErrUnknownKind", s, err)
			continue
		}
		if want := `ident: unknown kind "` + s + `"`; err.Error() != want {
			t.Errorf("ParseKind(%q) error = %q, want %q", s, err, want)
		}
	}
	if got := Kind(9).String(); got != "Kind(9)" {
		t.Errorf("Kind(9).String() = %q, want %q", got, "Kind(9)")
	}
}

func TestKindText(t *testing.T) {
	var cfg struct{ Kind Kind }
	if err := json.Unmarshal([]byte(`{"Kind":"cn_id"}`), &cfg); err != nil || cfg.Kind != CNID {
		t.Fatalf("unmarshal: got %v, %v; want cn_id", cfg.Kind, err)
	}
	b, err := json.Marshal(cfg)
	if err != nil || string(b) != `{"Kind":"cn_id"}` {
		t.Errorf("marshal: got %s, %v", b, err)
	}
	if err := json.Unmarshal([]byte(`{"Kind":"phone"}`), &cfg); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("unmarshal unknown: got %v, want ErrUnknownKind", err)
	}
	if _, err := json.Marshal(struct{ Kind Kind }{Kind(7)}); err == nil {
		t.Errorf("marshal Kind(7): got nil error")
	}
}

func TestUnknownKind(t *testing.T) {
	if _, err := Canonical(Kind(4), "x"); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("Canonical(Kind(4)) error = %v, want ErrUnknownKind", err)
	}
	b, err := AppendCanonical([]byte("p"), Kind(200), "x")
	if !errors.Is(err, ErrUnknownKind) || string(b) != "p" {
		t.Errorf("AppendCanonical(Kind(200)) = %q, %v; want dst unchanged, ErrUnknownKind", b, err)
	}
	var e *Error
	if errors.As(err, &e) {
		t.Errorf("unknown kind error is an *Error; it must not be counted as bad data")
	}
}

func TestReasonString(t *testing.T) {
	want := map[Reason]string{
		ReasonEmpty:        "empty",
		ReasonBadChar:      "bad_char",
		ReasonBadLength:    "bad_length",
		ReasonBadPrefix:    "bad_prefix",
		ReasonBadChecksum:  "bad_checksum",
		ReasonBadBirthDate: "bad_birth_date",
		ReasonBadRegion:    "bad_region",
		ReasonBadFormat:    "bad_format",
		0:                  "Reason(0)",
		42:                 "Reason(42)",
	}
	for r, w := range want {
		if got := r.String(); got != w {
			t.Errorf("Reason(%d).String() = %q, want %q", r, got, w)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	err := error(&Error{Kind: CNMobile, Reason: ReasonBadPrefix})
	if got, want := err.Error(), "ident: invalid cn_mobile: bad_prefix"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, &Error{Kind: CNMobile, Reason: ReasonBadPrefix}) {
		t.Errorf("errors.Is with an equal *Error = false, want true")
	}
	if errors.Is(err, &Error{Kind: CNMobile, Reason: ReasonBadLength}) {
		t.Errorf("errors.Is with a different reason = true, want false")
	}
}

// allMessages is every message an *Error can produce for defined kinds and
// reasons: the finite set that proves no input leaks into it.
func allMessages() map[string]bool {
	m := make(map[string]bool)
	for k := Raw; k < numKinds; k++ {
		for r := ReasonEmpty; r < numReasons; r++ {
			m[(&Error{Kind: k, Reason: r}).Error()] = true
		}
	}
	return m
}

// TestErrorNeverContainsInput enforces the privacy rule: a rejection message
// is one of a fixed set of strings and contains no part of the value.
func TestErrorNeverContainsInput(t *testing.T) {
	msgs := allMessages()
	inputs := map[Kind][]string{
		Raw:      {"   ", ""},
		CNMobile: {"1380013800x", "12800138000", "138001380001", "+1 415 555 0100", "138+00138000", "１３８００１３８００ａ"},
		CNID:     {"110105194912310021", "11010519491331002X", "01010519491231002X", "1101051949123100", "11010519491231002Y"},
		Email:    {"alice.secret@example", "bob@@example.com", "carol smith@example.com", "dave\xff@example.com"},
	}
	for k, list := range inputs {
		for _, s := range list {
			_, err := Canonical(k, s)
			if err == nil {
				t.Errorf("Canonical(%s, %q) accepted; test input must be invalid", k, s)
				continue
			}
			msg := err.Error()
			if !msgs[msg] {
				t.Errorf("Canonical(%s, %q) error %q is not a fixed message", k, s, msg)
			}
			if trimmed := strings.TrimSpace(s); trimmed != "" && strings.Contains(msg, trimmed) {
				t.Errorf("error %q contains the input", msg)
			}
			for _, part := range strings.FieldsFunc(s, func(r rune) bool { return !('0' <= r && r <= '9') }) {
				if len(part) >= 3 && strings.Contains(msg, part) {
					t.Errorf("error %q contains digits %q of the input", msg, part)
				}
			}
		}
	}
}

func TestCounter(t *testing.T) {
	var c Counter
	if got := c.Invalid(); got == nil || len(got) != 0 {
		t.Errorf("zero Counter Invalid() = %v, want empty non-nil map", got)
	}
	c.Reject(ReasonBadChecksum)
	c.Reject(ReasonBadChecksum)
	c.Reject(ReasonEmpty)
	c.Reject(Reason(0))
	c.Reject(Reason(99))
	c.Duplicate()
	_, err := Canonical(CNMobile, "12800138000")
	if !c.Observe(err) {
		t.Errorf("Observe(*Error) = false, want true")
	}
	if c.Observe(nil) || c.Observe(errors.New("other")) {
		t.Errorf("Observe counted a non-*Error")
	}
	want := map[string]int64{"bad_checksum": 2, "empty": 1, "unknown": 2, "bad_prefix": 1}
	got := c.Invalid()
	if len(got) != len(want) {
		t.Errorf("Invalid() = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Invalid()[%q] = %d, want %d", k, got[k], v)
		}
	}
	if got := c.Count(ReasonBadChecksum); got != 2 {
		t.Errorf("Count(bad_checksum) = %d, want 2", got)
	}
	if c.Rejected() != 6 || c.Duplicates() != 1 || c.Total() != 7 {
		t.Errorf("Rejected, Duplicates, Total = %d, %d, %d; want 6, 1, 7", c.Rejected(), c.Duplicates(), c.Total())
	}
	var sum Counter
	sum.Merge(&c)
	sum.Merge(&c)
	if sum.Total() != 14 || sum.Count(ReasonEmpty) != 2 || sum.Duplicates() != 2 {
		t.Errorf("after two merges: Total %d, empty %d, duplicates %d; want 14, 2, 2", sum.Total(), sum.Count(ReasonEmpty), sum.Duplicates())
	}
	sum.Reset()
	if sum.Total() != 0 {
		t.Errorf("after Reset: Total %d, want 0", sum.Total())
	}
}
