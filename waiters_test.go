//go:build linux

package chanmq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/testutil"
	"golang.org/x/sys/unix"
)

// Many waiters on one queue: concurrent senders and receivers, Close
// waking whoever waits, no OS thread per waiter, and the fallback wait for
// descriptors the netpoller cannot watch.

// --- Concurrency ------------------------------------------------------------------

func TestConcurrentSendReceiveDeliversEachMessageOnce(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t) // 4 slots: senders and receivers block often
	const senders, receivers, perSender = 8, 8, 200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var sendWG, recvWG sync.WaitGroup
	sendErrs := make(chan error, senders)
	for s := range senders {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			for i := range perSender {
				m := []byte(fmt.Sprintf("s%d-m%d", s, i))
				var err error
				if i%4 == 3 {
					for err = q.TrySend(m, uint(i%3)); errors.Is(err, ErrFull); err = q.TrySend(m, uint(i%3)) {
						runtime.Gosched()
					}
				} else {
					err = q.Send(ctx, m, uint(i%3))
				}
				if err != nil {
					sendErrs <- err
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	got := map[string]int{}
	total := 0
	recvErrs := make(chan error, receivers)
	for r := range receivers {
		recvWG.Add(1)
		go func() {
			defer recvWG.Done()
			buf := make([]byte, q.MessageSize())
			for {
				var m []byte
				var err error
				if r%2 == 0 {
					m, _, err = q.Receive(ctx)
				} else {
					var n int
					n, _, err = q.ReceiveInto(ctx, buf)
					m = buf[:n]
				}
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						recvErrs <- err
					}
					return
				}
				mu.Lock()
				got[string(m)]++
				total++
				if total == senders*perSender {
					cancel() // everything arrived: stop the receivers
				}
				mu.Unlock()
			}
		}()
	}
	sendWG.Wait()
	close(sendErrs)
	for err := range sendErrs {
		t.Errorf("send: %v", err)
	}
	if !testutil.Returns(recvWG.Wait) {
		cancel()
		recvWG.Wait()
		t.Fatalf("receivers got %d of %d messages within %v", total, senders*perSender, testutil.Patience)
	}
	close(recvErrs)
	for err := range recvErrs {
		t.Errorf("receive: %v", err)
	}
	for s := range senders {
		for i := range perSender {
			m := fmt.Sprintf("s%d-m%d", s, i)
			if got[m] != 1 {
				t.Errorf("message %s received %d times, want 1", m, got[m])
			}
		}
	}
	if len(got) != senders*perSender {
		t.Errorf("received %d distinct messages, want %d", len(got), senders*perSender)
	}
}

// --- Close ----------------------------------------------------------------------

func TestCloseWakesBlockedReceiveWithErrClosed(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	a := goReceive(context.Background(), q) // turn holder, on the netpoller
	waitParked(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := goReceiveInto(ctx, q) // waiting for the turn
	waitParked(t, 2)
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, ch := range []<-chan callResult{a, b} {
		if r := await(t, ch, "Receive blocked at Close"); !errors.Is(r.err, ErrClosed) {
			t.Fatalf("Receive blocked at Close = %q %v, want ErrClosed", r.msg, r.err)
		}
	}
}

func TestCloseWakesBlockedSendWithErrClosed(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	fillQueue(t, q)
	a := goSend(context.Background(), q, []byte("a"), 0)
	waitParked(t, 1)
	b := goSend(context.Background(), q, []byte("b"), 0)
	waitParked(t, 2)
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, ch := range []<-chan callResult{a, b} {
		if r := await(t, ch, "Send blocked at Close"); !errors.Is(r.err, ErrClosed) {
			t.Fatalf("Send blocked at Close = %v, want ErrClosed", r.err)
		}
	}
	// The kernel queue lives on with exactly the messages sent before.
	q2, err := Open(q.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if n := q2.Len(); n != q2.Cap() {
		t.Fatalf("reopened queue holds %d, want %d", n, q2.Cap())
	}
}

func TestCallsAfterCloseReturnErrClosed(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	if err := q.TrySend([]byte("left in kernel"), 0); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	buf := make([]byte, q.MessageSize())
	for name, fn := range map[string]func() error{
		"Send":           func() error { return q.Send(ctx, []byte("x"), 0) },
		"TrySend":        func() error { return q.TrySend([]byte("x"), 0) },
		"Receive":        func() error { _, _, err := q.Receive(ctx); return err },
		"ReceiveInto":    func() error { _, _, err := q.ReceiveInto(ctx, buf); return err },
		"TryReceive":     func() error { _, _, err := q.TryReceive(); return err },
		"TryReceiveInto": func() error { _, _, err := q.TryReceiveInto(buf); return err },
		"Attr":           func() error { _, err := q.Attr(); return err },
	} {
		err := fn()
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		} else if !strings.HasPrefix(err.Error(), "chanmq: ") || !strings.Contains(err.Error(), q.Name()+": queue closed") {
			t.Errorf("%s after Close: error text %q", name, err)
		}
	}
	if q.Len() != 0 {
		t.Errorf("Len after Close = %d, want 0", q.Len())
	}
}

func TestCloseTwiceAndConcurrentCloseAreSafe(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	blocked := goReceive(context.Background(), q)
	waitParked(t, 1)
	const closers = 8
	errs := make(chan error, closers)
	var start sync.WaitGroup
	start.Add(1)
	for range closers {
		go func() { start.Wait(); errs <- q.Close() }()
	}
	start.Done()
	for range closers {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Close = %v, want nil", err)
		}
	}
	if err := q.Close(); err != nil {
		t.Errorf("Close after Close = %v, want nil", err)
	}
	if r := await(t, blocked, "Receive blocked at Close"); !errors.Is(r.err, ErrClosed) {
		t.Fatalf("Receive blocked at Close = %v, want ErrClosed", r.err)
	}
}

