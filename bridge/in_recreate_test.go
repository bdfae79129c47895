//go:build linux

package mqbridge_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/chanmq/chanmq/internal/testutil"
	"github.com/nats-io/nats.go/jetstream"
)

// The stream is deleted and created again under its name, with its
// durable, while the in-bridge waits on a full queue (nobody reads it):
// the new stream's messages reuse the sequences the journal holds. Every
// one of them must reach the queue, exactly once; none may be
// acknowledged without being sent. Whether the bridge notices while it
// waits (a periodic check), or only when the queue drains right after the
// change (the check before the acknowledgement), the outcome is the same.
func TestInStreamRecreatedWhileBlockedDeliversEveryNewMessage(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name        string
		waitNoticed bool
	}{
		{"noticed while blocked", true},
		{"queue drained at once", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			streamRecreatedWhileBlocked(t, c.waitNoticed)
		})
	}
}

func streamRecreatedWhileBlocked(t *testing.T, waitNoticed bool) {
	scfg := jetstream.StreamConfig{Name: "RECR", Subjects: []string{"recr"}, Storage: jetstream.FileStorage}
	_, nc, js := startJetStream(t, scfg)
	ctx := context.Background()
	const old, fresh, first = 30, 20, 100 // the new stream's messages are numbered from 100
	publishNumbered(t, js, "recr", 0, old, 64)
	q := bridgetest.NewQueue(t, 4, 128)
	log, rec := newLogRecorder(t)
	const ackWait = 2 * time.Second
	in := &mqbridge.In{Queue: q, Stream: "RECR", Durable: "recr", CreateConsumer: true, AckWait: ackWait, Prefetch: 8,
		Journal: filepath.Join(t.TempDir(), "in"), Log: log}
	// A bridge that finds the stream gone exits, as documented; its pod
	// would start it again.
	restarts := runLikeAPod(t, func(ctx context.Context) error { return in.Run(ctx, nc) }, mqbridge.ErrStreamNotFound)

	// Take 10, then let the queue fill: the journal holds sequences 1 to
	// 14, and the bridge waits with the 15th.
	seen := map[int]int{}
	for _, m := range receiveN(t, q, 10, testutil.Patience) {
		seen[msgNumber(m.Data)]++
	}
	cons, err := js.Consumer(ctx, "RECR", "recr")
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the bridge blocked on the full queue", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && q.Len() == q.Cap() && info.Delivered.Stream >= 15
	})

	if !waitNoticed {
		// Let the bridge's last check age past the 100 ms within which it
		// acknowledges without checking again (in_watch.go), so that the
		// check before the acknowledgement is what must notice.
		time.Sleep(300 * time.Millisecond)
	}
	if err := js.DeleteStream(ctx, "RECR"); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, scfg); err != nil {
		t.Fatal(err)
	}
	publishNumbered(t, js, "recr", first, fresh, 64)
	ccfg := jetstream.ConsumerConfig{Durable: "recr", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxAckPending: 32}
	if _, err := js.CreateOrUpdateConsumer(ctx, "RECR", ccfg); err != nil {
		t.Fatal(err)
	}
	if waitNoticed {
		testutil.WaitFor(t, "the bridge to notice the change while blocked", func() bool {
			return rec.has(slog.LevelWarn, "deleted") || restarts.Load() > 0
		})
	}

	// Now read: every new message must come.
	rctx, cancel := context.WithTimeout(ctx, testutil.Patience)
	defer cancel()
	for got := 0; got < fresh; {
		b, _, err := q.Receive(rctx)
		if err != nil {
			t.Fatalf("%d of the new stream's %d messages arrived (%v); seen: %v", got, fresh, err, seen)
		}
		k := msgNumber(b)
		if seen[k]++; k >= first && seen[k] == 1 {
			got++
		}
	}
	bridgetest.WaitAllAcked(t, js, "RECR", "recr")
	drainQueue(t, q, seen)
	newSeen, oldSeen := map[int]int{}, 0
	for k, n := range seen {
		if k >= first {
			newSeen[k] = n
		} else {
			oldSeen += n
		}
	}
	c := tally(fresh, newSeen)
	t.Logf("new stream: %v; the old stream's messages received: %d; bridge restarts: %d", c, oldSeen, restarts.Load())
	if c.lost != 0 || c.duplicates != 0 {
		t.Errorf("want every new message exactly once: %v", c)
	}
}
