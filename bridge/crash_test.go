//go:build linux

package mqbridge_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/nats-io/nats.go/jetstream"
)

// crashPlan is how many messages a crash test moves and how often it
// kills the bridge: the real counts by default, fewer with -short.
func crashPlan(t *testing.T) (messages, kills int) {
	if testing.Short() {
		return 5000, 6
	}
	return 30000, 20
}

// killPoints returns kills sorted progress marks in (5 %, 95 %) of n at
// which to SIGKILL the bridge; the server restarts at n/2.
func killPoints(n, kills int) []int64 {
	pts := make([]int64, kills)
	for i := range pts {
		pts[i] = int64(n/20 + rand.IntN(n*9/10))
	}
	slices.Sort(pts)
	return pts
}

// crashLoop starts the bridge with args and SIGKILLs it each time
// progress() passes the next kill point (after a random pause of up to
// 2 ms, so the kill lands anywhere in the bridge's loop), then restarts it;
// it restarts the server once, at half of n. It returns the last bridge,
// still running, and how many kills it made.
func crashLoop(t *testing.T, ts *bridgetest.Server, n, kills int, progress func() int64, args ...string) (*bridgetest.Proc, int) {
	t.Helper()
	points := killPoints(n, kills)
	restartAt, restarted := int64(n/2), false
	deadline := time.Now().Add(4 * time.Minute)
	p := bridgetest.StartBridge(t, args...)
	made := 0
	var restartedAt time.Time
	for _, pt := range points {
		for progress() < pt {
			if err, done := p.Exited(); done {
				// A bridge that starts while the server is away exits 1
				// (its documented policy: the pod restarts it); restart it
				// as the pod would. At any other time an exit is a fault.
				if !restartedAt.IsZero() && time.Since(restartedAt) < 10*time.Second && strings.Contains(p.Stderr.String(), "level=ERROR") {
					t.Logf("bridge started during the server restart and exited (%v), as documented; restarting it:\n%s", err, p.Stderr)
					p = bridgetest.StartBridge(t, args...)
					continue
				}
				t.Fatalf("bridge exited on its own (%v) after %d kills at progress %d:\n%s", err, made, progress(), p.Stderr)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no progress past %d (want %d) after %d kills:\n%s", progress(), pt, made, p.Stderr)
			}
			if !restarted && progress() >= restartAt {
				restarted = true
				t0 := time.Now()
				ts.Restart()
				restartedAt = time.Now()
				t.Logf("server restarted at progress %d in %v", progress(), time.Since(t0).Round(time.Millisecond))
			}
			time.Sleep(200 * time.Microsecond)
		}
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		p.Kill(t)
		made++
		p = bridgetest.StartBridge(t, args...)
	}
	if !restarted {
		ts.Restart()
		t.Logf("server restarted at progress %d", progress())
	}
	return p, made
}

