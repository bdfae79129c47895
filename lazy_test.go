//go:build linux

package chanmq

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/testutil"
)

// lzOpenFDs counts this process's descriptors that point at the queue
// called name (a unique temp name, so a reused number cannot fool it).
func lzOpenFDs(t *testing.T, name string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list descriptors: %v", err)
	}
	n := 0
	for _, e := range entries {
		if target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); target == name {
			n++
		}
	}
	return n
}

// A Queue whose callers never wait never registers its descriptor with the
// netpoller (registration makes every message queued wake a runtime thread;
// see register), and Close still closes the descriptor, exactly once.
func TestFastPathDoesNotRegister(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	ctx := context.Background()
	buf := make([]byte, q.MessageSize())
	for range 3 {
		if err := q.Send(ctx, []byte("a"), 1); err != nil {
			t.Fatal(err)
		}
		if err := q.TrySend([]byte("b"), 0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := q.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := q.ReceiveInto(ctx, buf); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := q.TryReceive(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("TryReceive on empty = %v, want ErrEmpty", err)
	}
	fillQueue(t, q)
	if err := q.TrySend([]byte("x"), 0); !errors.Is(err, ErrFull) {
		t.Fatalf("TrySend on full = %v, want ErrFull", err)
	}
	if _, err := q.Attr(); err != nil {
		t.Fatal(err)
	}
	if q.poll.Load() != nil {
		t.Fatal("a Queue that never waited registered its descriptor with the netpoller")
	}
	if n := lzOpenFDs(t, q.Name()); n != 1 {
		t.Fatalf("%d descriptors open on %s before Close, want 1", n, q.Name())
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if n := lzOpenFDs(t, q.Name()); n != 0 {
		t.Fatalf("%d descriptors open on %s after Close, want 0", n, q.Name())
	}
}

// A Queue used on the fast path first registers when a caller must wait,
// then parks, is woken by a message and by Close, and Close closes the
// descriptor through the file.
func TestWaitAfterFastPathRegisters(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	ctx := context.Background()
	if err := q.Send(ctx, []byte("fast"), 0); err != nil {
		t.Fatal(err)
	}
	if m, _, err := q.Receive(ctx); err != nil || string(m) != "fast" {
		t.Fatalf("Receive = %q %v", m, err)
	}
	if q.poll.Load() != nil {
		t.Fatal("registered before anyone waited")
	}

	recv := goReceive(ctx, q)
	waitParked(t, 1)
	p := q.poll.Load()
	if p == nil || !p.polled {
		t.Fatalf("a parked Receive left poller %+v, want a polled one", p)
	}
	if err := q.Send(ctx, []byte("woken"), 3); err != nil {
		t.Fatal(err)
	}
	if r := await(t, recv, "Receive"); r.err != nil || string(r.msg) != "woken" || r.prio != 3 {
		t.Fatalf("Receive = %q prio %d %v, want \"woken\" prio 3", r.msg, r.prio, r.err)
	}

	// The other direction shares the file: a Send on a full queue parks on it.
	fillQueue(t, q)
	send := goSend(ctx, q, []byte("late"), 0)
	waitParked(t, 1)
	if q.poll.Load() != p {
		t.Fatal("the send direction made a second poller")
	}
	recv = goReceive(ctx, q)
	if r := await(t, recv, "Receive"); r.err != nil {
		t.Fatal(r.err)
	}
	if r := await(t, send, "Send"); r.err != nil {
		t.Fatalf("Send = %v", r.err)
	}

	drainQueue(t, q)
	recv = goReceive(ctx, q)
	waitParked(t, 1)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if r := await(t, recv, "Receive"); !errors.Is(r.err, ErrClosed) {
		t.Fatalf("Receive at Close = %v, want ErrClosed", r.err)
	}
	if n := lzOpenFDs(t, q.Name()); n != 0 {
		t.Fatalf("%d descriptors open on %s after Close, want 0", n, q.Name())
	}
}

// Callers that race to wait first on a fresh Queue make one poller, and a
// Close racing with them wakes every one that parked.
func TestRegisterRacesWithCloseAndEachOther(t *testing.T) {
	t.Parallel()
	for range 20 {
		q := newTestQueue(t)
		ctx := context.Background()
		var calls []<-chan callResult
		for range 4 {
			calls = append(calls, goReceive(ctx, q), goSend(ctx, q, make([]byte, q.MessageSize()), 0))
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		for _, c := range calls {
			if r := await(t, c, "call racing Close"); r.err != nil && !errors.Is(r.err, ErrClosed) {
				t.Fatalf("call racing Close = %v, want nil or ErrClosed", r.err)
			}
		}
		if n := lzOpenFDs(t, q.Name()); n != 0 {
			t.Fatalf("%d descriptors open on %s after Close, want 0", n, q.Name())
		}
	}
}

// A Queue dropped without Close has its descriptor closed by the garbage
// collector, registered or not (the os.File did it for every Queue when
// all were registered at open).
func TestDroppedQueueClosesDescriptor(t *testing.T) {
	t.Parallel()
	for _, registered := range []bool{false, true} {
		// Not newTestQueue, whose cleanup keeps the Queue reachable.
		q, err := CreateTemp(testPrefix, MaxMessages(4), MessageSize(128))
		if err != nil {
			t.Fatal(err)
		}
		name := q.Name()
		t.Cleanup(func() { _ = Unlink(name) })
		if registered {
			if _, err := q.register(); err != nil {
				t.Fatal(err)
			}
		}
		q = nil
		deadline := time.Now().Add(testutil.Patience)
		for lzOpenFDs(t, name) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("registered=%v: the descriptor of a dropped Queue still open after %v", registered, testutil.Patience)
			}
			runtime.GC()
			time.Sleep(time.Millisecond)
		}
	}
}
