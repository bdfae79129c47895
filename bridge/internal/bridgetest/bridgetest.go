//go:build linux

// Package bridgetest holds what the tests of the bridge module share: the
// TestMain that re-executes the test binary as the chanmq-bridge command
// or as a nats-server, an embedded nats-server, one in a child process
// (to SIGKILL), test queues, and the command run as a child process. The
// tests of package mqbridge and of the command (internal/cli)
// both use it.
package bridgetest

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/chanmq/chanmq"
	"github.com/chanmq/chanmq/internal/testutil"
	"go.uber.org/goleak"
)

// QueuePrefix starts the name of every queue these tests create; queues
// outlive processes and queues_max is shared by the whole machine.
const QueuePrefix = "/chanmq-bridge-test-"

// childEnv makes a re-executed test binary run the chanmq-bridge command
// with the arguments in childArgsEnv (one per line) instead of the tests.
const (
	childEnv     = "CHANMQ_BRIDGE_TEST_CHILD"
	childArgsEnv = "CHANMQ_BRIDGE_TEST_ARGS"
)

// Main is a test package's TestMain. In a child that StartBridge started
// it runs command (cli.Main) with the child's arguments and exits with its
// status; in one that StartServerProc started, a nats-server. Otherwise
// it sweeps the queues that crashed runs left behind and runs the tests,
// with goleak checking that no goroutine (the bridge's, nats.go's or the
// embedded server's) outlives them.
func Main(m *testing.M, command func(args []string, stderr io.Writer) int) {
	if os.Getenv(childEnv) != "" {
		os.Exit(command(strings.Split(os.Getenv(childArgsEnv), "\n"), os.Stderr))
	}
	if spec := os.Getenv(serverEnv); spec != "" {
		os.Exit(runServer(spec))
	}
	testutil.SweepQueues(QueuePrefix, chanmq.Unlink)
	goleak.VerifyTestMain(m)
}

// NewQueue creates a uniquely named queue, closed and unlinked when t
// ends. Kernel limits here: msg_max 10, msgsize_max 8192.
func NewQueue(t testing.TB, maxMsgs, msgSize int) *chanmq.Queue {
	t.Helper()
	q, err := chanmq.CreateTemp(QueuePrefix, chanmq.MaxMessages(maxMsgs), chanmq.MessageSize(msgSize))
	if err != nil {
		t.Fatalf("CreateTemp: %v", err)
	}
	t.Cleanup(func() {
		_ = q.Close()
		_ = chanmq.Unlink(q.Name())
	})
	return q
}
