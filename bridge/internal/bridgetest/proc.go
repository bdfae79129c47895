//go:build linux

package bridgetest

import (
	"bytes"
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
	// Stderr collects what the command wrote (stdout and stderr).
	Stderr *bytes.Buffer
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
	p := &Proc{cmd: cmd, Stderr: &bytes.Buffer{}, Done: make(chan error, 1)}
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
