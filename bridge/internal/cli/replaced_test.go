//go:build linux

package cli_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chanmq/chanmq"
	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/chanmq/chanmq/internal/testutil"
	"github.com/nats-io/nats.go/jetstream"
)

// TestQueueRemovedAndCreatedAgainUnderARunningOutBridge (issue 17 item
// 17): the out bridge used to go on reading the removed queue while new
// messages sat in the new one, with no log line. It must notice, forward
// what is left in the queue it holds, and exit 1 saying why; started
// again, it forwards the new queue.
//
// The server is stopped while the queue is replaced, and the window is
// one message, so that messages are still in the old queue when the bridge
// notices: what is left must reach the stream too.
func TestQueueRemovedAndCreatedAgainUnderARunningOutBridge(t *testing.T) {
	t.Parallel()
	ts := bridgetest.StartServer(t, nil)
	_, js := ts.JetStream(t, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}})
	name := testutil.QueueName(t, bridgetest.QueuePrefix, chanmq.Unlink)
	old := openQueue(t, name)
	journal := t.TempDir()
	args := []string{"-server", ts.URL(), "-out", name, "-subject", "jobs.work", "-stream", "JOBS", "-window", "1", "-journal", journal}
	p := bridgetest.StartBridge(t, args...)
	p.WaitOutput(t, "stream checked")

	send(t, old, "m0")
	waitStream(t, js, 1)
	ts.Down()
	for _, m := range []string{"m1", "m2", "m3"} {
		send(t, old, m)
	}
	if err := chanmq.Unlink(name); err != nil {
		t.Fatal(err)
	}
	send(t, openQueue(t, name), "n0")
	p.WaitOutput(t, "forwarding what is left")
	ts.Up()

	if code := p.Exit(t); code != 1 {
		t.Fatalf("exit status %d, want 1:\n%s", code, p.Stderr)
	}
	if last := p.LastLine(); !strings.Contains(last, "level=ERROR") || !strings.Contains(last, "was removed and created again") {
		t.Fatalf("last line:\n%s\nwant the error naming the replaced queue; all of it:\n%s", last, p.Stderr)
	}
	if got, want := streamData(t, js, 4), []string{"m0", "m1", "m2", "m3"}; !slices.Equal(got, want) {
		t.Fatalf("stream holds %q, want %q (everything sent to the old queue, once)", got, want)
	}

	p = bridgetest.StartBridge(t, args...)
	waitStream(t, js, 5)
	p.Stop(t)
	if got := streamData(t, js, 5); got[4] != "n0" {
		t.Fatalf("after a restart the stream holds %q, want n0 from the new queue last", got)
	}
}

// openQueue opens name read-write, creating it (4 messages of 128 bytes)
// if missing; it is closed when t ends (and unlinked by QueueName's
// cleanup).
func openQueue(t *testing.T, name string) *chanmq.Queue {
	t.Helper()
	q, err := chanmq.Open(name, chanmq.Create(0o600), chanmq.MaxMessages(4), chanmq.MessageSize(128))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func send(t *testing.T, q *chanmq.Queue, m string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
	defer cancel()
	if err := q.Send(ctx, []byte(m), 0); err != nil {
		t.Fatal(err)
	}
}

// waitStream waits until stream JOBS holds at least n messages.
func waitStream(t *testing.T, js jetstream.JetStream, n uint64) {
	t.Helper()
	testutil.WaitFor(t, "the stream to hold the messages", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "JOBS")
		return err == nil && s.CachedInfo().State.Msgs >= n
	})
}

// streamData waits until stream JOBS holds n messages and returns them.
func streamData(t *testing.T, js jetstream.JetStream, n uint64) []string {
	t.Helper()
	waitStream(t, js, n)
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
	defer cancel()
	s, err := js.Stream(ctx, "JOBS")
	if err != nil {
		t.Fatal(err)
	}
	var data []string
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		data = append(data, string(m.Data))
	}
	return data
}
