package audit

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"
)

// Kind is the type of an audit entry. Known kinds are listed as constants;
// other kinds are accepted if they match [a-z0-9_]{1,64} so that newer nodes
// can log kinds older verifiers do not know.
type Kind string

// Known entry kinds.
const (
	KindNodeStart         Kind = "node_start"
	KindNodeStop          Kind = "node_stop"
	KindConfigChange      Kind = "config_change"
	KindKeyCreated        Kind = "key_created"
	KindPeerPinned        Kind = "peer_pinned"
	KindDatasetRegistered Kind = "dataset_registered"
	KindAgreementProposed Kind = "agreement_proposed"
	KindAgreementAccepted Kind = "agreement_accepted"
	KindAgreementRejected Kind = "agreement_rejected"
	KindAgreementExpired  Kind = "agreement_expired"
	KindJobProposed       Kind = "job_proposed"
	KindJobAccepted       Kind = "job_accepted"
	KindJobRejected       Kind = "job_rejected"
	KindJobStarted        Kind = "job_started"
	KindJobResumed        Kind = "job_resumed"
	KindJobFinished       Kind = "job_finished"
	KindRelease           Kind = "release"
	KindExport            Kind = "export"
	KindHandoff           Kind = "handoff"
	KindReceipt           Kind = "receipt"
	KindCheckpointWitness Kind = "checkpoint_witnessed"
	KindAuditExport       Kind = "audit_export"
	KindOperatorAction    Kind = "operator_action"
)

