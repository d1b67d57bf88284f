package synth

import (
	"math"
	"strconv"
	"time"
)

// refDate is the fixed "today" of the synthetic world: ages are computed
// against it so that output does not depend on the clock.
var refDate = time.Date(2025, time.June, 30, 0, 0, 0, 0, time.UTC)

const (
	minAge      = 18
	ageDays     = 57 * 365 // birth dates spread over ages 18 to about 75
	seqPerBlock = 1000     // the three-digit sequence code of a resident ID
)

// mobilePrefixes are mainland mobile prefixes (all 1[3-9]x).
var mobilePrefixes = []string{
	"130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
	"150", "151", "152", "155", "156", "157", "158", "159",
	"166", "176", "177", "180", "181", "186", "187", "188", "189", "199",
}

// regions are real county-level GB/T 2260 codes with a city tier.
var regions = []struct {
	code string
	tier int
}{
	{"110101", 1}, {"110105", 1}, {"310101", 1}, {"310115", 1},
	{"440103", 1}, {"440305", 1}, {"330106", 2}, {"510104", 2},
	{"420102", 2}, {"320102", 2}, {"120101", 2}, {"500103", 2},
	{"370102", 3}, {"410105", 3}, {"430102", 3}, {"350203", 3},
	{"610113", 3}, {"210102", 3}, {"130102", 4}, {"340104", 4},
	{"360102", 4}, {"450102", 4}, {"520102", 4}, {"620102", 4},
}

var emailNames = []string{
	"zhangwei", "wangfang", "lina", "liuyang", "chenjing", "yangli", "huangmin",
	"zhaolei", "wujun", "zhouyan", "xuqiang", "sunli", "maxiaoming", "zhuhong",
	"hujie", "guoping", "helin", "gaoyuan", "linfeng", "luoxin",
}

var emailDomains = []string{"qq.com", "163.com", "126.com", "sina.com", "gmail.com", "outlook.com", "foxmail.com", "139.com"}

// person is one synthetic individual. All fields are functions of the seed
// and the person's index.
type person struct {
	phone  [11]byte // national mobile number
	id18   [18]byte // 18-character resident ID, canonical (upper-case X)
	born   time.Time
	age    int
	tier   int
	aff    float64 // latent affluence
	shop   float64 // latent online-shopping propensity
	risk   float64 // latent payment risk
	emailN int
}

// world holds the seed-dependent bijections that make identifiers unique.
type world struct {
	seed      int64
	phonePerm affine // over 1e8 phone suffixes
	idPerm    affine // over len(regions)*ageDays (region, birth date) blocks
}

// capacity is the number of distinct persons a world can hold.
func capacity() int64 { return int64(len(regions)) * ageDays * seqPerBlock }

func newWorld(seed int64) *world {
	r := newRNG(seed, -1, 99)
	return &world{
		seed:      seed,
		phonePerm: newAffine(1e8, &r),
		idPerm:    newAffine(int64(len(regions))*ageDays, &r),
	}
}

// phoneOf returns the national number of phone slot i (persons and fresh
// "changed" numbers share the slot space, so numbers are unique).
func (w *world) phoneOf(i int64) [11]byte {
	var d [11]byte
	np := int64(len(mobilePrefixes))
	copy(d[:3], mobilePrefixes[i%np])
	suf := w.phonePerm.at((i / np) % 1e8)
	for k := 10; k >= 3; k-- {
		d[k] = byte('0' + suf%10)
		suf /= 10
	}
	return d
}

func (w *world) person(i int64) person {
	var p person
	p.phone = w.phoneOf(i)
	// Person i takes block i mod blocks and sequence code i div blocks, so
	// consecutive persons get different regions and birth dates (small
	// worlds used to share one block: one age and one city tier for all).
	blocks := int64(len(regions)) * ageDays
	blk := w.idPerm.at(i % blocks)
	reg := regions[blk%int64(len(regions))]
	day := blk / int64(len(regions))
	p.born = refDate.AddDate(-minAge, 0, -int(day))
	y, m, d := p.born.Date()
	if m > refDate.Month() || (m == refDate.Month() && d > refDate.Day()) {
		p.age = refDate.Year() - y - 1
	} else {
		p.age = refDate.Year() - y
	}
	copy(p.id18[:6], reg.code)
	strconv.AppendInt(p.id18[6:6], int64(y), 10) // four digits, in place
	two(p.id18[10:12], int(m))
	two(p.id18[12:14], d)
	seq := i / blocks
	p.id18[14] = byte('0' + seq/100)
	p.id18[15] = byte('0' + seq/10%10)
	p.id18[16] = byte('0' + seq%10)
	p.id18[17] = checkChar(p.id18[:17])
	p.tier = reg.tier
	r := newRNG(w.seed, i, 1)
	p.aff = r.normal()
	p.shop = r.normal()
	p.risk = r.normal()
	p.emailN = int(i)
	return p
}

func two(dst []byte, v int) {
	dst[0] = byte('0' + v/10)
	dst[1] = byte('0' + v%10)
}

// checkChar computes the ISO 7064 MOD 11-2 check character of GB 11643-1999.
func checkChar(d17 []byte) byte {
	sum := 0
	w := 1
	// weights are 2^(17-i) mod 11 for i = 0..16
	for i := 16; i >= 0; i-- {
		w = w * 2 % 11
		sum += int(d17[i]-'0') * w
	}
	return "10X98765432"[sum%11]
}

// cardLogit is the true model behind has_card: affluence (seen by the bank
// through income and by the tax partner), shopping propensity (seen by the
// e-commerce partner) and payment risk (seen by the utility) all matter.
func cardLogit(p *person) float64 {
	return -0.9 + 0.8*p.aff + 0.9*p.shop - 0.6*p.risk + 0.02*float64(p.age-40)
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
