//go:build linux

package mqbridge_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chanmq/chanmq"
	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/chanmq/chanmq/internal/testutil"
	"github.com/nats-io/nats.go/jetstream"
)

func TestOutGracefulStopsLoseNothing(t *testing.T) {
	t.Parallel()
	_, nc, js := startJetStream(t, jetstream.StreamConfig{Name: "GRACE", Subjects: []string{"grace"}})
	q := bridgetest.NewQueue(t, 10, 256)
	journal := filepath.Join(t.TempDir(), "out")
	const n, stops = 5000, 8

	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range n {
			if err := q.Send(context.Background(), payload(i, 200), 0); err != nil {
				t.Errorf("send: %v", err)
				return
			}
		}
	}()
	for k := 0; ; k++ {
		out := &mqbridge.Out{Queue: q, Subject: "grace", Journal: journal, Log: quietLog(t)}
		stop := runInBackground(t, func(ctx context.Context) error { return out.Run(ctx, nc) })
		if k == stops {
			<-sent
			waitStream(t, js, "GRACE", n, 30*time.Second)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			break
		}
		time.Sleep(time.Duration(20+k*10) * time.Millisecond)
		if err := stop(); err != nil {
			t.Fatalf("stop %d: %v", k, err)
		}
	}
	// One subscription is nats.go's shared inbox for requests (the test's
	// own stream look-ups); each Run must take its ack inbox away.
	if subs := nc.NumSubscriptions(); subs > 1 {
		t.Errorf("%d Runs on one connection left %d subscriptions behind", stops+1, subs)
	}
	c := tally(n, streamNumbers(t, js, "GRACE"))
	t.Logf("%d graceful stops: %v", stops, c)
	if c.lost != 0 || c.duplicates != 0 {
		t.Errorf("want nothing lost or duplicated: %v", c)
	}
}

// TestOutStopsWhenItsQueueIsRemoved: a queue removed under a running Out
// (and not created again) can no longer be sent to by name; Run notices
// within seconds, forwards what is left in it and returns an error
// matching ErrQueueReplaced instead of waiting on it for ever (issue 17
// item 17; the command's test covers a queue created again).
func TestOutStopsWhenItsQueueIsRemoved(t *testing.T) {
	t.Parallel()
	_, nc, js := startJetStream(t, jetstream.StreamConfig{Name: "GONE", Subjects: []string{"gone"}})
	q := bridgetest.NewQueue(t, 4, 128)
	out := &mqbridge.Out{Queue: q, Subject: "gone", Journal: filepath.Join(t.TempDir(), "out"), Log: quietLog(t)}
	done := goRun(func() error { return out.Run(context.Background(), nc) })
	if err := q.Send(context.Background(), payload(0, 64), 0); err != nil {
		t.Fatal(err)
	}
	waitStream(t, js, "GONE", 1, testutil.Patience)
	if err := chanmq.Unlink(q.Name()); err != nil {
		t.Fatal(err)
	}
	if err := runEnded(t, done, "still waits on a removed queue"); !errors.Is(err, mqbridge.ErrQueueReplaced) || !strings.Contains(err.Error(), "was removed") {
		t.Fatalf("Run = %v, want ErrQueueReplaced saying the queue was removed", err)
	}
}
