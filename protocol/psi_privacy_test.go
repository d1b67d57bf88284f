package protocol

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/psi"
)

// TestPSIWireCarriesNothingMore records everything each side sends during a
// PSI job and checks it is only group elements, truncated tags, sizes and
// protocol metadata (issue 3, "Privacy tests"): no identifier bytes, no row
// numbers, and in initiator and count modes nothing that tells the
// responder which of its rows matched.
func TestPSIWireCarriesNothingMore(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	bank, partner := genTables(rng, 400, 300, 120)
	// Long, distinctive identifiers: a short one like "m12" occurs by
	// chance in kilobytes of random group elements (the test was flaky).
	for _, tb := range []table{bank, partner} {
		for _, r := range tb.rows {
			for i, id := range r {
				if id != "" {
					r[i] = "+86-secret-" + id
				}
			}
		}
	}
	for _, reveal := range []psi.Reveal{psi.RevealInitiator, psi.RevealBoth, psi.RevealCount} {
		t.Run(reveal.String(), func(t *testing.T) {
			ri, rr, _, ar, pi, pr := runPSI(t, reveal, psi.FastSuite(), bank, partner, 1<<20)
			es, ts := psi.FastSuite().ElementSize(), ri.TagBytes
			allowed := map[string]func(Msg) bool{
				// Initiator → responder.
				"psi.hello": func(m Msg) bool {
					return jsonKeys(m.Payload, "suite", "reveal", "kinds", "n", "resume", "rows", "slots")
				},
				"psi.i_elems": func(m Msg) bool { return len(m.Payload)%es == 0 },
				"psi.matches": func(m Msg) bool { return reveal == psi.RevealBoth && len(m.Payload)%8 == 0 },
				"psi.done":    func(m Msg) bool { return jsonKeys(m.Payload, "n") },
				// Responder → initiator.
				"psi.i_tags":  func(m Msg) bool { return len(m.Payload)%ts == 0 },
				"psi.r_elems": func(m Msg) bool { return len(m.Payload)%es == 0 },
			}
			for side, p := range map[string]*pipe{"initiator": pi, "responder": pr} {
				for _, m := range p.sent {
					ok, known := allowed[m.Step]
					if !known || !ok(m) {
						t.Fatalf("%s sent %s#%d (%d bytes): not an allowed PSI message", side, m.Step, m.Seq, len(m.Payload))
					}
					for _, rows := range [][][]string{bank.rows, partner.rows} {
						for _, r := range rows {
							for _, id := range r {
								if id != "" && strings.Contains(string(m.Payload), id) {
									t.Fatalf("%s sent identifier bytes in %s", side, m.Step)
								}
							}
						}
					}
				}
			}
			// The responder learns sizes only, never the intersection, in
			// initiator and count modes; its alignment maps every position.
			if reveal != psi.RevealBoth {
				if rr.Intersection != 0 {
					t.Fatalf("responder result holds intersection %d", rr.Intersection)
				}
				if slices.ContainsFunc(pi.sent, func(m Msg) bool { return m.Step == "psi.matches" }) {
					t.Fatal("initiator sent match positions outside both mode")
				}
			}
			if reveal == psi.RevealInitiator && (ar.Matched != ar.Length || ar.Length != uint64(len(partner.rows))) {
				t.Fatalf("responder alignment maps %d of %d positions; want all %d rows (no membership)", ar.Matched, ar.Length, len(partner.rows))
			}
		})
	}
}

// jsonKeys reports whether b is a JSON object whose keys are all allowed.
func jsonKeys(b []byte, allowed ...string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	for k := range m {
		if !slices.Contains(allowed, k) {
			return false
		}
	}
	return true
}
