//go:build linux

package main

import (
	"errors"
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

// dirDenied reports whether err is mq_unlink's EACCES: the mqueue
// directory denies this user write access (mq_unlink of another user's
// queue in the usual sticky 1777 directory fails with EPERM instead).
func dirDenied(err error) bool { return errors.Is(err, unix.EACCES) }
