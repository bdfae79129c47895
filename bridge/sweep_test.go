//go:build linux

package mqbridge_test

import (
	"os"
	"strings"
	"time"

	"github.com/chanmq/chanmq"
	"golang.org/x/sys/unix"
)

// sweepTestQueues removes queues named with testPrefix older than a
// quarter of an hour: a run that crashed or timed out skips its cleanups,
// queues outlive processes, and queues_max (256) is shared by the whole
// machine. It lists them through the mqueue filesystem (mounted on a
// temporary directory if need be) and does nothing when that is not
// allowed.
func sweepTestQueues() {
	dir, cleanup, ok := mqueueDir()
	if !ok {
		return
	}
	defer cleanup()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := strings.TrimPrefix(testPrefix, "/")
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 15*time.Minute {
			_ = chanmq.Unlink("/" + e.Name())
		}
	}
}

func mqueueDir() (dir string, cleanup func(), ok bool) {
	if mounts, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for _, line := range strings.Split(string(mounts), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[2] == "mqueue" {
				return f[1], func() {}, true
			}
		}
	}
	tmp, err := os.MkdirTemp("", "chanmq-bridge-mqueue-")
	if err != nil {
		return "", nil, false
	}
	if err := unix.Mount("none", tmp, "mqueue", 0, ""); err != nil {
		_ = os.Remove(tmp)
		return "", nil, false
	}
	return tmp, func() {
		_ = unix.Unmount(tmp, 0)
		_ = os.Remove(tmp)
	}, true
}
