//go:build linux

package mqueuefs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestProbesAgreeWithTheMount checks the two ways namespaceDev gets a
// queue descriptor of this namespace (creating a probe queue, opening a
// listed one) against the device of the mount Find returns.
func TestProbesAgreeWithTheMount(t *testing.T) {
	t.Parallel()
	m, err := Find()
	if err != nil {
		t.Skipf("mqueue filesystem not available here: %v", err)
	}
	defer m.Release()
	want, err := deviceOf(m.Dir)
	if err != nil {
		t.Fatal(err)
	}

	// A queue only this test knows, so that openListed finds at least
	// one it may open.
	name := fmt.Sprintf("/chanmq-test-mqueuefs-%d-%016x", os.Getpid(), rand.Uint64())
	attr := [8]uintptr{1: 1, 2: 1}
	fd, err := mqOpen(name, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL, 0o600, &attr)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	t.Cleanup(func() { _ = mqUnlink(name) })

	for what, open := range map[string]func() (int, error){
		"createProbe": createProbe,
		"openListed":  func() (int, error) { return openListed([]string{m.Dir}) },
	} {
		fd, err := open()
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil || uint64(st.Dev) != want {
			t.Errorf("%s: descriptor's device %#x (%v), mount %s has %#x", what, st.Dev, err, m.Dir, want)
		}
	}
	if got, err := namespaceDev(nil); err != nil || got != want {
		t.Errorf("namespaceDev: %#x, %v; want %#x", got, err, want)
	}
}
