//go:build linux

package chanmq

import (
	"context"
	"encoding/json"
	"errors"
	"io"
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

// copyTestBinaryWorldExec copies the test binary into a fresh 0755 directory, so
// that a child running as another user can execute it (go test builds into
// a 0700 directory).
func copyTestBinaryWorldExec(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "chanmq-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "chanmq.test")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// childProcSpec says how to run a child role in another context than ours.
type childProcSpec struct {
	uid        int    // run as this uid and gid (0: as we are)
	bin        string // the binary to run (default os.Args[0])
	cloneflags uintptr
}

// runChildAs runs role as spec says and returns the JSON lines it printed,
// decoded. It skips t when the kernel or our privileges cannot start such
// a child.
func runChildAs(t *testing.T, spec childProcSpec, role string, env ...string) []childReport {
	t.Helper()
	cmd, stdout, stderr := childCommandFor(t, spec.bin, role, env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: spec.cloneflags}
	if spec.uid != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(spec.uid), Gid: uint32(spec.uid), Groups: []uint32{}}
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start child %s as uid %d with clone flags %#x: %v", role, spec.uid, spec.cloneflags, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child %s: %v\nstdout:\n%s\nstderr:\n%s", role, err, stdout, stderr)
	}
	var reports []childReport
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var r childReport
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("child %s printed %q: %v\nstderr:\n%s", role, line, err, stderr)
		}
		reports = append(reports, r)
	}
	return reports
}

// childReport is one outcome a child prints as a JSON line.
type childReport struct {
	Case    string `json:"case"`
	Err     string `json:"err,omitempty"` // error text, "" for success
	Limit   bool   `json:"limit,omitempty"`
	Perm    bool   `json:"perm,omitempty"`
	Value   int    `json:"value,omitempty"` // a figure the case needs (a limit's value, a count)
	Skipped string `json:"skipped,omitempty"`
}

// report prints r as a JSON line on stdout (in a child).
func printChildReport(r childReport) {
	b, _ := json.Marshal(r)
	os.Stdout.Write(append(b, '\n'))
}

// printChildErr prints the outcome of case c with err.
func printChildErr(c string, err error, value int) {
	r := childReport{Case: c, Value: value}
	if err != nil {
		r.Err = err.Error()
		r.Limit = errors.Is(err, ErrLimit)
		r.Perm = errors.Is(err, fs.ErrPermission)
	}
	printChildReport(r)
}

func reportsByCase(reports []childReport) map[string]childReport {
	m := map[string]childReport{}
	for _, r := range reports {
		m[r.Case] = r
	}
	return m
}

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
		case r.Case == "unlink" && !strings.Contains(r.Err, "only the queue's owner"):
			t.Errorf("unlink as nobody: error does not say only the owner may unlink: %s", r.Err)
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
