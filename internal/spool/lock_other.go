//go:build !unix

package spool

import (
	"fmt"
	"os"
	"path/filepath"
)

const lockFile = "lock"

// lockDir only creates the lock file where advisory locks are not
// available: one process per spool directory is then up to the user.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock spool directory: %w", err)
	}
	return f, nil
}

func unlockDir(f *os.File) {
	if f != nil {
		f.Close()
	}
}