func TestOutSIGKILLNoDuplicateAtMostOneLossPerKill(t *testing.T) {
	t.Parallel()
	n, kills := crashPlan(t)
	ts, _, js := startJetStream(t, jetstream.StreamConfig{Name: "OUTCRASH", Subjects: []string{"outcrash"}, Duplicates: 10 * time.Minute})
	q := bridgetest.NewQueue(t, 10, 512)

	var sent atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			if err := q.Send(ctx, payload(i, 256), uint(i%3)); err != nil {
				if ctx.Err() == nil {
					t.Errorf("send %d: %v", i, err)
				}
				return
			}
			sent.Add(1)
		}
	}()
	t0 := time.Now()
	p, made := crashLoop(t, ts, n, kills, sent.Load,
		"-server", ts.URL(), "-out", q.Name(), "-subject", "outcrash", "-stream", "OUTCRASH",
		"-journal", t.TempDir())
	wg.Wait()
	// Everything is sent; once the queue is empty the last bridge holds the
	// rest, and a graceful stop waits for their acknowledgements.
	for q.Len() > 0 {
		if time.Since(t0) > 5*time.Minute {
			t.Fatalf("queue not drained:\n%s", p.Stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitStream(t, js, "OUTCRASH", uint64(n-made), 60*time.Second)
	p.Stop(t)
	c := tally(n, streamNumbers(t, js, "OUTCRASH"))
	t.Logf("out: %v kills=%d server_restarts=1 in %v", c, made, time.Since(t0).Round(time.Millisecond))
	if c.duplicates != 0 || c.lost > made {
		t.Errorf("want no duplicate and at most one loss per kill (%d): %v", made, c)
	}
}

func TestInSIGKILLLosesNothingAtMostOneDuplicatePerKill(t *testing.T) {
	t.Parallel()
	n, kills := crashPlan(t)
	ts, _, js := startJetStream(t, jetstream.StreamConfig{Name: "INCRASH", Subjects: []string{"incrash"}})
	publishNumbered(t, js, "incrash", 0, n, 256)
	q := bridgetest.NewQueue(t, 10, 512)
	received := countQueue(t, q)
	const ackWait = time.Second
	t0 := time.Now()
	p, made := crashLoop(t, ts, n, kills, received.Unique,
		"-server", ts.URL(), "-in", q.Name(), "-stream", "INCRASH", "-durable", "incrash",
		"-create-consumer", "-ack-wait", ackWait.String(), "-journal", t.TempDir())
	for received.Unique() < int64(n) {
		if err, done := p.Exited(); done {
			t.Fatalf("bridge exited (%v):\n%s", err, p.Stderr)
		}
		if time.Since(t0) > 5*time.Minute {
			t.Fatalf("%d of %d arrived:\n%s", received.Unique(), n, p.Stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Give late redeliveries time to show up as duplicates, if any.
	time.Sleep(3 * ackWait)
	p.Stop(t)
	for q.Len() > 0 {
		time.Sleep(time.Millisecond)
	}
	c := received.Stop(n)
	t.Logf("in: %v kills=%d server_restarts=1 in %v", c, made, time.Since(t0).Round(time.Millisecond))
	if c.lost != 0 || c.duplicates > made {
		t.Errorf("want no loss and at most one duplicate per kill (%d): %v", made, c)
	}
}

func TestServerDownBlocksSendersAndBothDirectionsResume(t *testing.T) {
	t.Parallel()
	const n, window = 6000, 32
	ts, _, _ := startJetStream(t, jetstream.StreamConfig{Name: "DOWN", Subjects: []string{"down"}})
	src, dst := bridgetest.NewQueue(t, 10, 512), bridgetest.NewQueue(t, 10, 512)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent atomic.Int64
	// The sender pauses at each round's mark until the server is down:
	// otherwise the rest of the stream can pass while the server shuts
	// down, and there is nothing left to fill the queue with.
	resume := []chan struct{}{make(chan struct{}), make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			if round := i/(n/3) - 1; i%(n/3) == 0 && round >= 0 && round < len(resume) {
				select {
				case <-resume[round]:
				case <-ctx.Done():
					return
				}
			}
			if err := src.Send(ctx, payload(i, 256), 0); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
			sent.Add(1)
		}
	}()
	received := countQueue(t, dst)
	// One process, both directions: src -> stream -> dst.
	p := bridgetest.StartBridge(t, "-server", ts.URL(), "-out", src.Name(), "-subject", "down", "-window", "32",
		"-in", dst.Name(), "-stream", "DOWN", "-durable", "down", "-create-consumer", "-ack-wait", "2s",
		"-journal", t.TempDir())
	for round := range 2 {
		mark := int64(n/3) * int64(round+1)
		waitFor(t, p, 60*time.Second, func() bool { return sent.Load() >= mark })
		ts.Down()
		// With the server away, the out window fills, the bridge stops
		// receiving, and the local queue fills: senders block.
		before := sent.Load()
		close(resume[round])
		waitFor(t, p, 30*time.Second, func() bool { return src.Len() == src.Cap() })
		time.Sleep(300 * time.Millisecond)
		if moved := sent.Load() - before; moved > window+int64(src.Cap())+1 {
			t.Errorf("with the server down, %d more messages were sent; the window (%d) and the queue (%d) should bound that", moved, window, src.Cap())
		}
		t.Logf("server down at %d sent: the queue is full (%d) and the sender is blocked at %d", mark, src.Len(), sent.Load())
		ts.Up()
	}
	waitFor(t, p, 60*time.Second, func() bool { return received.Unique() >= n })
	time.Sleep(2 * time.Second) // late duplicates, if any
	p.Stop(t)
	cancel()
	wg.Wait()
	c := received.Stop(n)
	t.Logf("server stopped twice mid-stream: %v", c)
	if c.lost != 0 || c.duplicates != 0 {
		t.Errorf("want no loss and no duplicate: %v", c)
	}
}

// waitFor polls cond until it holds, failing t after d or if the bridge
// exits.
func waitFor(t *testing.T, p *bridgetest.Proc, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if err, done := p.Exited(); done {
			t.Fatalf("bridge exited (%v):\n%s", err, p.Stderr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met in %v:\n%s", d, p.Stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
