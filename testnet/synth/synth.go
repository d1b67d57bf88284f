package synth

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// ErrConfig is returned by Generate for an invalid Config; fix the config.
var ErrConfig = errors.New("synth: invalid config")

// Partner kinds.
const (
	KindEcommerce = "ecommerce"
	KindUtility   = "utility"
	KindTax       = "tax"
)

// Config describes a synthetic world: one bank and its partners.
type Config struct {
	// Seed makes the output reproducible: the same Config gives byte-identical
	// files.
	Seed int64
	// BankRows is the number of bank customers (required, > 0).
	BankRows int
	// Partners are written one file each.
	Partners []PartnerConfig
	// InvalidRate is the probability that a written phone or id_no cell is
	// invalid (wrong length, bad check character). 0 means the default 0.01;
	// a negative value means none.
	InvalidRate float64
}

// PartnerConfig describes one partner's user table.
type PartnerConfig struct {
	// Name is the file stem (lower-case letters, digits, '_' and '-'; not
	// "bank"); the file is <Name>.csv.
	Name string
	// Rows is the number of partner users.
	Rows int
	// Overlap is the fraction of partner rows that are bank customers, in
	// [0, 1]; round(Overlap*Rows) must not exceed BankRows.
	Overlap float64
	// Kind selects the partner's columns: "ecommerce" (monthly_spend,
	// orders_90d, category), "utility" (avg_bill, late_payments) or "tax"
	// (annual_income_band, filing_years). Empty means "ecommerce".
	Kind string
}

// Truth is what the generator knows and PSI must rediscover.
type Truth struct {
	Seed          int64          `json:"seed"`
	BankFile      string         `json:"bank_file"`
	BankRows      int            `json:"bank_rows"`
	BankPositives int            `json:"bank_positives"` // rows with has_card = 1
	Partners      []PartnerTruth `json:"partners"`
}

// PartnerTruth counts, for one partner, the persons it shares with the bank.
// Persons are unique within each file, so these are also row counts of a
// plaintext join on canonical identifiers.
type PartnerTruth struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	File string `json:"file"`
	Rows int    `json:"rows"`
	// Shared is the number of partner rows that are bank customers, whether
	// or not their identifiers allow a match.
	Shared int `json:"shared"`
	// ByPhone counts shared persons whose phone is present and valid on both
	// sides (and not changed on the partner side): |bank phones ∩ partner phones|.
	ByPhone int `json:"by_phone"`
	// ByIDNo is the same for id_no.
	ByIDNo int `json:"by_id_no"`
	// ByEither counts shared persons matchable by phone or by id_no.
	ByEither int `json:"by_either"`
	// ByIDNoOnly counts shared persons matchable by id_no but not by phone.
	ByIDNoOnly int `json:"by_id_no_only"`
}

// Per-kind partner identifier quality: probability that the partner's phone
// is missing, changed to another number, and that its id_no is missing.
var partnerQuality = map[string]struct{ phoneMissing, phoneChanged, idMissing float64 }{
	KindEcommerce: {0.03, 0.08, 0.45},
	KindUtility:   {0.05, 0.10, 0.25},
	KindTax:       {0.15, 0.10, 0.01},
}

