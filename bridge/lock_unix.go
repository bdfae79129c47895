//go:build unix

package mqbridge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockJournal takes an exclusive lock on path+".lock" for as long as the
// returned file stays open: two bridges on one journal would republish
// each other's messages and lose track of acknowledgements. The kernel
// drops the lock when the process dies, SIGKILL included.
func lockJournal(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: another running bridge holds it: give each bridge its own journal", ErrJournalLocked)
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	return f, nil
}
