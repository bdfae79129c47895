//go:build linux

package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// mqueueFS returns a directory where the mqueue filesystem of this IPC
// namespace is mounted, and a release func to call when done with it.
// It uses a mount listed in /proc/self/mounts, or else mounts one on a
// temporary directory (temporary is then true), which needs root.
func mqueueFS() (dir string, release func(), temporary bool, err error) {
	if mounts, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for _, line := range strings.Split(string(mounts), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[2] == "mqueue" {
				return f[1], func() {}, false, nil
			}
		}
	}
	notMounted := errors.New("the mqueue filesystem is not mounted; mount it with: " + mountHint)
	tmp, err := os.MkdirTemp("", "chanmq-mqueue-")
	if err != nil {
		return "", nil, false, notMounted
	}
	if err := unix.Mount("mqueue", tmp, "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		_ = os.Remove(tmp)
		return "", nil, false, notMounted
	}
	return tmp, func() {
		_ = unix.Unmount(tmp, unix.MNT_DETACH)
		_ = os.Remove(filepath.Clean(tmp))
	}, true, nil
}

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
