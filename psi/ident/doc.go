// Package ident canonicalises customer identifiers before they enter private
// set intersection.
//
// Two organisations find their shared customers by comparing hashed
// identifiers, so both must turn the same person's identifier into the same
// bytes. A mobile number typed as "138 0013 8000" at the bank and as
// "+86-138-0013-8000" at the partner must hash identically, and a value that
// cannot be a valid identifier must be dropped (and counted) rather than
// hashed. This package is that first step. It is pure: no I/O, no logging,
// no global state beyond the clock used to reject future birth dates.
//
// # Kinds
//
//   - [Raw]: surrounding white space trimmed, nothing else.
//   - [CNMobile]: a mainland-China mobile number in any common written form
//     (national, +86, 0086, 86, parenthesised country code, full-width
//     characters, separators), canonicalised to E.164: "+8613800138000".
//   - [CNID]: a PRC resident identity card number. 18-digit numbers are
//     checked against the ISO 7064 MOD 11-2 check character (GB 11643-1999);
//     15-digit legacy numbers are converted to 18 digits. The province code
//     and the birth date are validated. A lower-case check "x" becomes "X".
//   - [Email]: trimmed, Unicode NFKC, lower-cased, with a basic shape check.
//
// # Results and errors
//
// [Canonical] returns the canonical string; [AppendCanonical] appends it to a
// byte slice and does not allocate for ASCII input, which makes it the
// function to use on large datasets. Both return an [*Error] carrying the
// [Kind] and a [Reason] when a value is rejected. In line with the Tandem
// privacy rule, an error never contains the rejected value, so it may be
// logged. [Counter] tallies rejections per reason and duplicates for the
// per-dataset quality report.
//
// Canonicalisation is idempotent: for every accepted value s,
// Canonical(k, Canonical(k, s)) equals Canonical(k, s).
//
// All functions are safe for concurrent use except the methods of [Counter].
package ident
