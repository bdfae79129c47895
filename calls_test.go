//go:build linux

package chanmq

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/testutil"
)

// Blocking calls run in goroutines of their own, and the event "the call
// is parked" that tests synchronise on instead of sleeping.

// callResult is the outcome of a blocking call run in its own goroutine.
type callResult struct {
	msg     []byte
	prio    uint
	err     error
	elapsed time.Duration // since the goroutine was started
	at      time.Time     // when the call returned
}

// goReceive runs q.Receive(ctx) in a new goroutine, started by the
// calling goroutine (waitParked relies on that), and delivers its outcome.
func goReceive(ctx context.Context, q *Queue) <-chan callResult {
	ch := make(chan callResult, 1)
	start := time.Now()
	go func() {
		m, p, err := q.Receive(ctx)
		ch <- callResult{msg: m, prio: p, err: err, elapsed: time.Since(start), at: time.Now()}
	}()
	return ch
}

// goReceiveInto is goReceive with ReceiveInto.
func goReceiveInto(ctx context.Context, q *Queue) <-chan callResult {
	ch := make(chan callResult, 1)
	start := time.Now()
	go func() {
		buf := make([]byte, q.MessageSize())
		n, p, err := q.ReceiveInto(ctx, buf)
		ch <- callResult{msg: buf[:n], prio: p, err: err, elapsed: time.Since(start), at: time.Now()}
	}()
	return ch
}

// goSend runs q.Send(ctx, msg, prio) in a new goroutine.
func goSend(ctx context.Context, q *Queue, msg []byte, prio uint) <-chan callResult {
	ch := make(chan callResult, 1)
	start := time.Now()
	go func() {
		err := q.Send(ctx, msg, prio)
		ch <- callResult{err: err, elapsed: time.Since(start), at: time.Now()}
	}()
	return ch
}

// await returns the outcome of a call, failing t if the call hangs.
func await(t testing.TB, ch <-chan callResult, what string) callResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(testutil.Patience):
		t.Fatalf("%s did not return within %v", what, testutil.Patience)
		return callResult{}
	}
}

// stillBlocked fails t if the call has returned.
func stillBlocked(t testing.TB, ch <-chan callResult, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s returned while it should still wait: msg %q prio %d err %v", what, r.msg, r.prio, r.err)
	default:
	}
}

// goroutineID returns the calling goroutine's id, as tracebacks print it.
func goroutineID() string {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	f := strings.Fields(string(buf[:n])) // "goroutine 23 [running]:"
	return f[1]
}

// countParked counts goroutines created by goroutine gid that are parked in a
// Queue wait: waiting for their direction's turn ([select]), parked on the
// netpoller ([IO wait]) or, in the fallback mode, inside the blocking
// syscall ([syscall]).
func countParked(gid string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, " in goroutine "+gid+"\n") || !strings.Contains(g, "chanmq.(*waiter).park") {
			continue
		}
		header, _, _ := strings.Cut(g, "\n")
		_, state, _ := strings.Cut(header, "[")
		state = strings.TrimSuffix(state, "]:")
		state, _, _ = strings.Cut(state, ",")
		switch state {
		case "select", "IO wait":
			count++
		case "syscall":
			if strings.Contains(g, "chanmq.(*waiter).waitBlocking") {
				count++
			}
		}
	}
	return count
}

// waitParked waits until n goroutines started by the calling goroutine are
// parked in a Queue wait. This is the event "the call is blocked" that the
// cancellation and isolation tests synchronise on, instead of sleeping.
func waitParked(t testing.TB, n int) {
	t.Helper()
	gid := goroutineID()
	var got int
	if !testutil.Eventually(func() bool { got = countParked(gid); return got == n }) {
		t.Fatalf("%d goroutines parked in a Queue wait after %v, want %d", got, testutil.Patience, n)
	}
}
