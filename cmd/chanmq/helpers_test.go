//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chanmq/chanmq"
	"github.com/chanmq/chanmq/internal/testutil"
	"go.uber.org/goleak"
)

// These tests build the command once and run it as a user would: separate
// processes, pipes, signals and exit codes.

// testPrefix starts every queue name the tests use, so that leftovers of
// a crashed run can be swept.
const testPrefix = testutil.QueuePrefix + "cli-"

// bin is the path of the command built by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, remove := testutil.BuildCommands(".")
	bin = filepath.Join(dir, "chanmq")
	testutil.SweepQueues(testPrefix, chanmq.Unlink)
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { remove() }))
}

// queueName returns a fresh queue name, removed when t ends. The queue
// itself is not created.
func queueName(t *testing.T) string {
	t.Helper()
	return testutil.QueueName(t, testPrefix, chanmq.Unlink)
}

// newQueue creates a small queue with the command and returns its name.
func newQueue(t *testing.T, createArgs ...string) string {
	t.Helper()
	name := queueName(t)
	mustRun(t, nil, append([]string{"create", name}, createArgs...)...)
	return name
}

type result struct {
	stdout, stderr string
	code           int
}

// runCmd runs the command with stdin (nil: empty) and returns what it
// printed and its exit code. A command that hangs is killed after twice
// testutil.Patience so that the test fails instead of the whole run.
func runCmd(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	return runCmdAs(t, nil, stdin, args...)
}

// runCmdAs is runCmd with the process attributes attr (nil: those of the
// test), such as asNobody's.
func runCmdAs(t *testing.T, attr *syscall.SysProcAttr, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*testutil.Patience)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = attr
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || ctx.Err() != nil {
			t.Fatalf("chanmq %q: %v (stderr %q)", args, err, stderr.String())
		}
		code = ee.ExitCode()
	}
	return result{stdout.String(), stderr.String(), code}
}

// mustRun runs the command and fails t unless it exits 0 silently on
// stderr. It returns stdout.
func mustRun(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	r := runCmd(t, stdin, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("chanmq %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	return r.stdout
}

// wantFail checks that r is a failure with exit code code and one line on
// stderr that starts with "chanmq: " and contains each of hints.
func wantFail(t *testing.T, r result, code int, hints ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "chanmq: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr %q is not one line starting with \"chanmq: \"", r.stderr)
	}
	for _, h := range hints {
		if !strings.Contains(r.stderr, h) {
			t.Errorf("stderr %q does not contain %q", r.stderr, h)
		}
	}
}

// regexpLine reports whether some line of out has all of fields among
// its whitespace-separated fields.
func regexpLine(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		have := map[string]bool{}
		for _, f := range strings.Fields(line) {
			have[f] = true
		}
		all := true
		for _, f := range fields {
			all = all && have[f]
		}
		if all {
			return true
		}
	}
	return false
}

// startRecv starts a recv and returns a reader of its stdout.
func startRecv(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"recv"}, args...)...)
	out, stderr := testutil.StartPiped(t, cmd)
	return cmd, out, stderr
}

