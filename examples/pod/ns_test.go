//go:build linux

// Package pod_test checks what examples/pod relies on: processes in one IPC
// namespace (the containers of a pod) share their queues, and processes in
// another namespace (another pod, the node) cannot see them.
package pod_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/chanmq/chanmq"
	"github.com/chanmq/chanmq/internal/testutil"
	"go.uber.org/goleak"
)

// roleEnv names the part a re-executed test binary plays ("owner" or
// "peer"); nameEnv holds the queue name.
const (
	roleEnv = "CHANMQ_NS_TEST_ROLE"
	nameEnv = "CHANMQ_NS_TEST_QUEUE"
)

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "owner":
		os.Exit(owner(os.Getenv(nameEnv)))
	case "peer":
		os.Exit(peer(os.Getenv(nameEnv)))
	}
	goleak.VerifyTestMain(m)
}

// ipcNamespace returns the IPC namespace of this process, like
// "ipc:[4026531839]".
func ipcNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/ipc")
	if err != nil {
		return "unknown: " + err.Error()
	}
	return ns
}

// owner runs in a new IPC namespace: it creates the queue, starts a peer
// process (which inherits the namespace), receives the peer's message and
// prints it, then keeps the queue until its stdin closes.
func owner(name string) int {
	fail := func(err error) int { fmt.Printf("error %v\n", err); return 1 }
	q, err := chanmq.Open(name, chanmq.Create(0o600), chanmq.Exclusive(), chanmq.MaxMessages(2), chanmq.MessageSize(128))
	if err != nil {
		return fail(err)
	}
	defer chanmq.Unlink(name)
	defer q.Close()
	fmt.Printf("owner %s\n", ipcNamespace())

	peer := exec.Command(os.Args[0], "-test.run=^$")
	peer.Env = append(os.Environ(), roleEnv+"=peer")
	peer.Stdout, peer.Stderr = os.Stdout, os.Stderr
	if err := peer.Run(); err != nil {
		return fail(fmt.Errorf("peer: %v", err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
	defer cancel()
	msg, _, err := q.Receive(ctx)
	if err != nil {
		return fail(err)
	}
	fmt.Printf("got %s\n", msg)
	_, _ = io.Copy(io.Discard, os.Stdin) // hold the queue until the test is done
	return 0
}

// peer opens the owner's queue, which exists only in their namespace, and
// sends a message.
func peer(name string) int {
	fmt.Printf("peer %s\n", ipcNamespace())
	q, err := chanmq.Open(name, chanmq.WriteOnly())
	if err != nil {
		fmt.Printf("error peer: %v\n", err)
		return 1
	}
	defer q.Close()
	if err := q.Send(context.Background(), []byte("hello from the peer"), 0); err != nil {
		fmt.Printf("error peer: %v\n", err)
		return 1
	}
	return 0
}

func TestQueueIsPrivateToItsIPCNamespace(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("a new IPC namespace needs root (CAP_SYS_ADMIN)")
	}
	name := testutil.QueueName(t, testutil.QueuePrefix+"ns-", chanmq.Unlink) // unlinked in case it leaked into ours

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=owner", nameEnv+"="+name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWIPC}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
			t.Skipf("CLONE_NEWIPC not permitted here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// Read what the owner and the peer say, up to the message.
	lines := map[string]string{}
	out := bufio.NewScanner(stdout)
	for out.Scan() {
		role, rest, _ := strings.Cut(out.Text(), " ")
		if role == "error" {
			t.Fatalf("in the new namespace: %s", rest)
		}
		lines[role] = rest
		if role == "got" {
			break
		}
	}
	if lines["got"] != "hello from the peer" {
		t.Fatalf("owner did not get the peer's message; output %q, %v", lines, out.Err())
	}
	mine := ipcNamespace()
	if lines["owner"] != lines["peer"] || lines["owner"] == mine {
		t.Errorf("namespaces: owner %s, peer %s, test %s; want owner = peer != test", lines["owner"], lines["peer"], mine)
	}

	// The owner holds the queue open now, but it is not in our namespace.
	q, err := chanmq.Open(name, chanmq.ReadOnly())
	if !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			q.Close()
		}
		t.Errorf("Open(%s) from another IPC namespace: %v, want an error matching fs.ErrNotExist", name, err)
	}

	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("owner: %v", err)
	}
}
