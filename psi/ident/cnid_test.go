package ident

import (
	"fmt"
	"testing"
	"time"
)

// checkChar computes the GB 11643-1999 check character of a 17-digit body
// straight from the ISO 7064 MOD 11-2 definition, independently of the
// lookup tables in cnid.go: weight_i = 2^(18-i) mod 11 for positions
// i = 1..17, check value = (12 - sum mod 11) mod 11, with 10 written "X".
func checkChar(body string) string {
	if len(body) != 17 {
		panic("checkChar: body must be 17 digits")
	}
	sum := 0
	for i := 1; i <= 17; i++ {
		w := 1
		for range 18 - i {
			w = w * 2 % 11
		}
		sum += int(body[i-1]-'0') * w
	}
	v := (12 - sum%11) % 11
	if v == 10 {
		return "X"
	}
	return fmt.Sprint(v)
}

// makeID returns a valid-checksum 18-character ID from region (6 digits),
// birth date (YYYYMMDD) and sequence (3 digits).
func makeID(region, birth, seq string) string {
	body := region + birth + seq
	return body + checkChar(body)
}

// badCheck returns id with a wrong check character.
func badCheck(id string) string {
	c := byte('0')
	if id[17] == '0' {
		c = '1'
	}
	return id[:17] + string(c)
}

func TestCheckCharKnownAnswers(t *testing.T) {
	// 11010519491231002X is the sample number printed in GB 11643-1999 and
	// widely reproduced; 440524188001010014 is another widely published
	// sample (its 1880 birth date is rejected below, not its checksum).
	for _, id := range []string{"11010519491231002X", "440524188001010014"} {
		if got := checkChar(id[:17]); got != id[17:] {
			t.Errorf("checkChar(%s) = %s, want %s", id[:17], got, id[17:])
		}
		if got := string(idCheckChar([]byte(id[:17]))); got != id[17:] {
			t.Errorf("idCheckChar(%s) = %s, want %s", id[:17], got, id[17:])
		}
	}
}