// startTo starts cmd with its standard output going to stdout, which it
// then closes (so that the child holds the only copy) and returns a
// buffer collecting cmd's standard error. finish waits for cmd to end.
func startTo(t *testing.T, cmd *exec.Cmd, stdout *os.File) *bytes.Buffer {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	err := cmd.Start()
	stdout.Close()
	if err != nil {
		t.Fatalf("starting %q: %v", cmd.Args, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &stderr
}

// finish waits for cmd, started by startTo, and returns its exit code and
// standard error. It kills a cmd that has not ended after
// testutil.Patience.
func finish(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer) result {
	t.Helper()
	hung := time.AfterFunc(testutil.Patience, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	if !hung.Stop() {
		t.Fatalf("%q did not end within %v; stderr %q", cmd.Args, testutil.Patience, stderr)
	}
	if err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Fatalf("%q: %v", cmd.Args, err)
	}
	return result{stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

// drainQueue takes every message left in the queue name and returns them
// in the order they come out, each as "priority:data".
func drainQueue(t *testing.T, name string) []string {
	t.Helper()
	q, err := chanmq.Open(name, chanmq.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	left := make([]string, q.Len()) // the test's own queue: no one else takes from it
	for i := range left {
		msg, prio, err := q.TryReceive()
		if err != nil {
			t.Fatal(err)
		}
		left[i] = fmt.Sprintf("%d:%s", prio, msg)
	}
	return left
}

// wantLeft checks that the queue name holds exactly want ("priority:data",
// in the order they come out), and empties it.
func wantLeft(t *testing.T, name string, want ...string) {
	t.Helper()
	if left := drainQueue(t, name); !slices.Equal(left, want) {
		t.Errorf("queue holds %d message(s) %.24q, want %d: %.24q", len(left), left, len(want), want)
	}
}

// signalPending reports whether sig is pending for process pid, for the
// process or one of its threads (the Sig/ShdPnd masks in
// /proc/PID/status and /proc/PID/task/*/status).
func signalPending(pid int, sig syscall.Signal) bool {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	files = append(files, fmt.Sprintf("/proc/%d/status", pid))
	for _, f := range files {
		status, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(status)) {
			k, v, _ := strings.Cut(line, ":")
			if k != "SigPnd" && k != "ShdPnd" {
				continue
			}
			var mask uint64
			if _, err := fmt.Sscanf(v, "%x", &mask); err == nil && mask&(1<<(sig-1)) != 0 {
				return true
			}
		}
	}
	return false
}

// nobody is the uid and gid of the unprivileged user some tests run the
// command as.
const nobody = 65534

// asNobody returns the process attributes that run a command as nobody,
// and lets nobody reach the built command, whose directory is private to
// root. (Running a copy instead risks ETXTBSY: a child forked by a
// parallel test may hold the copy's write descriptor until it execs.) It
// skips t unless the tests run as root.
func asNobody(t *testing.T) *syscall.SysProcAttr {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root, to run the command as another user")
	}
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
}

// scriptPrelude starts the shell scripts of inNewIPCNamespace. In them,
// $CHANMQ is the built command; "run NAME CMD ARGS..." runs a command and
// keeps its output and exit code for the test (see inNewIPCNamespace);
// "as_nobody CMD ARGS..." runs a command as nobody.
const scriptPrelude = `run() { n=$1; shift; "$@" >"$OUT/$n.out" 2>"$OUT/$n.err"; echo $? >"$OUT/$n.code"; }
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
`

// inNewIPCNamespace runs script, a shell script that begins with
// scriptPrelude, with args as $1..., in an IPC namespace of its own where
// the test's own namespace's mqueue filesystem is mounted (see
// testutil.InNewIPCNamespace). It returns what each "run NAME" of the
// script ran printed, and its exit code, by NAME. It skips t where
// namespaces cannot be made, and unless the tests run as root.
func inNewIPCNamespace(t *testing.T, script string, args ...string) (ran func(name string) result) {
	t.Helper()
	asNobody(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skipf("no setpriv(1), to run the command as nobody: %v", err)
	}
	out := t.TempDir()
	cmd := testutil.InNewIPCNamespace(t, append([]string{"sh", "-c", scriptPrelude + script, "sh"}, args...)...)
	cmd.Env = append(os.Environ(), "CHANMQ="+bin, "OUT="+out)
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("script in a new IPC namespace: %v\n%s", err, output)
	}
	return func(name string) result {
		t.Helper()
		read := func(ext string) string {
			b, err := os.ReadFile(filepath.Join(out, name+ext))
			if err != nil {
				t.Fatalf("the script did not run %q: %v", name, err)
			}
			return string(b)
		}
		r := result{stdout: read(".out"), stderr: read(".err")}
		if _, err := fmt.Sscan(read(".code"), &r.code); err != nil {
			t.Fatal(err)
		}
		return r
	}
}
