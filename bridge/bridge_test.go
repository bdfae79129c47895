//go:build linux

package mqbridge_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRoundTripRestoresPriorities(t *testing.T) {
	t.Parallel()
	_, nc, _ := startJetStream(t, jetstream.StreamConfig{Name: "RT", Subjects: []string{"rt.>"}})
	src, dst := bridgetest.NewQueue(t, 10, 512), bridgetest.NewQueue(t, 10, 512)
	dir := t.TempDir()

	out := &mqbridge.Out{Queue: src, Subject: "rt.jobs", Stream: "RT", Journal: filepath.Join(dir, "out"), Log: quietLog(t)}
	in := &mqbridge.In{Queue: dst, Stream: "RT", Durable: "rt", CreateConsumer: true, Journal: filepath.Join(dir, "in"), Log: quietLog(t)}
	stop := runInBackground(t, func(ctx context.Context) error { return mqbridge.Run(ctx, nc, out, in) })

	const n = 300
	go func() {
		for i := range n {
			if err := src.Send(context.Background(), payload(i, 64), uint(i%5)*1000); err != nil {
				t.Errorf("send: %v", err)
				return
			}
		}
	}()
	seen := map[int]int{}
	for _, m := range receiveN(t, dst, n, 30*time.Second) {
		i := msgNumber(m.Data)
		seen[i]++
		if want := uint(i%5) * 1000; m.Priority != want {
			t.Errorf("message %d arrived with priority %d, sent with %d", i, m.Priority, want)
		}
	}
	if c := tally(n, seen); c.lost != 0 || c.duplicates != 0 {
		t.Errorf("round trip: %v", c)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
