//go:build linux

package mqbridge_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/chanmq/chanmq/internal/testutil"
	"github.com/nats-io/nats.go/jetstream"
)

// The durable is deleted, and nobody creates it again, while the
// in-bridge (the command, without -create-consumer) waits on a full queue:
// no pull is outstanding to report it. The bridge must exit 1, promptly,
// with the nats command that creates the consumer again; a bridge that
// neither works nor exits is never restarted by its pod.
func TestInDurableDeletedExitsWithTheConsumerAddCommand(t *testing.T) {
	t.Parallel()
	_, nc, js := startJetStream(t, jetstream.StreamConfig{Name: "GONE", Subjects: []string{"gone"}})
	ctx := context.Background()
	if _, err := js.CreateConsumer(ctx, "GONE", jetstream.ConsumerConfig{Durable: "gone", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	publishNumbered(t, js, "gone", 0, 20, 64)
	q := bridgetest.NewQueue(t, 4, 128)
	p := bridgetest.StartBridge(t, "-server", nc.ConnectedUrl(), "-in", q.Name(), "-stream", "GONE", "-durable", "gone",
		"-journal", t.TempDir())
	cons, err := js.Consumer(ctx, "GONE", "gone")
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the bridge blocked on the full queue", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && q.Len() == q.Cap() && info.Delivered.Stream > uint64(q.Cap())
	})
	if err := js.DeleteConsumer(ctx, "GONE", "gone"); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	select {
	case err := <-p.Done:
		p.Done <- err
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("bridge ended with %v, want exit status 1:\n%s", err, p.Stderr)
		}
	case <-time.After(testutil.Patience):
		t.Fatalf("the bridge still runs %v after its durable was deleted:\n%s", testutil.Patience, p.Stderr)
	}
	out := p.Stderr.String()
	t.Logf("exited %v after the deletion:\n%s", time.Since(deleted).Round(time.Millisecond), out)
	if !strings.Contains(out, "nats consumer add GONE gone --pull --ack explicit") {
		t.Errorf("the bridge's last words do not give the command that creates the consumer:\n%s", out)
	}
}

// The durable is deleted while the in-bridge (the command, with
// -create-consumer) forwards: it creates the consumer again, from where it
// was, and delivers everything, once.
func TestInDurableDeletedIsCreatedAgainWithCreateConsumer(t *testing.T) {
	t.Parallel()
	_, nc, js := startJetStream(t, jetstream.StreamConfig{Name: "AGAIN", Subjects: []string{"again"}})
	ctx := context.Background()
	const n = 400
	publishNumbered(t, js, "again", 0, n, 64)
	q := bridgetest.NewQueue(t, 4, 128)
	dir := t.TempDir()
	p := bridgetest.StartBridge(t, "-server", nc.ConnectedUrl(), "-in", q.Name(), "-stream", "AGAIN", "-durable", "again",
		"-create-consumer", "-ack-wait", "2s", "-journal", dir)
	seen := map[int]int{}
	unique := 0
	receive := func(upTo int) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, testutil.Patience)
		defer cancel()
		for unique < upTo {
			b, _, err := q.Receive(rctx)
			if err != nil {
				t.Fatalf("%d of %d arrived (%v):\n%s", unique, n, err, p.Stderr)
			}
			k := msgNumber(b)
			if seen[k]++; seen[k] == 1 {
				unique++
			}
		}
	}
	receive(n / 4)
	// The bridge rewrote its journal at start; it rewrites it again once
	// it has confirmed an ack floor (in_floor.go: it checks while it
	// waits on the full queue too), and then knows where to create the
	// consumer again from.
	started := journalInode(t, filepath.Join(dir, "in.journal"))
	testutil.WaitFor(t, "an ack floor confirmed", func() bool {
		return journalInode(t, filepath.Join(dir, "in.journal")) != started
	})
	receive(n / 2)
	if err := js.DeleteConsumer(ctx, "AGAIN", "again"); err != nil {
		t.Fatal(err)
	}
	receive(n)
	bridgetest.WaitAllAcked(t, js, "AGAIN", "again")
	p.Stop(t)
	drainQueue(t, q, seen)
	c := tally(n, seen)
	t.Logf("durable deleted at %d of %d delivered: %v\n%s", n/2, n, c, p.Stderr)
	if c.lost != 0 || c.duplicates != 0 {
		t.Errorf("want everything exactly once: %v", c)
	}
	if !strings.Contains(p.Stderr.String(), "created the durable consumer") || !strings.Contains(p.Stderr.String(), "from_sequence=") {
		t.Errorf("the bridge does not say it created the consumer again:\n%s", p.Stderr)
	}
}