func (k Kind) valid() bool {
	if len(k) == 0 || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ActorKind says who caused an entry.
type ActorKind uint8

// Actor kinds. The zero value is invalid.
const (
	ActorOperator ActorKind = 1 // a human operator (Role, Name = token id)
	ActorPeer     ActorKind = 2 // the peer node (Name = peer key name)
	ActorNode     ActorKind = 3 // this node acting on its own
)

// String returns "operator", "peer" or "node".
func (k ActorKind) String() string {
	switch k {
	case ActorOperator:
		return "operator"
	case ActorPeer:
		return "peer"
	case ActorNode:
		return "node"
	}
	return fmt.Sprintf("ActorKind(%d)", uint8(k))
}

// Actor identifies who caused an entry.
type Actor struct {
	Kind ActorKind
	Role string // operator role, e.g. "admin", "auditor"; empty for nodes
	Name string // operator name or token id, or peer/node key name
}

// Release describes what left the node.
type Release struct {
	To      string   // recipient (peer name or export destination)
	Rows    uint64   // number of rows released
	Values  uint64   // number of scalar values released
	Digest  string   // digest of the released bytes
	Checks  []string // policy checks applied, e.g. "min_cell_k=10"
	Epsilon float64  // DP epsilon spent; finite and >= 0
}

// Entry is one audit log record. Its canonical encoding (MarshalBinary) is
// what the store keeps, hashes into the Merkle tree and chains with PrevHash.
type Entry struct {
	Seq            uint64    // assigned by Store.Append
	Time           time.Time // UTC, nanosecond precision; set by Append if zero
	Actor          Actor
	Kind           Kind
	JobID          string
	AgreementID    string
	Peer           string
	DatasetDigests []string
	ParamsDigest   string
	Release        *Release          // nil unless something left the node
	Detail         map[string]string // small free-form fields; keys sorted in the encoding
	PrevHash       [32]byte          // RFC 6962 leaf hash of the previous entry; zero for Seq 0
}

// entryMagic domain-separates entry encodings from every other byte string
// the node hashes or signs. The trailing byte is the format version.
const entryMagic = "tandem/audit/entry\x00\x01"

// Encoding limits; anything larger is rejected on both encode and parse.
const (
	maxEntrySize = 1 << 20
	maxStr       = 64 << 10
	maxList      = 4096
)

type encoder struct {
	b   []byte
	err error
}

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) str(s string) {
	if len(s) > maxStr || !utf8.ValidString(s) {
		e.err = fmt.Errorf("%w: string field too long or not UTF-8", ErrInvalidEntry)
	}
	e.b = binary.BigEndian.AppendUint32(e.b, uint32(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) strs(ss []string) {
	if len(ss) > maxList {
		e.err = fmt.Errorf("%w: list too long", ErrInvalidEntry)
	}
	e.b = binary.BigEndian.AppendUint32(e.b, uint32(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

// MarshalBinary returns the canonical encoding: the domain-separation magic
// "tandem/audit/entry\x00" and version byte 0x01, then every field in
// declaration order, integers as fixed-width big-endian, strings and lists
// as a uint32 length followed by the data, Detail sorted by key, Release
// behind a 0/1 presence byte. It returns an error wrapping [ErrInvalidEntry]
// for unencodable entries. Safe for concurrent use if e is not mutated.
func (e *Entry) MarshalBinary() ([]byte, error) {
	return e.appendBinary(make([]byte, 0, 256))
}

func (e *Entry) appendBinary(buf []byte) ([]byte, error) {
	if !e.Kind.valid() {
		return nil, fmt.Errorf("%w: kind %q", ErrInvalidEntry, e.Kind)
	}
	if e.Actor.Kind < ActorOperator || e.Actor.Kind > ActorNode {
		return nil, fmt.Errorf("%w: actor kind %d", ErrInvalidEntry, e.Actor.Kind)
	}
	if ns := e.Time.UnixNano(); e.Time.IsZero() || ns == 0 || !time.Unix(0, ns).Equal(e.Time) {
		return nil, fmt.Errorf("%w: time zero or outside the int64 nanosecond range", ErrInvalidEntry)
	}
	if len(e.Detail) > maxList {
		return nil, fmt.Errorf("%w: detail too long", ErrInvalidEntry)
	}
	enc := encoder{b: append(buf, entryMagic...)}
	enc.u64(e.Seq)
	enc.u64(uint64(e.Time.UnixNano()))
	enc.u8(uint8(e.Actor.Kind))
	enc.str(e.Actor.Role)
	enc.str(e.Actor.Name)
	enc.str(string(e.Kind))
	enc.str(e.JobID)
	enc.str(e.AgreementID)
	enc.str(e.Peer)
	enc.strs(e.DatasetDigests)
	enc.str(e.ParamsDigest)
	if r := e.Release; r == nil {
		enc.u8(0)
	} else {
		eps := r.Epsilon
		if math.IsNaN(eps) || math.IsInf(eps, 0) || eps < 0 {
			return nil, fmt.Errorf("%w: epsilon must be finite and >= 0", ErrInvalidEntry)
		}
		if eps == 0 {
			eps = 0 // normalise -0
		}
		enc.u8(1)
		enc.str(r.To)
		enc.u64(r.Rows)
		enc.u64(r.Values)
		enc.str(r.Digest)
		enc.strs(r.Checks)
		enc.u64(math.Float64bits(eps))
	}
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	enc.b = binary.BigEndian.AppendUint32(enc.b, uint32(len(keys)))
	for _, k := range keys {
		enc.str(k)
		enc.str(e.Detail[k])
	}
	enc.b = append(enc.b, e.PrevHash[:]...)
	if enc.err != nil {
		return nil, enc.err
	}
	if len(enc.b)-len(buf) > maxEntrySize {
		return nil, fmt.Errorf("%w: entry too large", ErrInvalidEntry)
	}
	return enc.b, nil
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) take(n int) []byte {
	if d.bad || n < 0 || n > len(d.b) {
		d.bad = true
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
func (d *decoder) u8() uint8 {
	v := d.take(1)
	if v == nil {
		return 0
	}
	return v[0]
}
func (d *decoder) u32() uint32 {
	v := d.take(4)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}
func (d *decoder) u64() uint64 {
	v := d.take(8)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}
func (d *decoder) str() string {
	n := d.u32()
	if n > maxStr {
		d.bad = true
		return ""
	}
	v := d.take(int(n))
	if !utf8.Valid(v) {
		d.bad = true
	}
	return string(v)
}
func (d *decoder) strs() []string {
	n := d.u32()
	if n > maxList || int(n) > len(d.b)/4 {
		d.bad = true
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i := uint32(0); i < n && !d.bad; i++ {
		out = append(out, d.str())
	}
	return out
}

// ParseEntry decodes untrusted bytes. It accepts exactly the bytes that
// MarshalBinary produces for some Entry: unknown versions, trailing bytes,
// invalid UTF-8, unsorted or duplicate Detail keys, a negative, NaN or -0
// epsilon, empty-but-present lists where nil is canonical, and out-of-range
// enums are all rejected with an error wrapping [ErrMalformed]. Safe for
// concurrent use.
func ParseEntry(b []byte) (*Entry, error) {
	if len(b) > maxEntrySize || len(b) < len(entryMagic) || string(b[:len(entryMagic)]) != entryMagic {
		return nil, fmt.Errorf("%w: entry header", ErrMalformed)
	}
	d := decoder{b: b[len(entryMagic):]}
	e := &Entry{}
	e.Seq = d.u64()
	ns := int64(d.u64())
	e.Time = time.Unix(0, ns).UTC()
	e.Actor.Kind = ActorKind(d.u8())
	e.Actor.Role = d.str()
	e.Actor.Name = d.str()
	e.Kind = Kind(d.str())
	e.JobID = d.str()
	e.AgreementID = d.str()
	e.Peer = d.str()
	e.DatasetDigests = d.strs()
	e.ParamsDigest = d.str()
	switch d.u8() {
	case 0:
	case 1:
		r := &Release{}
		r.To = d.str()
		r.Rows = d.u64()
		r.Values = d.u64()
		r.Digest = d.str()
		r.Checks = d.strs()
		bitsEps := d.u64()
		r.Epsilon = math.Float64frombits(bitsEps)
		if math.IsNaN(r.Epsilon) || math.IsInf(r.Epsilon, 0) || r.Epsilon < 0 || bitsEps == 1<<63 {
			d.bad = true
		}
		e.Release = r
	default:
		d.bad = true
	}
	n := d.u32()
	if n > maxList || int(n) > len(d.b)/8 {
		d.bad = true
	}
	prev := ""
	for i := uint32(0); i < n && !d.bad; i++ {
		k, v := d.str(), d.str()
		if i > 0 && k <= prev {
			d.bad = true
		}
		prev = k
		if e.Detail == nil {
			e.Detail = make(map[string]string, n)
		}
		e.Detail[k] = v
	}
	copy(e.PrevHash[:], d.take(32))
	if d.bad || len(d.b) != 0 || ns == 0 || !e.Kind.valid() || e.Actor.Kind < ActorOperator || e.Actor.Kind > ActorNode {
		return nil, fmt.Errorf("%w: entry body", ErrMalformed)
	}
	return e, nil
}
