//go:build linux

package mqbridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chanmq/chanmq"
	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/chanmq/chanmq/internal/testutil"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startJetStream starts a server (stopped when t ends) with the streams
// given (file storage unless they say otherwise), and returns it with a
// connection and its JetStream context.
func startJetStream(t testing.TB, streams ...jetstream.StreamConfig) (*bridgetest.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	ts := bridgetest.StartServer(t, nil)
	nc, js := ts.JetStream(t, streams...)
	return ts, nc, js
}

// quietLog is a logger for bridges run inside the test process.
func quietLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// payload makes message i of a test run: its number, padded to size.
func payload(i, size int) []byte {
	b := make([]byte, size)
	copy(b, fmt.Sprintf("msg-%08d-", i))
	for j := 13; j < size; j++ {
		b[j] = byte('a' + (i+j)%26)
	}
	return b
}

// msgNumber returns the number payload put in b, or -1.
func msgNumber(b []byte) int {
	var n int
	if _, err := fmt.Sscanf(string(b[:min(len(b), 12)]), "msg-%08d", &n); err != nil {
		return -1
	}
	return n
}

// counts tallies what arrived of n numbered messages.
type counts struct {
	sent, received, unique, duplicates, lost int
}

func tally(sent int, seen map[int]int) counts {
	c := counts{sent: sent, unique: len(seen)}
	for _, k := range seen {
		c.received += k
		if k > 1 {
			c.duplicates += k - 1
		}
	}
	c.lost = sent - c.unique
	return c
}

func (c counts) String() string {
	return fmt.Sprintf("sent=%d received=%d unique=%d duplicates=%d lost=%d", c.sent, c.received, c.unique, c.duplicates, c.lost)
}

// runInBackground runs fn (a bridge's Run) in a goroutine and returns a
// function that cancels it and returns its error.
func runInBackground(t testing.TB, fn func(ctx context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("bridge did not stop in 30s after cancel")
			}
			stopped = true
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// goRun runs fn (a bridge's Run) in a goroutine; the channel delivers
// its error.
func goRun(fn func() error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	return done
}

// runEnded waits up to testutil.Patience for the error done delivers, and
// fails t if none comes, saying what the bridge still does (still).
func runEnded(t testing.TB, done <-chan error, still string) error {
	t.Helper()
	select {
	case err := <-done:
		t.Logf("Run: %v", err)
		return err
	case <-time.After(testutil.Patience):
		t.Fatalf("Run %s after %v", still, testutil.Patience)
		return nil
	}
}

// receiveN receives n messages from q within d.
func receiveN(t testing.TB, q *chanmq.Queue, n int, d time.Duration) []chanmq.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out []chanmq.Message
	for len(out) < n {
		b, p, err := q.Receive(ctx)
		if err != nil {
			t.Fatalf("received %d of %d: %v", len(out), n, err)
		}
		out = append(out, chanmq.Message{Data: b, Priority: p})
	}
	return out
}

// waitStream waits until stream holds at least n messages.
func waitStream(t testing.TB, js jetstream.JetStream, stream string, n uint64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last uint64
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := js.Stream(ctx, stream)
		cancel()
		if err == nil {
			last = s.CachedInfo().State.Msgs
			if last >= n {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("stream %s holds %d messages after %v, want %d", stream, last, d, n)
}

// streamNumbers reads every message of stream and counts each number.
func streamNumbers(t testing.TB, js jetstream.JetStream, stream string) map[int]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	total := s.CachedInfo().State.Msgs
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for got := uint64(0); got < total; {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			seen[msgNumber(m.Data())]++
			got++
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("fetch after %d of %d: %v", got, total, err)
		}
	}
	return seen
}

// publishNumbered publishes payload(i, size) to subject for i from first
// to first+n-1, in order, and waits until the stream stored them.
func publishNumbered(t testing.TB, js jetstream.JetStream, subject string, first, n, size int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		if _, err := js.PublishAsync(subject, payload(i, size)); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 || i == first+n-1 { // nats.go holds at most 4000 unacknowledged
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(testutil.Patience):
				t.Fatalf("publishing the test messages took over %v", testutil.Patience)
			}
		}
	}
}

// queueCounter receives from a queue in a goroutine, counting the
// messages by number (msgNumber), until it is stopped.
type queueCounter struct {
	mu     sync.Mutex
	seen   map[int]int
	unique atomic.Int64
	stop   context.CancelFunc
	done   chan struct{}
}

// countQueue starts counting what q receives; it stops when t ends, if
// Stop did not stop it before.
func countQueue(t testing.TB, q *chanmq.Queue) *queueCounter {
	ctx, cancel := context.WithCancel(context.Background())
	c := &queueCounter{seen: map[int]int{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			b, _, err := q.Receive(ctx)
			if err != nil {
				return
			}
			c.mu.Lock()
			k := msgNumber(b)
			if c.seen[k]++; c.seen[k] == 1 {
				c.unique.Add(1)
			}
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Stop(0) })
	return c
}

// Unique is how many distinct messages arrived so far.
func (c *queueCounter) Unique() int64 { return c.unique.Load() }

// Stop stops receiving and tallies what arrived of n messages.
func (c *queueCounter) Stop(n int) counts {
	c.stop()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return tally(n, c.seen)
}
