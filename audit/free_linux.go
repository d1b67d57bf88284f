//go:build linux

package audit

import (
	"fmt"
	"syscall"
)

// FreeBytes returns the bytes available to an unprivileged user on the file
// system holding dir (statfs f_bavail × f_bsize), so the node can refuse new
// jobs below a watermark. Errors: the statfs error, wrapped. Safe for
// concurrent use.
func FreeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("audit: statfs: %w", err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}
