//go:build linux

package bridgetest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/testutil"
)

// Proc is the chanmq-bridge command running in a child process.
type Proc struct {
	cmd *exec.Cmd
	// Stderr collects what the command wrote (stdout and stderr); it may
	// be read while the command runs.
	Stderr *Output
	// Done receives the command's end (cmd.Wait's error) once. A reader
	// that takes it puts it back, for the others and the cleanup.
	Done chan error
}

// StartBridge re-executes the test binary as the chanmq-bridge command
// with args (the os/signal TestNotifyContextNotifications pattern; the
// package's TestMain must be Main). The child is killed when t ends.
func StartBridge(t testing.TB, args ...string) *Proc {
	t.Helper()
	return StartBridgeEnv(t, nil, args...)
}

// StartBridgeEnv is StartBridge with env ("KEY=value") added to the
// child's environment.
func StartBridgeEnv(t testing.TB, env []string, args ...string) *Proc {
	t.Helper()
	return startBridge(t, exec.Command(os.Args[0], "-test.run=^$"), env, args)
}

// StartBridgeInNewIPCNamespace is StartBridge in an IPC namespace of its
// own (testutil.InNewIPCNamespace: it skips t where none can be made),
// where the queues are not this process's.
func StartBridgeInNewIPCNamespace(t testing.TB, args ...string) *Proc {
	t.Helper()
	return startBridge(t, testutil.InNewIPCNamespace(t, os.Args[0], "-test.run=^$"), nil, args)
}

// startBridge starts cmd, the test binary (maybe behind a wrapper), as the
// command with args and env.
func startBridge(t testing.TB, cmd *exec.Cmd, env, args []string) *Proc {
	t.Helper()
	cmd.Env = append(os.Environ(), childEnv+"=1", childArgsEnv+"="+strings.Join(args, "\n"),
		"CHANMQ_BRIDGE_RECONNECT_WAIT=100ms")
	cmd.Env = append(cmd.Env, env...)
	p := &Proc{cmd: cmd, Stderr: &Output{}, Done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.Stderr, p.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start bridge: %v", err)
	}
	go func() { p.Done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.Done
	})
	return p
}

// Kill SIGKILLs the bridge and waits for it to be gone.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	select {
	case <-p.Done:
		p.Done <- nil // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("bridge did not die in 20s after SIGKILL")
	}
}

// Stop sends SIGINT and fails t unless the bridge exits 0 in time.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.Done:
		p.Done <- nil
		if err != nil {
			t.Fatalf("bridge stopped with %v\n%s", err, p.Stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("bridge did not stop in 30s after SIGINT\n%s", p.Stderr)
	}
}

// Exited reports whether the bridge ended on its own (a fault).
func (p *Proc) Exited() (error, bool) {
	select {
	case err := <-p.Done:
		p.Done <- err
		return err, true
	default:
		return nil, false
	}
}

// Exit waits up to testutil.Patience for the bridge to end on its own and
// returns its exit status; it fails t if the bridge is still running.
func (p *Proc) Exit(t testing.TB) int {
	t.Helper()
	select {
	case err := <-p.Done:
		p.Done <- err
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee) && ee.Exited():
			return ee.ExitCode()
		}
		t.Fatalf("bridge ended with %v\n%s", err, p.Stderr)
	case <-time.After(testutil.Patience):
		t.Fatalf("bridge still running after %v\n%s", testutil.Patience, p.Stderr)
	}
	return -1
}

// WaitOutput waits until the bridge has written s, and fails t if it
// exits first or does not within testutil.Patience.
func (p *Proc) WaitOutput(t testing.TB, s string) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("the bridge to write %q", s), func() bool {
		if err, exited := p.Exited(); exited && !strings.Contains(p.Stderr.String(), s) {
			t.Fatalf("bridge exited (%v) before writing %q:\n%s", err, s, p.Stderr)
		}
		return strings.Contains(p.Stderr.String(), s)
	})
}

// LastLine is the last line the bridge wrote.
func (p *Proc) LastLine() string {
	lines := strings.Split(strings.TrimRight(p.Stderr.String(), "\n"), "\n")
	return lines[len(lines)-1]
}

// Output collects a child's output; it is safe to read while the child
// writes.
type Output = testutil.Output
