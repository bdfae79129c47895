//go:build linux

package chanmq

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// This file proves the access-control promises: every queue the library
// creates by default is 0600, the umask applies as it does for files, and a
// queue created 0600 is refused to another user with an error that says
// what to do. Other users are played by a copy of the test binary run as
// nobody (uid 65534).

const nobodyID = 65534

func init() {
	registerChild("sec-create-umask", childCreateWithUmask)
	registerChild("sec-other-user", childOpenAsOtherUser)
}

// childCreateWithUmask sets the umask and creates CHANMQ_T_NAME with the
// mode CHANMQ_T_PERM (both octal). umask is process-wide, so this runs in
// a child rather than in a test.
func childCreateWithUmask() int {
	mask, _ := strconv.ParseUint(os.Getenv("CHANMQ_T_UMASK"), 8, 32)
	perm, _ := strconv.ParseUint(os.Getenv("CHANMQ_T_PERM"), 8, 32)
	syscall.Umask(int(mask))
	q, err := Open(os.Getenv("CHANMQ_T_NAME"), Create(fs.FileMode(perm)), Exclusive(), MaxMessages(1), MessageSize(16))
	if err == nil {
		err = q.Close()
	}
	printChildErr("create", err, 0)
	return 0
}

// childOpenAsOtherUser tries, as whatever user it runs as, every way of
// getting at CHANMQ_T_NAME.
func childOpenAsOtherUser() int {
	name := os.Getenv("CHANMQ_T_NAME")
	try := func(c string, opts ...OpenOption) {
		q, err := Open(name, opts...)
		if err == nil {
			_ = q.Close()
		}
		printChildErr(c, err, os.Getuid())
	}
	try("read-write")
	try("read-only", ReadOnly())
	try("write-only", WriteOnly())
	try("create", Create(0o600))
	_, err := OpenReceiver(alreadyCanceledContext(), name)
	printChildErr("open-receiver", err, os.Getuid())
	printChildErr("unlink", Unlink(name), os.Getuid())
	return 0
}

// queueMode returns the permission bits of the queue called name, read
// through an mqueue filesystem; it skips t when none can be mounted.
func queueMode(t *testing.T, name string) fs.FileMode {
	t.Helper()
	dir, cleanup, ok := mqueueDir()
	if !ok {
		t.Skip("no mqueue filesystem is mounted and mounting one is not allowed: cannot read queue modes")
	}
	defer cleanup()
	info, err := os.Stat(filepath.Join(dir, strings.TrimPrefix(name, "/")))
	if err != nil {
		t.Fatalf("stat queue %s: %v", name, err)
	}
	return info.Mode().Perm()
}

func TestDefaultModesAre0600(t *testing.T) {
	t.Parallel()
	// Our umask can only take bits away from 0600, so every case below
	// must read back exactly 0600 whatever the umask.
	cases := []struct {
		name string
		open func(t *testing.T) string
	}{
		{"CreateTemp default", func(t *testing.T) string {
			return newTestQueue(t).Name()
		}},
		{"Create(0o600)", func(t *testing.T) string {
			name := newTestQueue(t).Name() + "-explicit"
			q, err := Open(name, Create(0o600), MaxMessages(1), MessageSize(16))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = q.Close(); _ = Unlink(name) })
			return name
		}},
		{"OpenSender with Create(0o600)", func(t *testing.T) string {
			name := newTestQueue(t).Name() + "-sender"
			s, err := OpenSender(t.Context(), name, Create(0o600), MaxMessages(1), MessageSize(16))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { close(s.C); _ = s.Wait(); _ = Unlink(name) })
			return name
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			name := c.open(t)
			if got := queueMode(t, name); got != 0o600 {
				t.Errorf("queue %s has mode %#o, want 0600", name, got)
			}
		})
	}
}