// --- No thread per waiter ---------------------------------------------------

// osThreads returns the number of OS threads of this process.
func osThreads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("cannot read /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("Threads line %q: %v", line, err)
			}
			return n
		}
	}
	t.Skip("/proc/self/status has no Threads line")
	return 0
}

// Not parallel: it opens 200 of the machine's 256 queues (queues_max), so it
// must not run alongside other tests of this package that open queues.
func TestBlockedReceiversDoNotHoldThreads(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 200 queues; skipped in -short mode")
	}
	const nQueues, perQueue, maxThreads = 200, 5, 20
	queues := make([]*Queue, 0, nQueues)
	defer func() {
		for _, q := range queues {
			_ = q.Close()
			_ = Unlink(q.Name())
		}
	}()
	for i := range nQueues {
		q, err := CreateTemp(testPrefix, MaxMessages(1), MessageSize(16))
		if err != nil {
			if errors.Is(err, ErrLimit) || errors.Is(err, unix.ENOSPC) {
				t.Skipf("the machine ran out of queues after %d of %d (queues_max is shared by everyone here): %v", i, nQueues, err)
			}
			t.Fatalf("CreateTemp #%d: %v", i, err)
		}
		queues = append(queues, q)
	}
	results := make(chan error, nQueues*perQueue)
	var wg sync.WaitGroup
	for _, q := range queues {
		for range perQueue {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := q.Receive(context.Background())
				results <- err
			}()
		}
	}
	waitParked(t, nQueues*perQueue)
	if n := osThreads(t); n >= maxThreads {
		t.Errorf("%d goroutines blocked in Receive on %d queues: the process has %d OS threads, want < %d", nQueues*perQueue, nQueues, n, maxThreads)
	} else {
		t.Logf("%d blocked receivers, %d OS threads", nQueues*perQueue, n)
	}
	for _, q := range queues {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if !testutil.Returns(wg.Wait) {
		t.Fatalf("receivers still running %v after Close", testutil.Patience)
	}
	close(results)
	for err := range results {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Receive ended with %v, want ErrClosed", err)
		}
	}
	if n := countParked(goroutineID()); n != 0 {
		t.Fatalf("%d goroutines still parked after Close", n)
	}
}

// --- The fallback wait ---------------------------------------------------------

// fallbackQueue opens a test queue in the blocking fallback mode. The
// Queue takes the mode from the global forceFallback at Open, which is
// reset at once (callers are serial tests, so no parallel test opens a
// queue meanwhile), and switches to it when a caller first waits.
func fallbackQueue(t *testing.T) *Queue {
	t.Helper()
	forceFallback.Store(true)
	q := func() *Queue {
		defer forceFallback.Store(false)
		return newTestQueue(t)
	}()
	if !q.fallback {
		t.Fatal("forceFallback did not select the fallback wait")
	}
	return q
}

// Not parallel: it sets the package-global forceFallback around Open.
func TestFallbackWait(t *testing.T) {
	t.Run("round-trip", func(t *testing.T) {
		q := fallbackQueue(t)
		ctx := context.Background()
		recv := goReceive(ctx, q)
		waitParked(t, 1)
		if err := q.Send(ctx, []byte("fallback"), 4); err != nil {
			t.Fatal(err)
		}
		if r := await(t, recv, "fallback Receive"); r.err != nil || string(r.msg) != "fallback" || r.prio != 4 {
			t.Fatalf("fallback Receive = %q prio %d %v", r.msg, r.prio, r.err)
		}
		fillQueue(t, q)
		if err := q.TrySend([]byte("x"), 0); !errors.Is(err, ErrFull) {
			t.Fatalf("fallback TrySend on full = %v, want ErrFull", err)
		}
		send := goSend(ctx, q, []byte("waited"), 9)
		waitParked(t, 1)
		if _, _, err := q.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		if r := await(t, send, "fallback Send"); r.err != nil {
			t.Fatalf("fallback Send = %v", r.err)
		}
		if m, p, err := q.TryReceive(); err != nil || string(m) != "waited" || p != 9 {
			t.Fatalf("TryReceive = %q prio %d %v, want \"waited\" prio 9", m, p, err)
		}
		drainQueue(t, q)
		if _, _, err := q.TryReceive(); !errors.Is(err, ErrEmpty) {
			t.Fatalf("fallback TryReceive on empty = %v, want ErrEmpty", err)
		}
	})
	t.Run("cancel-during-wait", func(t *testing.T) {
		q := fallbackQueue(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		recv := goReceive(ctx, q)
		waitParked(t, 1)
		cancel()
		if r := await(t, recv, "fallback Receive"); !errors.Is(r.err, context.Canceled) {
			t.Fatalf("fallback Receive cancelled = %v, want context.Canceled", r.err)
		}
	})
	t.Run("close-wakes-waiters", func(t *testing.T) {
		q := fallbackQueue(t)
		recv := goReceive(context.Background(), q)
		waitParked(t, 1)
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if r := await(t, recv, "fallback Receive"); !errors.Is(r.err, ErrClosed) {
			t.Fatalf("fallback Receive at Close = %v, want ErrClosed", r.err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		q := fallbackQueue(t)
		const timeout = 150 * time.Millisecond // see TestDeadlineExceededAfterTimeout
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, _, err := q.Receive(ctx)
		if elapsed := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || elapsed < timeout {
			t.Fatalf("fallback Receive = %v after %v, want DeadlineExceeded after >= %v", err, elapsed, timeout)
		}
	})
}
