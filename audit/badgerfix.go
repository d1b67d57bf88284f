package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RemoveEmptyLogFiles deletes zero-length Badger value-log (*.vlog) and
// memtable (*.mem) files from dir before it is opened.
//
// Why: a process killed while Badger creates its next log file can leave
// that file empty, and Badger (v4.9.x, dgraph-io/badger#2207) then refuses
// to open the directory ("Open existing file … Create a new file"). An
// empty file holds no entry — with SyncWrites every acknowledged write is in
// a file that was already created and written — so removing it loses
// nothing. Files with any content are never touched.
func RemoveEmptyLogFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: scan %s: %w", dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".vlog") || strings.HasSuffix(name, ".mem")) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() != 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("audit: remove empty %s: %w", name, err)
		}
	}
	return nil
}
