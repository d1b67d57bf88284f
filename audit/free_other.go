//go:build !linux

package audit

import "errors"

// FreeBytes is implemented on Linux only; elsewhere it returns an error.
func FreeBytes(dir string) (uint64, error) {
	return 0, errors.New("audit: FreeBytes is only implemented on linux")
}