const (
	bankPhoneMissing = 0.01
	bankIDMissing    = 0.005
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func (c *Config) validate() error {
	if c.BankRows <= 0 {
		return fmt.Errorf("%w: BankRows must be positive", ErrConfig)
	}
	if c.InvalidRate == 0 {
		c.InvalidRate = 0.01
	}
	if c.InvalidRate < 0 {
		c.InvalidRate = 0
	}
	if c.InvalidRate > 1 {
		return fmt.Errorf("%w: InvalidRate above 1", ErrConfig)
	}
	total := int64(c.BankRows)
	seen := map[string]bool{"bank": true}
	for i := range c.Partners {
		p := &c.Partners[i]
		if p.Kind == "" {
			p.Kind = KindEcommerce
		}
		if _, ok := partnerQuality[p.Kind]; !ok {
			return fmt.Errorf("%w: partner %q: unknown kind %q", ErrConfig, p.Name, p.Kind)
		}
		if !nameRE.MatchString(p.Name) || seen[p.Name] {
			return fmt.Errorf("%w: partner name %q is invalid or repeated", ErrConfig, p.Name)
		}
		seen[p.Name] = true
		if p.Rows < 0 || !(p.Overlap >= 0 && p.Overlap <= 1) {
			return fmt.Errorf("%w: partner %q: negative rows or overlap outside [0,1]", ErrConfig, p.Name)
		}
		if sharedOf(*p) > c.BankRows {
			return fmt.Errorf("%w: partner %q: overlap %d exceeds bank rows", ErrConfig, p.Name, sharedOf(*p))
		}
		total += 2 * int64(p.Rows) // persons plus fresh phone numbers
	}
	if total > capacity() || total > int64(len(mobilePrefixes))*1e8 {
		return fmt.Errorf("%w: too many rows", ErrConfig)
	}
	return nil
}

func sharedOf(p PartnerConfig) int { return int(math.Round(p.Overlap * float64(p.Rows))) }

// Generate writes bank.csv and one <name>.csv per partner into dir (which
// must exist) and returns the ground truth. Output is a pure function of cfg.
// Identifiers of one person are written in different formats on the bank
// and the partner side, a few are invalid (at InvalidRate), some partner
// phones are missing or changed so that only id_no matches, and has_card
// follows a logistic model of income and of the partners' features.
// It returns an error wrapping ErrConfig for a bad cfg, or an I/O error.
// Generate is safe for concurrent use on different directories.
func Generate(dir string, cfg Config) (*Truth, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &gen{cfg: cfg, w: newWorld(cfg.Seed)}
	tr := &Truth{Seed: cfg.Seed, BankFile: filepath.Join(dir, "bank.csv"), BankRows: cfg.BankRows}
	pos, err := g.writeBank(tr.BankFile)
	if err != nil {
		return nil, err
	}
	tr.BankPositives = pos
	base := int64(cfg.BankRows)
	fresh := base
	for _, p := range cfg.Partners {
		fresh += int64(p.Rows)
	}
	for j, p := range cfg.Partners {
		pt := PartnerTruth{Name: p.Name, Kind: p.Kind, File: filepath.Join(dir, p.Name+".csv"), Rows: p.Rows}
		if err := g.writePartner(j, p, base, fresh, &pt); err != nil {
			return nil, err
		}
		base += int64(p.Rows)
		fresh += int64(p.Rows)
		tr.Partners = append(tr.Partners, pt)
	}
	return tr, nil
}

type gen struct {
	cfg Config
	w   *world
}

// Random streams per person.
const (
	streamBank    = 2
	streamPartner = 16 // + partner index
)

// idCells is how one side wrote a person's identifiers.
type idCells struct {
	phoneFmt, idFmt int
	phoneOK, idOK   bool // present, valid and the person's own
}

// bankCells appends the bank's phone, id_no and email cells for person i.
func (g *gen) bankCells(i int64, p *person, r *rng, phone, id, email []byte) (idCells, []byte, []byte, []byte) {
	var c idCells
	c.phoneFmt = r.pick(bankPhoneW)
	c.idFmt = r.pick(bankIDW)
	switch {
	case r.bernoulli(bankPhoneMissing):
	case r.bernoulli(g.cfg.InvalidRate):
		phone = breakPhone(phone, &p.phone, c.phoneFmt, r)
	default:
		phone = appendPhone(phone, &p.phone, c.phoneFmt)
		c.phoneOK = true
	}
	switch {
	case r.bernoulli(bankIDMissing):
	case r.bernoulli(g.cfg.InvalidRate):
		id = breakID(id, &p.id18, r)
	default:
		id = appendID(id, &p.id18, c.idFmt)
		c.idOK = true
	}
	email = appendEmail(email, p.emailN, r.pick(bankEmailW))
	return c, phone, id, email
}

func (g *gen) writeBank(path string) (positives int, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("synth: %w", err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	bw.WriteString("customer_id,phone,id_no,email,has_card,age,income,tenure_months,city_tier,consent_marketing\n")
	var line, phone, id, email []byte
	for i := int64(0); i < int64(g.cfg.BankRows); i++ {
		p := g.w.person(i)
		r := newRNG(g.cfg.Seed, i, streamBank)
		var c idCells
		c, phone, id, email = g.bankCells(i, &p, &r, phone[:0], id[:0], email[:0])
		_ = c
		line = append(line[:0], 'C')
		line = appendPadded(line, i, 10)
		line = append(line, ',')
		line = appendCSV(line, phone)
		line = append(line, ',')
		line = appendCSV(line, id)
		line = append(line, ',')
		line = appendCSV(line, email)
		card := r.bernoulli(sigmoid(cardLogit(&p)))
		if card {
			positives++
			line = append(line, ",1,"...)
		} else {
			line = append(line, ",0,"...)
		}
		line = strconv.AppendInt(line, int64(p.age), 10)
		line = append(line, ',')
		if !r.bernoulli(0.02) {
			income := math.Exp(11.3 + 0.45*p.aff + 0.25*r.normal())
			line = strconv.AppendInt(line, int64(income/100)*100, 10)
		}
		line = append(line, ',')
		maxTenure := min((p.age-minAge)*12, 360) + 1
		line = strconv.AppendInt(line, int64(1+r.intn(maxTenure)), 10)
		line = append(line, ",tier"...)
		tier := p.tier
		if r.bernoulli(0.2) {
			tier = 1 + r.intn(4)
		}
		line = strconv.AppendInt(line, int64(tier), 10)
		switch {
		case r.bernoulli(0.03):
			line = append(line, ",\n"...)
		case r.bernoulli(0.6 + 0.1*math.Tanh(p.shop)):
			line = append(line, ",Y\n"...)
		default:
			line = append(line, ",N\n"...)
		}
		bw.Write(line)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("synth: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("synth: %w", err)
	}
	return positives, nil
}

func (g *gen) writePartner(j int, pc PartnerConfig, base, fresh int64, pt *PartnerTruth) error {
	f, err := os.Create(pt.File)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	switch pc.Kind {
	case KindEcommerce:
		bw.WriteString("user_id,phone,id_no,email,monthly_spend,orders_90d,category\n")
	case KindUtility:
		bw.WriteString("user_id,phone,id_no,email,avg_bill,late_payments\n")
	case KindTax:
		bw.WriteString("user_id,phone,id_no,email,annual_income_band,filing_years\n")
	}
	q := partnerQuality[pc.Kind]
	shared := int64(sharedOf(pc))
	stream := uint64(streamPartner + j)
	pr := newRNG(g.cfg.Seed, -2, stream)
	rowPerm := newAffine(int64(pc.Rows), &pr)
	bankPerm := newAffine(int64(g.cfg.BankRows), &pr)
	prefix := map[string]byte{KindEcommerce: 'E', KindUtility: 'U', KindTax: 'T'}[pc.Kind]

	var line, phone, id, email, tmp []byte
	for k := int64(0); k < int64(pc.Rows); k++ {
		u := rowPerm.at(k)
		isShared := u < shared
		var pi int64
		var bank idCells
		if isShared {
			pi = bankPerm.at(u)
		} else {
			pi = base + (u - shared)
		}
		p := g.w.person(pi)
		if isShared {
			// Replay the bank's draws for this person to learn its formats
			// and which of its cells are matchable.
			br := newRNG(g.cfg.Seed, pi, streamBank)
			bank, tmp, _, _ = g.bankCells(pi, &p, &br, tmp[:0], tmp[:0], tmp[:0])
		}
		r := newRNG(g.cfg.Seed, pi, stream)
		phoneFmt := pickOther(&r, partnerPhoneW, bank.phoneFmt, isShared)
		idFmt := pickOther(&r, partnerIDW, bank.idFmt, isShared)
		phoneOK, idOK := false, false
		phone, id, email = phone[:0], id[:0], email[:0]
		switch {
		case r.bernoulli(q.phoneMissing):
		case r.bernoulli(q.phoneChanged):
			d := g.w.phoneOf(fresh + k)
			phone = appendPhone(phone, &d, phoneFmt)
		case r.bernoulli(g.cfg.InvalidRate):
			phone = breakPhone(phone, &p.phone, phoneFmt, &r)
		default:
			phone = appendPhone(phone, &p.phone, phoneFmt)
			phoneOK = true
		}
		switch {
		case r.bernoulli(q.idMissing):
		case r.bernoulli(g.cfg.InvalidRate):
			id = breakID(id, &p.id18, &r)
		default:
			id = appendID(id, &p.id18, idFmt)
			idOK = true
		}
		if !r.bernoulli(0.3) {
			email = appendEmail(email, p.emailN, r.pick(partnerEmailW))
		}
		if isShared {
			pt.Shared++
			byPhone := phoneOK && bank.phoneOK
			byID := idOK && bank.idOK
			if byPhone {
				pt.ByPhone++
			}
			if byID {
				pt.ByIDNo++
				if !byPhone {
					pt.ByIDNoOnly++
				}
			}
			if byPhone || byID {
				pt.ByEither++
			}
		}

		line = append(line[:0], prefix)
		line = appendPadded(line, k, 10)
		line = append(line, ',')
		line = appendCSV(line, phone)
		line = append(line, ',')
		line = appendCSV(line, id)
		line = append(line, ',')
		line = appendCSV(line, email)
		line = append(line, ',')
		line = appendFeatures(line, pc.Kind, &p, &r)
		line = append(line, '\n')
		bw.Write(line)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

// pickOther draws a format with weights w, different from avoid if differ.
func pickOther(r *rng, w []float64, avoid int, differ bool) int {
	f := r.pick(w)
	if differ && f == avoid {
		f = (f + 1 + r.intn(len(w)-1)) % len(w)
	}
	return f
}

var categories = []string{"fashion", "electronics", "grocery", "beauty", "home", "books", "sports", "baby"}

func appendFeatures(line []byte, kind string, p *person, r *rng) []byte {
	missing := r.bernoulli(0.01)
	switch kind {
	case KindEcommerce:
		if !missing {
			spend := math.Exp(6.0 + 0.35*p.aff + 0.6*p.shop + 0.4*r.normal())
			line = strconv.AppendFloat(line, math.Round(spend*100)/100, 'f', 2, 64)
		}
		line = append(line, ',')
		orders := math.Floor(math.Exp(1.3 + 0.7*p.shop + 0.3*r.normal()))
		line = strconv.AppendInt(line, int64(orders), 10)
		line = append(line, ',')
		w := [8]float64{3 + p.shop, 2 + p.aff, 4, 2, 2, 1, 1, 1}
		for i := range w {
			w[i] = max(w[i], 0.2)
		}
		line = append(line, categories[r.pick(w[:])]...)
	case KindUtility:
		if !missing {
			bill := math.Exp(5.0 + 0.3*p.aff + 0.3*r.normal())
			line = strconv.AppendFloat(line, math.Round(bill*100)/100, 'f', 2, 64)
		}
		line = append(line, ',')
		late := math.Floor(max(0, 1.2*p.risk+0.8*r.normal()+0.2))
		line = strconv.AppendInt(line, int64(min(late, 12)), 10)
	case KindTax:
		x := 0.9*p.aff + 0.35*r.normal()
		band := 1
		for _, t := range []float64{-1.2, -0.4, 0.3, 1.0, 1.8} {
			if x > t {
				band++
			}
		}
		if !missing {
			line = strconv.AppendInt(line, int64(band), 10)
		}
		line = append(line, ',')
		line = strconv.AppendInt(line, int64(1+r.intn(max(p.age-minAge, 1))), 10)
	}
	return line
}

func appendPadded(dst []byte, v int64, width int) []byte {
	var b [20]byte
	s := strconv.AppendInt(b[:0], v, 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// appendCSV appends a field, quoting it if it holds a comma, quote, line
// break or surrounding space.
func appendCSV(dst, field []byte) []byte {
	need := len(field) > 0 && (field[0] == ' ' || field[len(field)-1] == ' ')
	for _, c := range field {
		if c == ',' || c == '"' || c == '\n' || c == '\r' {
			need = true
			break
		}
	}
	if !need {
		return append(dst, field...)
	}
	dst = append(dst, '"')
	for _, c := range field {
		if c == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}
