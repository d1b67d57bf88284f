package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"

	"github.com/tandem-dev/tandem/node/dataset"
)

// colCache keeps the numeric columns that jobs read from a registered
// dataset, parsed, in the node's data directory: one file per column and
// parse mode under colcache/<dataset digest>/. Why: a job at 1e6 rows
// otherwise parses the CSV again for every job (about 0.4 s a pass with
// encoding/csv, as long as the whole scoring protocol), and a training job
// does so for its features, its label and each categorical column. The
// digest is the registered file's, so a re-registered file gets fresh
// entries, and a file changed on disk without re-registration is read as
// it was when first cached, the version the digest names. Each entry
// carries its row count and a SHA-256 of its content: an entry that does
// not check out is read from the file again and rewritten. Entries hold
// the same values as the dataset file, with the same permissions (0600).
type colCache struct {
	dir  string // colcache/<digest>
	rows int64  // the registered profile's data rows
	log  *slog.Logger
}

// colCacheRoot is the directory of every dataset's column cache.
func (n *Node) colCacheRoot() string { return filepath.Join(n.cfg.path(n.cfg.DataDir), "colcache") }

func (n *Node) colCache(ds *datasetRecord) *colCache {
	return &colCache{dir: filepath.Join(n.colCacheRoot(), ds.Profile.Digest), rows: ds.Profile.Rows, log: n.log}
}

const colCacheMagic = "tandem colcache 1\n"

// columns reads names as dataset.Columns does (label: as
// dataset.LabelColumn, boolean-ish cells), from the cache where it can and
// in one pass over the file for the rest, which it then caches.
func (c *colCache) columns(ctx context.Context, spec dataset.Spec, names []string, label bool) ([][]float64, [][]bool, error) {
	if c == nil {
		return readColumns(ctx, spec, names, label)
	}
	vals, pres := make([][]float64, len(names)), make([][]bool, len(names))
	var miss []string
	var at []int
	for k, name := range names {
		if v, p, ok := c.read(name, label); ok {
			vals[k], pres[k] = v, p
			continue
		}
		miss, at = append(miss, name), append(at, k)
	}
	if len(miss) == 0 {
		return vals, pres, nil
	}
	mv, mp, err := readColumns(ctx, spec, miss, label)
	if err != nil {
		return nil, nil, err
	}
	for i, k := range at {
		vals[k], pres[k] = mv[i], mp[i]
		if err := c.write(miss[i], label, mv[i], mp[i]); err != nil {
			c.log.WarnContext(ctx, "column cache: not written", "error", err.Error()) // the job goes on without it
		}
	}
	return vals, pres, nil
}

func readColumns(ctx context.Context, spec dataset.Spec, names []string, label bool) ([][]float64, [][]bool, error) {
	if !label {
		return dataset.Columns(ctx, spec, names)
	}
	vals, pres := make([][]float64, len(names)), make([][]bool, len(names))
	for k, name := range names {
		v, p, err := dataset.LabelColumn(ctx, spec, name)
		if err != nil {
			return nil, nil, err
		}
		vals[k], pres[k] = v, p
	}
	return vals, pres, nil
}

// path names an entry by a hash of the column name and the parse mode (a
// column name may hold any character).
func (c *colCache) path(name string, label bool) string {
	mode := "value"
	if label {
		mode = "label"
	}
	h := sha256.Sum256([]byte(mode + "\x00" + name))
	return filepath.Join(c.dir, hex.EncodeToString(h[:16]))
}

// An entry: magic, rows (uint64), rows float64 values, rows presence
// bytes, then the SHA-256 of all that; little-endian.
func (c *colCache) read(name string, label bool) ([]float64, []bool, bool) {
	b, err := os.ReadFile(c.path(name, label))
	if err != nil {
		return nil, nil, false
	}
	n := int(c.rows)
	want := len(colCacheMagic) + 8 + 9*n + sha256.Size
	if len(b) != want || !bytes.HasPrefix(b, []byte(colCacheMagic)) {
		return nil, nil, false
	}
	body, sum := b[:want-sha256.Size], b[want-sha256.Size:]
	if s := sha256.Sum256(body); !bytes.Equal(s[:], sum) {
		return nil, nil, false
	}
	b = b[len(colCacheMagic):]
	if binary.LittleEndian.Uint64(b) != uint64(n) {
		return nil, nil, false
	}
	b = b[8:]
	vals, pres := make([]float64, n), make([]bool, n)
	for i := range vals {
		vals[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	for i, x := range b[8*n : 9*n] {
		pres[i] = x == 1
	}
	return vals, pres, true
}

func (c *colCache) write(name string, label bool, vals []float64, pres []bool) error {
	if int64(len(vals)) != c.rows || len(pres) != len(vals) {
		return fmt.Errorf("column of %d rows for a dataset of %d", len(vals), c.rows)
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	n := len(vals)
	b := make([]byte, 0, len(colCacheMagic)+8+9*n+sha256.Size)
	b = append(b, colCacheMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(n))
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	for _, p := range pres {
		x := byte(0)
		if p {
			x = 1
		}
		b = append(b, x)
	}
	sum := sha256.Sum256(b)
	b = append(b, sum[:]...)
	path := c.path(name, label)
	tmp, err := os.CreateTemp(c.dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path) // two jobs caching the same column write the same bytes
}

// dropColCache removes a digest's entries (its dataset was registered
// again with other content).
func (n *Node) dropColCache(digest string) error {
	if digest == "" || filepath.Base(digest) != digest {
		return errors.New("node: column cache: bad digest")
	}
	return os.RemoveAll(filepath.Join(n.colCacheRoot(), digest))
}
