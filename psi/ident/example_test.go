package ident_test

import (
	"errors"
	"fmt"

	"github.com/tandem-dev/tandem/psi/ident"
)

func ExampleCanonical() {
	for _, in := range []string{"+86 138 0013 8000", "0086-138-0013-8000", "（＋８６）１３８００１３８０００"} {
		out, _ := ident.Canonical(ident.CNMobile, in)
		fmt.Println(out)
	}
	id, _ := ident.Canonical(ident.CNID, "110105491231002") // 15-digit legacy number
	fmt.Println(id)
	email, _ := ident.Canonical(ident.Email, " User@Example.COM ")
	fmt.Println(email)
	// Output:
	// +8613800138000
	// +8613800138000
	// +8613800138000
	// 11010519491231002X
	// user@example.com
}

func ExampleCanonical_rejected() {
	_, err := ident.Canonical(ident.CNID, "110105194912310021")
	fmt.Println(err) // the message never contains the value

	var e *ident.Error
	if errors.As(err, &e) {
		fmt.Println(e.Reason == ident.ReasonBadChecksum)
	}
	// Output:
	// ident: invalid cn_id: bad_checksum
	// true
}

// A dataset loader canonicalises a column into one reused buffer, counts
// rejections and duplicates, and never logs the values themselves.
func ExampleAppendCanonical() {
	column := []string{"13800138000", "+86 138 0013 8000", "12800138000", "", "139-1234-5678"}
	var (
		c    ident.Counter
		buf  []byte
		seen = make(map[string]bool)
	)
	for _, v := range column {
		var err error
		buf, err = ident.AppendCanonical(buf[:0], ident.CNMobile, v)
		if c.Observe(err) {
			continue
		}
		if seen[string(buf)] {
			c.Duplicate()
			continue
		}
		seen[string(buf)] = true
	}
	fmt.Println(len(seen), "kept;", c.Invalid(), "duplicates:", c.Duplicates(), "total dropped:", c.Total())
	// Output:
	// 2 kept; map[bad_prefix:1 empty:1] duplicates: 1 total dropped: 3
}

func ExampleParseKind() {
	k, err := ident.ParseKind("cn_id")
	fmt.Println(k, err)
	_, err = ident.ParseKind("phone")
	fmt.Println(err, errors.Is(err, ident.ErrUnknownKind))
	// Output:
	// cn_id <nil>
	// ident: unknown kind "phone" true
}
