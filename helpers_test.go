//go:build linux

package chanmq

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/mqueuefs"
)

// testPrefix starts the name of every queue the tests create, so that a
// run can sweep what a crashed run left behind (queues outlive processes,
// and queues_max is shared by the whole machine).
const testPrefix = "/chanmq-test-"

// newTestQueue creates a uniquely named small queue (4 messages of 128
// bytes unless opts say otherwise), closed and unlinked when t ends.
func newTestQueue(t testing.TB, opts ...OpenOption) *Queue {
	t.Helper()
	all := append([]OpenOption{MaxMessages(4), MessageSize(128)}, opts...)
	q, err := CreateTemp(testPrefix, all...)
	if err != nil {
		t.Fatalf("CreateTemp: %v", err)
	}
	t.Cleanup(func() {
		_ = q.Close()
		_ = Unlink(q.Name())
	})
	return q
}

// childEnv names the role a re-executed test binary plays.
const childEnv = "CHANMQ_TEST_CHILD"

// noSubprocessEnv, when set, says why this run cannot start child
// processes (CI sets it for the 386 run under qemu-i386, where the Go
// runtime cannot fork); cross-process tests then skip with that reason.
const noSubprocessEnv = "CHANMQ_TEST_NO_SUBPROCESS"

var (
	childMu    sync.Mutex
	childRoles = map[string]func() int{}
)

// registerChild makes role runnable in a re-executed test binary (see
// startChild). Call it from an init function; fn returns the exit code and
// reads its parameters from the environment.
func registerChild(role string, fn func() int) {
	childMu.Lock()
	defer childMu.Unlock()
	if _, dup := childRoles[role]; dup {
		panic("chanmq test: child role registered twice: " + role)
	}
	childRoles[role] = fn
}

func runChild(role string) int {
	childMu.Lock()
	fn := childRoles[role]
	childMu.Unlock()
	if fn == nil {
		fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
		return 2
	}
	return fn()
}

// skipWithoutSubprocesses skips t in a run that cannot start processes.
func skipWithoutSubprocesses(t testing.TB) {
	t.Helper()
	if why := os.Getenv(noSubprocessEnv); why != "" {
		t.Skip("cross-process test skipped: " + why)
	}
}

// childCommand returns a command that re-executes this test binary as the
// child role, with env ("KEY=value") added. Its stdout and stderr are
// collected in the returned buffers.
func childCommand(t testing.TB, role string, env ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	return childCommandFor(t, "", role, env...)
}

// childCommandFor is childCommand running the test binary at bin (a copy
// of it, say, that another user may execute); "" means os.Args[0]. The
// child runs through $CHANMQ_TEST_EXEC when that is set.
func childCommandFor(t testing.TB, bin, role string, env ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	skipWithoutSubprocesses(t)
	if bin == "" {
		bin = os.Args[0]
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+role), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	wrapExec(t, cmd)
	return cmd, &stdout, &stderr
}

// runChildRole runs the child role to completion and fails t if it fails.
// It returns the child's stdout.
func runChildRole(t testing.TB, role string, env ...string) string {
	t.Helper()
	cmd, stdout, stderr := childCommand(t, role, env...)
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %s: %v\nstdout:\n%s\nstderr:\n%s", role, err, stdout, stderr)
	}
	return stdout.String()
}

// sweepTestQueues removes queues named with testPrefix that are older than
// a quarter of an hour (left by crashed runs; a live run's queues are
// younger). It lists them through /dev/mqueue, or through an mqueue
// filesystem mounted on a temporary directory, and does nothing when
// neither is allowed.
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
			_ = Unlink("/" + e.Name())
		}
	}
}

// mqueueDir returns a directory where the mqueue filesystem of this IPC
// namespace is mounted, and a cleanup to call when done with it.
func mqueueDir() (dir string, cleanup func(), ok bool) {
	dir, cleanup, _, err := mqueuefs.Dir()
	return dir, cleanup, err == nil
}

// execWrapperEnv names a program that runs the test binary's children, as
// `go test -exec` runs the binary itself: set it to qemu-aarch64-static to
// run the cross-process tests of a GOARCH=arm64 binary on a host without
// binfmt_misc, where the kernel cannot exec the child directly.
const execWrapperEnv = "CHANMQ_TEST_EXEC"

// wrapExec makes cmd run through $CHANMQ_TEST_EXEC when set.
func wrapExec(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	w := os.Getenv(execWrapperEnv)
	if w == "" {
		return
	}
	path, err := exec.LookPath(w)
	if err != nil {
		t.Fatalf("%s=%s: %v", execWrapperEnv, w, err)
	}
	cmd.Args = append([]string{path, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = path
}

// asOptions converts Open options to another option kind that accepts them.
func asOptions[O Option](opts []OpenOption) []O {
	out := make([]O, len(opts))
	for i, o := range opts {
		out[i] = any(o).(O)
	}
	return out
}

// carriedMessages returns the messages that err carries with their bytes:
// those of an *UndeliveredError (Close, receive pumps) and of the
// *UnsentError of a Sender or MessageSender, wherever they are in err's
// tree; nil if none.
func carriedMessages(err error) []Message {
	var out []Message
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
			return
		case *UndeliveredError:
			out = append(out, e.Messages...)
		case *UnsentError[Message]:
			out = append(out, e.Values...)
		case *UnsentError[[]byte]:
			for _, v := range e.Values {
				out = append(out, Message{Data: v})
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}
