// Package testutil holds what the tests of several packages of this module
// share: how long to wait for something that should happen at once,
// polling for a state, names for test queues and the sweep of those a
// crashed run left behind, building commands once for TestMain, and
// running a command in an IPC namespace of its own.
//
// It does not import chanmq, so that chanmq's own tests may import it;
// callers pass chanmq.Unlink where a queue must be removed.
package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/mqueuefs"
)

// Patience bounds every wait for an event that should happen at once. It
// is generous because the machines the tests run on are small and shared:
// a passing test waits microseconds to milliseconds, and only a hang (the
// bug) ever reaches it. Waits that must outlast another's use a multiple.
const Patience = 30 * time.Second

// Eventually polls cond every millisecond until it holds, and reports
// false if it still does not after Patience. It is for states another
// goroutine or process reaches with no event to wait on.
func Eventually(cond func() bool) bool {
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// WaitFor is Eventually that fails t, saying what it waited for.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Eventually(cond) {
		t.Fatalf("gave up after %v waiting for %s", Patience, what)
	}
}

// QueuePrefix starts the name of every queue the tests of this module
// create, so that a run can sweep what a crashed run left behind (queues
// outlive processes, and fs.mqueue.queues_max is shared by the machine).
const QueuePrefix = "/chanmq-test-"

// QueueName returns an unused queue name that starts with prefix (which
// starts with QueuePrefix), and removes the queue with unlink when t ends.
// The queue itself is not created.
func QueueName(t testing.TB, prefix string, unlink func(name string) error) string {
	t.Helper()
	name := fmt.Sprintf("%s%d-%016x", prefix, os.Getpid(), rand.Uint64())
	t.Cleanup(func() { _ = unlink(name) })
	return name
}

// SweepQueues removes, with unlink, the queues whose names start with
// prefix and that are older than a quarter of an hour (left by crashed
// runs; a live run's queues are younger). It lists them through the mqueue
// filesystem and does nothing when that cannot be read.
func SweepQueues(prefix string, unlink func(name string) error) {
	dir, release, _, err := mqueuefs.Dir()
	if err != nil {
		return
	}
	defer release()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := "/" + e.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 15*time.Minute {
			_ = unlink(name)
		}
	}
}

// BuildCommands builds the packages (as `go build -o DIR/ pkgs...` in the
// current directory) into a new temporary directory and returns it, with
// a func that removes it. It is for TestMain: on failure it says why and
// exits the test binary.
func BuildCommands(pkgs ...string) (dir string, remove func()) {
	dir, err := os.MkdirTemp("", "chanmq-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building %s: %v\n", strings.Join(pkgs, " "), err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	return dir, func() { os.RemoveAll(dir) }
}

// StartPiped starts cmd with a pipe from its standard output (replacing
// any Stdout and Stderr it had), and kills and reaps it when t ends. It
// returns a reader of the standard output and the buffer that collects its
// standard error.
func StartPiped(t testing.TB, cmd *exec.Cmd) (*bufio.Reader, *bytes.Buffer) {
	t.Helper()
	cmd.Stdout = nil
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return bufio.NewReader(stdout), &stderr
}

// InNewIPCNamespace returns a command that runs argv in an IPC namespace
// of its own, where the mqueue filesystem of this process's namespace is
// mounted: what `unshare --ipc` gives on a system with /dev/mqueue
// mounted, a first mqueue mount that belongs to another namespace. The
// command mounts it on a temporary directory, in a mount namespace of its
// own (a copy of this one's, with private propagation), so that no other
// process sees the mount. It skips t where namespaces cannot be made (they
// need root and unshare(1)).
func InNewIPCNamespace(t testing.TB, argv ...string) *exec.Cmd {
	t.Helper()
	if out, err := exec.Command("unshare", "--mount", "--ipc", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make namespaces here: unshare --mount --ipc: %v %s", err, out)
	}
	// Readable by every user, as /dev/mqueue is (t.TempDir's parent is
	// not).
	dir, err := os.MkdirTemp("", "chanmq-test-mqueue-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) })
	const script = `mount -t mqueue none "$1" || exit; shift; exec unshare --ipc -- "$@"`
	return exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", dir}, argv...)...)
}

// Returns reports whether fn (such as a sync.WaitGroup's Wait) returns
// within Patience. If it does not, it goes on in a goroutine of its own.
func Returns(fn func()) bool {
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(Patience):
		return false
	}
}

// Output collects a child process's output (as its Stdout or Stderr); it
// is safe to read while the child writes.
type Output struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

// Write appends to the output.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String is what was written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
