//go:build linux

package chanmq

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Descriptors across exec: a child inherits no queue descriptor unless it
// is passed on purpose.

func init() {
	registerChild("fault-fds", childListQueueFDs)
	registerChild("queue-check-fd", cpChildCheckFD)
}

// childListQueueFDs prints "fd N TARGET" for every descriptor of this
// process that is one of the queues named in CHANMQ_T_NAMES.
func childListQueueFDs() int {
	names := strings.Split(os.Getenv("CHANMQ_T_NAMES"), ",")
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && slices.Contains(names, target) {
			fmt.Printf("fd %s %s\n", e.Name(), target)
		}
	}
	return 0
}

// TestDescriptorsAreCloseOnExec runs a child while this process holds
// queue descriptors (from Open and from NewQueue): the child inherits none
// of them. A control run passes one on purpose to show the child would
// see it.
func TestDescriptorsAreCloseOnExec(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	f := os.NewFile(uintptr(dupCloexec(t, q.fd)), q.Name())
	defer f.Close()
	adopted, err := NewQueue(f)
	if err != nil {
		t.Fatal(err)
	}
	defer adopted.Close()
	for _, fd := range []int{q.fd, adopted.fd} {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			t.Fatal(err)
		}
		if flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("descriptor %d has no FD_CLOEXEC", fd)
		}
		if target, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); target != q.Name() {
			t.Fatalf("/proc/self/fd/%d is %q, want %q", fd, target, q.Name())
		}
	}

	cmd, stdout, stderr := childCommand(t, "fault-fds", "CHANMQ_T_NAMES="+q.Name())
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr)
	}
	if out := stdout.String(); out != "" {
		t.Errorf("a child exec'd while the queue was open (descriptors %d and %d) inherited:\n%s", q.fd, adopted.fd, out)
	}

	// Control: a descriptor passed on purpose is seen, so the check works.
	cmd, stdout, stderr = childCommand(t, "fault-fds", "CHANMQ_T_NAMES="+q.Name())
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Run(); err != nil {
		t.Fatalf("control child: %v\n%s", err, stderr)
	}
	if want := "fd 3 " + q.Name() + "\n"; stdout.String() != want {
		t.Errorf("control child printed %q, want %q", stdout, want)
	}
}

// dupCloexec duplicates fd. The copy is close-on-exec too: a descriptor
// without it would leak into the children of every parallel test.
func dupCloexec(t testing.TB, fd int) int {
	t.Helper()
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return nfd
}

// cpChildCheckFD reports what descriptor CHANMQ_QT_FD is in this process:
// "closed", or what /proc/self/fd says it points to.
func cpChildCheckFD() int {
	target, err := os.Readlink("/proc/self/fd/" + os.Getenv(cpEnvFD))
	switch {
	case errors.Is(err, os.ErrNotExist):
		fmt.Println("closed")
	case err != nil:
		return cpChildFail("readlink: %v", err)
	default:
		fmt.Println("open " + target)
	}
	return 0
}

func TestQueueDescriptorIsNotInheritedAcrossExec(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	adopted, err := NewQueue(cpOpenRawFile(t, q.Name()))
	if err != nil {
		t.Fatal(err)
	}
	defer adopted.Close()
	for _, tc := range []struct {
		label string
		q     *Queue
	}{{"Open", q}, {"NewQueue", adopted}} {
		t.Run(tc.label, func(t *testing.T) {
			fd := tc.q.fd
			// In this process the number is the queue, and close-on-exec.
			target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
			if err != nil || target != q.Name() {
				t.Fatalf("/proc/self/fd/%d = %q %v, want %q", fd, target, err, q.Name())
			}
			flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
			if err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Fatalf("F_GETFD on %d = %#x %v, want FD_CLOEXEC", fd, flags, err)
			}
			// In an exec'd child it is not: closed, or reused for something else.
			out := runChildRole(t, "queue-check-fd", cpEnvFD+"="+strconv.Itoa(fd))
			if out != "closed\n" && (!strings.HasPrefix(out, "open ") || strings.TrimSpace(strings.TrimPrefix(out, "open ")) == q.Name()) {
				t.Fatalf("child's descriptor %d: %q; the queue leaked across exec", fd, out)
			}
		})
	}
}
