//go:build linux

package mqbridge_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/chanmq/chanmq/internal/testutil"
	"github.com/nats-io/nats.go/jetstream"
)

// Both README commands on one host, on one queue: the out-bridge
// publishes what the in-bridge puts in the queue, which the in-bridge
// takes again, for ever (the issue saw one message become 10,597 in 3 s).
// The in-bridge must refuse the first message an out-bridge of its own
// queue published, before delivering it, and exit 1 saying what happened
// and what to do.
func TestInRefusesAMessageFromItsOwnQueueOnThisHost(t *testing.T) {
	t.Parallel()
	_, nc, js := startJetStream(t, jetstream.StreamConfig{Name: "LOOP", Subjects: []string{"loop"}, Duplicates: time.Hour})
	q := bridgetest.NewQueue(t, 4, 128)
	out := bridgetest.StartBridge(t, "-server", nc.ConnectedUrl(), "-out", q.Name(), "-subject", "loop", "-stream", "LOOP", "-journal", t.TempDir())
	in := bridgetest.StartBridge(t, "-server", nc.ConnectedUrl(), "-in", q.Name(), "-stream", "LOOP", "-durable", "loop",
		"-create-consumer", "-journal", t.TempDir())
	ctx := context.Background()
	if err := q.Send(ctx, payload(0, 64), 0); err != nil {
		t.Fatal(err)
	}
	stored := func() uint64 {
		s, err := js.Stream(ctx, "LOOP")
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}
	deadline := time.Now().Add(testutil.Patience)
	for {
		if err, done := in.Exited(); done {
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("in-bridge ended with %v, want exit status 1:\n%s", err, in.Stderr)
			}
			break
		}
		if n := stored(); n > 3 || time.Now().After(deadline) {
			t.Fatalf("the bridges loop: the stream holds %d messages for the one sent:\n%s", n, in.Stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	said := in.Stderr.String()
	t.Logf("in-bridge:\n%s", said)
	for _, s := range []string{"bridge loop", "form a loop", "another queue", "both directions on one host"} {
		if !strings.Contains(said, s) {
			t.Errorf("the in-bridge's error does not say %q", s)
		}
	}
	// Exited before delivering: the queue stays empty, so the out-bridge
	// has nothing more to publish.
	if n, l := stored(), q.Len(); n != 1 || l != 0 {
		t.Errorf("after the in-bridge stopped: %d messages stored, %d in the queue; want 1 and 0", n, l)
	}
	if err, done := out.Exited(); done {
		t.Errorf("the out-bridge exited (%v):\n%s", err, out.Stderr)
	}
}

// Two queues on one host, one bridge each way through one stream, are not
// a loop: the message arrives.
func TestInDeliversFromAnotherQueueOnThisHost(t *testing.T) {
	t.Parallel()
	_, nc, _ := startJetStream(t, jetstream.StreamConfig{Name: "TWO", Subjects: []string{"two"}})
	src, dst := bridgetest.NewQueue(t, 4, 128), bridgetest.NewQueue(t, 4, 128)
	bridgetest.StartBridge(t, "-server", nc.ConnectedUrl(), "-out", src.Name(), "-subject", "two", "-journal", t.TempDir())
	in := bridgetest.StartBridge(t, "-server", nc.ConnectedUrl(), "-in", dst.Name(), "-stream", "TWO", "-durable", "two",
		"-create-consumer", "-journal", t.TempDir())
	if err := src.Send(context.Background(), payload(7, 64), 3); err != nil {
		t.Fatal(err)
	}
	m := receiveN(t, dst, 1, testutil.Patience)[0]
	if msgNumber(m.Data) != 7 || m.Priority != 3 {
		t.Errorf("got message %d with priority %d, want 7 with 3", msgNumber(m.Data), m.Priority)
	}
	in.Stop(t)
}

// A queue of the same name in another IPC namespace of this host (another
// pod's) is another queue: chained bridges through it are not a loop. The
// in-bridge runs in a namespace of its own, where it creates its /q; the
// message published from this namespace's /q reaches it and is
// delivered (acknowledged), and the bridge goes on.
func TestInDeliversFromTheSameQueueNameInAnotherIPCNamespace(t *testing.T) {
	t.Parallel()
	_, nc, js := startJetStream(t, jetstream.StreamConfig{Name: "CHAIN", Subjects: []string{"chain"}})
	q := bridgetest.NewQueue(t, 4, 128)
	bridgetest.StartBridge(t, "-server", nc.ConnectedUrl(), "-out", q.Name(), "-subject", "chain", "-journal", t.TempDir())
	in := bridgetest.StartBridgeInNewIPCNamespace(t, "-server", nc.ConnectedUrl(), "-in", q.Name(), "-create", "-max", "4", "-size", "128",
		"-stream", "CHAIN", "-durable", "chain", "-create-consumer", "-journal", t.TempDir())
	if err := q.Send(context.Background(), payload(1, 64), 0); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the message delivered in the other namespace", func() bool {
		if err, done := in.Exited(); done {
			t.Fatalf("the in-bridge exited (%v):\n%s", err, in.Stderr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, "CHAIN", "chain")
		if err != nil {
			return false
		}
		info := c.CachedInfo()
		return info.AckFloor.Stream >= 1
	})
	in.Stop(t)
}
