package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tandem-dev/tandem/psi"
)

// PSI checkpoints (issue 3, "Resume"). With PSIConfig.StateDir set, each
// side keeps what it needs to continue an interrupted job from its last
// checkpointed chunk instead of from the start:
//
//   - both: key.seed, the 96 random bytes the job's blinding key is derived
//     from, so a resumed attempt blinds with the same key (the file is
//     0600 and the node deletes the state directory when the job ends);
//   - initiator: i_tags.rec and r_tags.rec, the (tag ‖ index) records of
//     every chunk received so far, and checkpoint.json, written after both
//     record files are fsynced, naming how many chunks and records of each
//     stream they hold;
//   - responder: r_elems.bin, its shuffled blinded elements in sending
//     order, and r_elems.done once the file is complete.
//
// A resumed initiator announces in its hello how many chunks of each stream
// it already holds; the responder re-blinds the initiator's elements from
// that chunk on and resends its own elements from that chunk on (read back
// from r_elems.bin, or recomputed if the file was not complete). Elements
// are deterministic given the key, the shuffle seed and the input, apart
// from the random fillers of empty slots, which never match anything, so
// the result is the same as an uninterrupted run's. In count mode the
// responder's shuffled tag order is not reproducible: an interrupted tag
// stream restarts from its first chunk.

// checkpointEvery is how many received chunks pass between checkpoints.
var checkpointEvery = 32

type psiResume struct {
	IChunks  uint64 `json:"i_chunks"`  // initiator chunks whose tags are held
	IRecords int64  `json:"i_records"` // elements in those chunks
	IDone    bool   `json:"i_done"`
	RChunks  uint64 `json:"r_chunks"` // responder chunks held
	RDone    bool   `json:"r_done"`
}

type initCheckpoint struct {
	psiResume
	Reveal   string `json:"reveal"`
	N        int64  `json:"n"`
	TagSize  int    `json:"tag_size"`
	Rows     int64  `json:"rows"`
	Slots    int    `json:"slots"`
	RRecords int64  `json:"r_records"`
}

// psiKey returns the job's blinding key: derived from dir/key.seed (made on
// first use) when dir is set, else fresh from rnd.
func psiKey(dir string, rnd io.Reader) (*psi.Key, error) {
	if dir == "" {
		return psi.GenerateKey(rnd)
	}
	path := filepath.Join(dir, "key.seed")
	seed, err := os.ReadFile(path)
	if err != nil || len(seed) != 96 {
		seed = make([]byte, 96)
		if _, err := io.ReadFull(rnd, seed); err != nil {
			return nil, err
		}
		if err := writeSynced(path, seed); err != nil {
			return nil, err
		}
	}
	defer clear(seed)
	return psi.GenerateKey(bytes.NewReader(seed))
}

// writeSynced writes b to path atomically and durably.
func writeSynced(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// initState is the initiator's record files and checkpoint.
type initState struct {
	dir       string // "" = no checkpoints (records still go to files)
	ck        initCheckpoint
	i, r      *os.File
	iw, rw    *bufio.Writer
	recSize   int
	sinceCkpt int
}

func loadInitCheckpoint(dir string) (initCheckpoint, bool) {
	var ck initCheckpoint
	if dir == "" {
		return ck, false
	}
	b, err := os.ReadFile(filepath.Join(dir, "checkpoint.json"))
	if err != nil || json.Unmarshal(b, &ck) != nil {
		return initCheckpoint{}, false
	}
	return ck, true
}

// openInitState opens the record files, truncated to what the checkpoint
// covers (nothing when starting afresh). Files live in dir, or in tmp when
// checkpointing is off.
func openInitState(dir, tmp string, ck initCheckpoint, recSize int) (*initState, error) {
	where := dir
	if where == "" {
		var err error
		if where, err = os.MkdirTemp(tmp, "psi-init-"); err != nil {
			return nil, err
		}
	}
	s := &initState{dir: dir, ck: ck, recSize: recSize}
	open := func(name string, records int64) (*os.File, error) {
		f, err := os.OpenFile(filepath.Join(where, name), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		if err := f.Truncate(records * int64(recSize)); err != nil {
			f.Close()
			return nil, err
		}
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	var err error
	if s.i, err = open("i_tags.rec", ck.IRecords); err != nil {
		return nil, err
	}
	if s.r, err = open("r_tags.rec", ck.RRecords); err != nil {
		s.i.Close()
		return nil, err
	}
	s.iw, s.rw = bufio.NewWriterSize(s.i, 1<<20), bufio.NewWriterSize(s.r, 1<<20)
	return s, nil
}

// chunk records that one more chunk of a stream is fully written, and
// checkpoints every checkpointEvery chunks.
func (s *initState) chunk(tags bool, records int, last bool) error {
	if tags {
		s.ck.IChunks++
		s.ck.IRecords += int64(records)
		s.ck.IDone = last
	} else {
		s.ck.RChunks++
		s.ck.RRecords += int64(records)
		s.ck.RDone = last
	}
	if s.sinceCkpt++; s.sinceCkpt >= checkpointEvery || last {
		return s.checkpoint()
	}
	return nil
}

func (s *initState) checkpoint() error {
	s.sinceCkpt = 0
	if err := s.iw.Flush(); err != nil {
		return err
	}
	if err := s.rw.Flush(); err != nil {
		return err
	}
	if s.dir == "" {
		return nil
	}
	if err := s.i.Sync(); err != nil {
		return err
	}
	if err := s.r.Sync(); err != nil {
		return err
	}
	b, _ := json.Marshal(s.ck)
	return writeSynced(filepath.Join(s.dir, "checkpoint.json"), b)
}

// feed adds every record of f to sorter.
func (s *initState) feed(f *os.File, sorter *psi.Sorter) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	rec := make([]byte, s.recSize)
	for {
		if _, err := io.ReadFull(br, rec); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("protocol: psi: read checkpointed records: %w", err)
		}
		if err := sorter.Add(rec); err != nil {
			return err
		}
	}
}

func (s *initState) close() {
	s.i.Close()
	s.r.Close()
	if s.dir == "" {
		os.RemoveAll(filepath.Dir(s.i.Name()))
	}
}

// respElems is the responder's persisted element stream.
type respElems struct {
	Count int64 `json:"count"`
}

func respElemsDone(dir string) (respElems, bool) {
	var d respElems
	if dir == "" {
		return d, false
	}
	b, err := os.ReadFile(filepath.Join(dir, "r_elems.done"))
	if err != nil || json.Unmarshal(b, &d) != nil {
		return respElems{}, false
	}
	return d, true
}
