//go:build linux

package main

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// ownerOf returns the uid and gid of a file.
func ownerOf(fi fs.FileInfo) (uid, gid uint32, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return st.Uid, st.Gid, true
}

// clearUmask sets the umask to 0, so that create's -mode is applied
// exactly, and returns a func that restores it.
func clearUmask() (restore func()) {
	old := unix.Umask(0)
	return func() { unix.Umask(old) }
}
