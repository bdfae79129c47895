//go:build linux

package mqueuefs

import (
	"errors"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Dir returns a directory where the mqueue filesystem of this IPC
// namespace is mounted, and a release func to call when done with it. It
// uses a mount listed in /proc/self/mounts, or else mounts one on a
// temporary directory (temporary is then true, and release unmounts it),
// which needs root. The error says how to mount it.
func Dir() (dir string, release func(), temporary bool, err error) {
	if mounts, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for line := range strings.Lines(string(mounts)) {
			f := strings.Fields(line)
			if len(f) >= 3 && f[2] == "mqueue" {
				return f[1], func() {}, false, nil
			}
		}
	}
	notMounted := errors.New("the mqueue filesystem is not mounted; mount it with: " + Hint)
	tmp, err := os.MkdirTemp("", "chanmq-mqueue-")
	if err != nil {
		return "", nil, false, notMounted
	}
	if err := unix.Mount("mqueue", tmp, "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		_ = os.Remove(tmp)
		return "", nil, false, notMounted
	}
	return tmp, func() {
		// Detach: a file still open below it must not keep it mounted.
		_ = unix.Unmount(tmp, unix.MNT_DETACH)
		_ = os.Remove(tmp)
	}, true, nil
}