func TestCNID(t *testing.T) {
	const sample = "11010519491231002X"
	today := testToday.Format("20060102")
	tomorrow := testToday.AddDate(0, 0, 1).Format("20060102")
	leap := makeID("310115", "20000229", "001")
	oldest := makeID("650102", "19000101", "001")
	cases := []canonCase{
		// Accepted.
		{name: "published sample", in: sample, want: sample},
		{name: "lower-case x", in: "11010519491231002x", want: sample},
		{name: "surrounding space", in: " \t11010519491231002X\u3000\n", want: sample},
		{name: "full-width", in: "１１０１０５１９４９１２３１００２Ｘ", want: sample},
		{name: "full-width lower x", in: "１１０１０５１９４９１２３１００２ｘ", want: sample},
		{name: "15 digit sample", in: "110105491231002", want: sample},
		{name: "15 digit full-width", in: "１１０１０５４９１２３１００２", want: sample},
		{name: "digit check", in: makeID("440306", "19900307", "123"), want: makeID("440306", "19900307", "123")},
		{name: "leap day 2000", in: leap, want: leap},
		{name: "leap day 1996", in: makeID("500101", "19960229", "555"), want: makeID("500101", "19960229", "555")},
		{name: "1900-01-01", in: oldest, want: oldest},
		{name: "born today", in: makeID("210102", today, "017"), want: makeID("210102", today, "017")},
		{name: "taiwan 71", in: makeID("710000", "19800101", "001"), want: makeID("710000", "19800101", "001")},
		{name: "hong kong 81", in: makeID("810000", "19800101", "002"), want: makeID("810000", "19800101", "002")},
		{name: "macao 82", in: makeID("820000", "19800101", "003"), want: makeID("820000", "19800101", "003")},
		{name: "taiwan permit 83", in: makeID("830000", "19800101", "004"), want: makeID("830000", "19800101", "004")},
		{name: "15 digit 1900", in: "650102000101001", want: makeID("650102", "19000101", "001")},
		{name: "15 digit 1999-12-31", in: "320102991231456", want: makeID("320102", "19991231", "456")},

		// Rejected.
		{name: "empty", in: "", reason: ReasonEmpty},
		{name: "white space only", in: " \u3000\t", reason: ReasonEmpty},
		{name: "bad check char", in: "110105194912310021", reason: ReasonBadChecksum},
		{name: "check digit off by one", in: badCheck(makeID("440306", "19900307", "123")), reason: ReasonBadChecksum},
		{name: "swapped digits", in: "11010519491231020X", reason: ReasonBadChecksum},
		{name: "letter check", in: "11010519491231002Y", reason: ReasonBadChar},
		{name: "x in body", in: "1101051949123100X2", reason: ReasonBadChar},
		{name: "two x", in: "1101051949123100XX", reason: ReasonBadChar},
		{name: "x in 15 digit", in: "11010549123100X", reason: ReasonBadChar},
		{name: "inner space", in: "110105 19491231 002X", reason: ReasonBadChar},
		{name: "hyphen", in: "110105-19491231-002X", reason: ReasonBadChar},
		{name: "invalid utf8", in: "11010519491231002\xff", reason: ReasonBadChar},
		{name: "17 digits", in: "11010519491231002", reason: ReasonBadLength},
		{name: "19 digits", in: "1101051949123100211", reason: ReasonBadLength},
		{name: "16 digits", in: "1101051949123100", reason: ReasonBadLength},
		{name: "14 digits", in: "11010549123100", reason: ReasonBadLength},
		{name: "x at 18 of 19", in: "11010519491231002X0", reason: ReasonBadChar},
		{name: "month 13", in: makeID("110105", "19901301", "001"), reason: ReasonBadBirthDate},
		{name: "month 00", in: makeID("110105", "19900001", "001"), reason: ReasonBadBirthDate},
		{name: "day 00", in: makeID("110105", "19900100", "001"), reason: ReasonBadBirthDate},
		{name: "jan 32", in: makeID("110105", "19900132", "001"), reason: ReasonBadBirthDate},
		{name: "apr 31", in: makeID("110105", "19900431", "001"), reason: ReasonBadBirthDate},
		{name: "feb 30", in: makeID("110105", "20000230", "001"), reason: ReasonBadBirthDate},
		{name: "feb 29 2023", in: makeID("110105", "20230229", "001"), reason: ReasonBadBirthDate},
		{name: "feb 29 1900", in: makeID("110105", "19000229", "001"), reason: ReasonBadBirthDate},
		{name: "1899-12-31", in: makeID("110105", "18991231", "001"), reason: ReasonBadBirthDate},
		{name: "published 1880 sample", in: "440524188001010014", reason: ReasonBadBirthDate},
		{name: "tomorrow", in: makeID("110105", tomorrow, "001"), reason: ReasonBadBirthDate},
		{name: "year 2999", in: makeID("110105", "29990101", "001"), reason: ReasonBadBirthDate},
		{name: "15 digit month 13", in: "110105491331002", reason: ReasonBadBirthDate},
		{name: "15 digit feb 29 1900", in: "110105000229002", reason: ReasonBadBirthDate},
		{name: "region checked before date", in: makeID("010105", "19901301", "001"), reason: ReasonBadRegion},
		{name: "date checked before checksum", in: "110105199013010010", reason: ReasonBadBirthDate},
		{name: "15 digit bad region", in: "910105491231002", reason: ReasonBadRegion},
	}
	valid := map[string]bool{"71": true, "81": true, "82": true, "83": true}
	for _, r := range [][2]int{{11, 15}, {21, 23}, {31, 37}, {41, 46}, {50, 54}, {61, 65}} {
		for p := r[0]; p <= r[1]; p++ {
			valid[fmt.Sprint(p)] = true
		}
	}
	for p := 0; p <= 99; p++ {
		prov := fmt.Sprintf("%02d", p)
		id := makeID(prov+"0102", "19850615", "321")
		c := canonCase{name: "province " + prov, in: id, want: id}
		if !valid[prov] {
			c.want, c.reason = "", ReasonBadRegion
		}
		cases = append(cases, c)
	}
	runCanonCases(t, CNID, cases)
}

// TestCNIDFifteenToEighteen converts legacy numbers and checks the result
// against an independent construction.
func TestCNIDFifteenToEighteen(t *testing.T) {
	for _, tc := range []struct{ region, yymmdd, seq string }{
		{"110105", "491231", "002"},
		{"440306", "800229", "013"},
		{"510104", "000101", "999"},
		{"370202", "991231", "000"},
	} {
		in := tc.region + tc.yymmdd + tc.seq
		want := makeID(tc.region, "19"+tc.yymmdd, tc.seq)
		got, err := Canonical(CNID, in)
		if err != nil || got != want {
			t.Errorf("Canonical(cn_id, %s) = %q, %v; want %s", in, got, err, want)
		}
	}
}

// TestCNIDClock checks that the "today" limit follows the package clock.
func TestCNIDClock(t *testing.T) {
	id := makeID("110105", "20250701", "001") // the day after testToday
	if _, err := Canonical(CNID, id); err == nil {
		t.Fatalf("Canonical(cn_id, born tomorrow) accepted")
	}
	saved := now
	defer func() { now = saved }()
	now = func() time.Time { return testToday.AddDate(0, 0, 1) }
	if got, err := Canonical(CNID, id); err != nil || got != id {
		t.Errorf("after advancing the clock: got %q, %v; want %s", got, err, id)
	}
}