// TestCreateModeIsMaskedByUmask documents that Create(perm) behaves like
// os.OpenFile: the process umask clears bits, so Create(0o666) under the
// usual umask 022 gives 0644, readable by every user.
func TestCreateModeIsMaskedByUmask(t *testing.T) {
	t.Parallel()
	cases := []struct {
		umask, perm, want fs.FileMode
	}{
		{0o022, 0o666, 0o644},
		{0o077, 0o666, 0o600},
		{0o000, 0o666, 0o666},
		{0o022, 0o600, 0o600},
	}
	for _, c := range cases {
		t.Run(strconv.FormatUint(uint64(c.umask), 8)+"-"+strconv.FormatUint(uint64(c.perm), 8), func(t *testing.T) {
			t.Parallel()
			name := newTestQueue(t).Name() + "-umask"
			t.Cleanup(func() { _ = Unlink(name) })
			r := reportsByCase(runChildAs(t, childProcSpec{}, "sec-create-umask",
				"CHANMQ_T_NAME="+name,
				"CHANMQ_T_UMASK="+strconv.FormatUint(uint64(c.umask), 8),
				"CHANMQ_T_PERM="+strconv.FormatUint(uint64(c.perm), 8)))["create"]
			if r.Err != "" {
				t.Fatalf("child could not create %s: %s", name, r.Err)
			}
			if got := queueMode(t, name); got != c.want {
				t.Errorf("umask %#o, Create(%#o): mode %#o, want %#o", c.umask, c.perm, got, c.want)
			}
		})
	}
}

// TestQueueCreated0600IsRefusedToOtherUser runs a child as nobody against
// a queue root created with the default mode: every way in is refused with
// fs.ErrPermission and a sentence saying what to do.
func TestQueueCreated0600IsRefusedToOtherUser(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	if err := q.Send(t.Context(), []byte("secret"), 1); err != nil {
		t.Fatal(err)
	}
	bin := copyTestBinaryWorldExec(t)
	reports := runChildAs(t, childProcSpec{uid: nobodyID, bin: bin}, "sec-other-user", "CHANMQ_T_NAME="+q.Name())
	if len(reports) == 0 {
		t.Fatal("child reported nothing")
	}
	for _, r := range reports {
		if r.Value != nobodyID {
			t.Fatalf("child ran as uid %d, want %d", r.Value, nobodyID)
		}
		switch {
		case r.Err == "":
			t.Errorf("%s as nobody succeeded on a 0600 queue of root", r.Case)
		case !r.Perm:
			t.Errorf("%s as nobody: error does not match fs.ErrPermission: %s", r.Case, r.Err)
		case !strings.Contains(r.Err, "permission denied") || !strings.Contains(r.Err, "ask its owner"):
			t.Errorf("%s as nobody: error does not say what happened and what to do: %s", r.Case, r.Err)
		case r.Case == "unlink" && (!strings.Contains(r.Err, "only the queue's owner") || !strings.Contains(r.Err, "whatever the queue's mode")):
			t.Errorf("unlink as nobody: error does not say only the owner may remove it, whatever its mode: %s", r.Err)
		case r.Case != "unlink" && !strings.Contains(r.Err, "open it this way"):
			t.Errorf("%s as nobody: error does not say the mode forbids this open: %s", r.Case, r.Err)
		default:
			t.Logf("%s: %s", r.Case, r.Err)
		}
	}
	// The queue and its message are untouched.
	if got := q.Len(); got != 1 {
		t.Errorf("queue holds %d messages after the refused attempts, want 1", got)
	}
}

// TestQueueCreated0644IsReadOnlyToOtherUser shows the umask-022 mode is
// readable by everyone: nobody can receive (and so steal messages), but
// not send.
func TestQueueCreated0644IsReadOnlyToOtherUser(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, Create(0o644))
	if got, ok := queueModeIfMounted(q.Name()); ok && got != 0o644 {
		t.Fatalf("mode %#o, want 0644", got)
	}
	bin := copyTestBinaryWorldExec(t)
	m := reportsByCase(runChildAs(t, childProcSpec{uid: nobodyID, bin: bin}, "sec-other-user", "CHANMQ_T_NAME="+q.Name()))
	if r := m["read-only"]; r.Err != "" {
		t.Errorf("ReadOnly open of a 0644 queue as nobody failed: %s", r.Err)
	}
	for _, c := range []string{"read-write", "write-only", "unlink"} {
		if r := m[c]; !r.Perm {
			t.Errorf("%s of a 0644 queue of root as nobody: got %q, want permission denied", c, r.Err)
		}
	}
}

// queueModeIfMounted is queueMode without a test; ok is false when it
// cannot tell.
func queueModeIfMounted(name string) (mode fs.FileMode, ok bool) {
	dir, cleanup, ok := mqueueDir()
	if !ok {
		return 0, false
	}
	defer cleanup()
	info, err := os.Stat(filepath.Join(dir, strings.TrimPrefix(name, "/")))
	if err != nil {
		return 0, false
	}
	return info.Mode().Perm(), true
}

// alreadyCanceledContext returns a context that is already done.
func alreadyCanceledContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
