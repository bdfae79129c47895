//go:build linux

package mqueuefs

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Find returns a mount of this IPC namespace's mqueue filesystem: one
// listed in /proc/self/mounts whose device is this namespace's (see
// namespaceDev), or else a new one on a temporary directory (Temporary is
// then true), which needs root. The error says why neither is possible
// and what to do; it matches ErrNotMounted or ErrOtherNamespace.
func Find() (*Mount, error) {
	mounted := mqueueMounts()
	if len(mounted) == 0 {
		m, err := mountTemp()
		if err != nil {
			return nil, fmt.Errorf("%w; mount it with: %s", ErrNotMounted, Hint)
		}
		return m, nil
	}
	var tmp *Mount
	dev, err := namespaceDev(mounted)
	if err != nil {
		// A fresh mount is the mounting process's namespace's: its
		// device is the one to look for.
		var mountErr error
		if tmp, mountErr = mountTemp(); mountErr != nil {
			return nil, fmt.Errorf("%w: cannot tell whether the one at %s is this namespace's (%v), and mounting one to compare needs root (%v)",
				ErrOtherNamespace, mounted[0], err, mountErr)
		}
		if dev, err = deviceOf(tmp.Dir); err != nil {
			tmp.Release()
			return nil, fmt.Errorf("%w: reading the device of a fresh mount: %v", ErrOtherNamespace, err)
		}
	}
	for _, dir := range mounted {
		if d, err := deviceOf(dir); err == nil && d == dev {
			if tmp != nil {
				tmp.Release()
			}
			return &Mount{Dir: dir, release: func() {}}, nil
		}
	}
	if tmp == nil {
		if tmp, err = mountTemp(); err != nil {
			return nil, fmt.Errorf("%w: the one at %s is another's (this process has an IPC namespace of its own, as 'unshare --ipc' makes, and shares the mount table), and mounting this namespace's needs root (%v); as root, mount it in a mount namespace of its own: %s",
				ErrOtherNamespace, mounted[0], err, "unshare --mount, then mount -t mqueue none /dev/mqueue")
		}
	}
	tmp.Foreign = mounted[0]
	return tmp, nil
}

// mqueueMounts returns the directories where an mqueue filesystem is
// mounted, of any IPC namespace, in the order /proc/self/mounts lists
// them.
func mqueueMounts() []string {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	// The kernel writes a space, tab, newline or backslash in a path as
	// an octal escape.
	unescape := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	var dirs []string
	for line := range strings.Lines(string(mounts)) {
		if f := strings.Fields(line); len(f) >= 3 && f[2] == "mqueue" {
			dirs = append(dirs, unescape.Replace(f[1]))
		}
	}
	return dirs
}

// deviceOf returns the device number of the filesystem that dir shows.
func deviceOf(dir string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Dev), nil
}

// mountTemp mounts this IPC namespace's mqueue filesystem on a new
// temporary directory (the kernel gives a new mount the mounting
// process's namespace's filesystem). It needs root.
func mountTemp() (*Mount, error) {
	tmp, err := os.MkdirTemp("", "chanmq-mqueue-")
	if err != nil {
		return nil, err
	}
	if err := unix.Mount("mqueue", tmp, "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("mounting an mqueue filesystem: %w", err)
	}
	return &Mount{Dir: tmp, Temporary: true, release: func() {
		// Detach: a file still open below it must not keep it mounted.
		_ = unix.Unmount(tmp, unix.MNT_DETACH)
		_ = os.Remove(tmp)
	}}, nil
}
