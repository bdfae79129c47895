//go:build linux

package mqbridge

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapJournal reserves size bytes of disk for f (fallocate: the blocks are
// allocated now, so a store into the mapping can never find the disk
// full, which would be a SIGBUS) and maps them shared and writable. A
// store into a shared file mapping lands in the page cache, the same
// pages write(2) would fill: once it is done, a crash of the process
// cannot undo it.
func mapJournal(f *os.File, size int64) ([]byte, error) {
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		return nil, err
	}
	return unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

func unmapJournal(m []byte) error { return unix.Munmap(m) }
