//go:build linux

package chanmq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Child processes: the test binary re-executed to play a role (see
// registerChild), as os/signal's tests do, and ways to run it as another
// user or in a new IPC namespace.

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
// childCommand). Call it from an init function; fn returns the exit code and
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

// startCmd starts cmd and arranges for it to be killed and reaped if the test
// ends first. wait returns its exit error once.
func startCmd(t *testing.T, cmd *exec.Cmd) (wait func() error) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var result error
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return func() error {
		if !waited {
			waited = true
			result = <-done
		}
		return result
	}
}

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

// canCloneIPCNamespace reports whether this process may create IPC namespaces.
func canCloneIPCNamespace() bool {
	if os.Getenv(noSubprocessEnv) != "" {
		return false
	}
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWIPC}
	return cmd.Run() == nil
}
