//go:build linux

package chanmq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Cancellation and deadlines: each caller's context ends its own wait and
// no other, and nothing is taken or queued by a call that gave up.

// --- Cancellation ------------------------------------------------------------

// blockingOp is a call that blocks on a prepared queue: Receive or
// ReceiveInto on an empty queue, Send on a full one.
type blockingOp struct {
	name    string
	prepare func(t *testing.T, q *Queue)                          // make the call block
	start   func(ctx context.Context, q *Queue) <-chan callResult // run it
	check   func(t *testing.T, q *Queue)                          // nothing lost or added
}

func blockingOps() []blockingOp {
	emptyStill := func(t *testing.T, q *Queue) {
		t.Helper()
		if n := q.Len(); n != 0 {
			t.Fatalf("Len = %d after a cancelled receive, want 0", n)
		}
	}
	return []blockingOp{
		{"Receive", func(*testing.T, *Queue) {}, goReceive, emptyStill},
		{"ReceiveInto", func(*testing.T, *Queue) {}, goReceiveInto, emptyStill},
		{"Send",
			func(t *testing.T, q *Queue) { fillQueue(t, q) },
			func(ctx context.Context, q *Queue) <-chan callResult {
				return goSend(ctx, q, []byte("cancelled send"), 7)
			},
			func(t *testing.T, q *Queue) {
				t.Helper()
				for _, m := range drainQueue(t, q) {
					if string(m.Data) == "cancelled send" {
						t.Fatal("a cancelled Send queued its message")
					}
				}
			}},
	}
}

// forEachBlockingOp runs test as a parallel subtest for each blocking
// operation, on a new queue prepared so that the operation blocks, and
// then checks that nothing was lost or added.
func forEachBlockingOp(t *testing.T, test func(t *testing.T, op blockingOp, q *Queue)) {
	for _, op := range blockingOps() {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t)
			op.prepare(t, q)
			test(t, op, q)
			op.check(t, q)
		})
	}
}

func TestCancelBeforeCallReturnsCtxErr(t *testing.T) {
	t.Parallel()
	forEachBlockingOp(t, func(t *testing.T, op blockingOp, q *Queue) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := await(t, op.start(ctx, q), op.name)
		if !errors.Is(r.err, context.Canceled) || !errors.Is(r.err, ctx.Err()) {
			t.Fatalf("%s with a cancelled ctx = %v, want context.Canceled", op.name, r.err)
		}
		var e *Error
		if !errors.As(r.err, &e) || e.Name != q.Name() {
			t.Fatalf("%s error %#v is not an *Error naming the queue", op.name, r.err)
		}
	})
}

func TestCancelDuringWaitReturnsCtxErr(t *testing.T) {
	t.Parallel()
	forEachBlockingOp(t, func(t *testing.T, op blockingOp, q *Queue) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := op.start(ctx, q)
		waitParked(t, 1)
		cancel()
		r := await(t, ch, op.name)
		if !errors.Is(r.err, context.Canceled) || !errors.Is(r.err, ctx.Err()) {
			t.Fatalf("%s cancelled while blocked = %v, want context.Canceled", op.name, r.err)
		}
	})
}

func TestDeadlineExceededAfterTimeout(t *testing.T) {
	t.Parallel()
	// 150ms: long enough that returning early would be visible, short
	// enough to keep the test quick; there is no upper bound but testutil.Patience.
	const timeout = 150 * time.Millisecond
	forEachBlockingOp(t, func(t *testing.T, op blockingOp, q *Queue) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		r := await(t, op.start(ctx, q), op.name)
		elapsed := time.Since(start)
		if !errors.Is(r.err, context.DeadlineExceeded) || !errors.Is(r.err, ctx.Err()) {
			t.Fatalf("%s past its deadline = %v, want context.DeadlineExceeded", op.name, r.err)
		}
		if elapsed < timeout {
			t.Fatalf("%s gave up after %v, before its %v timeout", op.name, elapsed, timeout)
		}
		var e *Error
		if !errors.As(r.err, &e) || !e.Timeout() {
			t.Fatalf("%s error %v: Timeout() should be true", op.name, r.err)
		}
	})
}

func TestCancelCauseIsReachableWithErrorsIs(t *testing.T) {
	t.Parallel()
	forEachBlockingOp(t, func(t *testing.T, op blockingOp, q *Queue) {
		cause := errors.New("shutting down for maintenance")
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		ch := op.start(ctx, q)
		waitParked(t, 1)
		cancel(cause)
		r := await(t, ch, op.name)
		if !errors.Is(r.err, cause) || !errors.Is(r.err, context.Canceled) {
			t.Fatalf("%s = %v, want both the cause and context.Canceled", op.name, r.err)
		}
		if !strings.Contains(r.err.Error(), cause.Error()) {
			t.Fatalf("error text %q does not give the cause", r.err)
		}
	})
}

// --- Isolation of callers -----------------------------------------------------

// startThreeParked starts three calls, each with a context of its own
// (cancelled when t ends) and each seen parked before the next starts: call
// 0 holds the turn, parked on the netpoller, and calls 1 and 2 wait for it.
func startThreeParked(t *testing.T, start func(ctx context.Context, i int) <-chan callResult) (chans [3]<-chan callResult, cancels [3]context.CancelFunc) {
	t.Helper()
	for i := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		cancels[i] = cancel
		chans[i] = start(ctx, i)
		waitParked(t, i+1)
	}
	return chans, cancels
}

// othersStillParked fails t unless the two calls other than victim are
// parked and have not returned.
func othersStillParked(t *testing.T, chans [3]<-chan callResult, victim int, op string) {
	t.Helper()
	waitParked(t, 2)
	for i := range 3 {
		if i != victim {
			stillBlocked(t, chans[i], fmt.Sprintf("%s %d", op, i))
		}
	}
}

// forEachVictim runs test as a parallel subtest, on a new queue, for each
// of three waiting calls that the test cancels (the victim).
func forEachVictim(t *testing.T, name string, test func(t *testing.T, victim int, q *Queue)) {
	for victim := range 3 {
		t.Run(fmt.Sprintf("%s-%d", name, victim), func(t *testing.T) {
			t.Parallel()
			test(t, victim, newTestQueue(t))
		})
	}
}

func TestCancelOneReceiverLeavesOthersWaiting(t *testing.T) {
	t.Parallel()
	// victim 0 is the turn holder, parked on the netpoller (it started
	// first and was seen parked before the others started); victim 1 and 2
	// wait for the turn.
	forEachVictim(t, "cancel-receiver", func(t *testing.T, victim int, q *Queue) {
		chans, cancels := startThreeParked(t, func(ctx context.Context, _ int) <-chan callResult { return goReceive(ctx, q) })
		cancels[victim]()
		r := await(t, chans[victim], "the cancelled Receive")
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("cancelled Receive = %q %v, want context.Canceled", r.msg, r.err)
		}
		// The others are still parked: cancelling one ended no other wait.
		othersStillParked(t, chans, victim, "Receive")
		// And they still receive what is sent afterwards.
		want := map[string]bool{"after-1": true, "after-2": true}
		for m := range want {
			if err := q.TrySend([]byte(m), 0); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			if i == victim {
				continue
			}
			r := await(t, chans[i], fmt.Sprintf("Receive %d", i))
			if r.err != nil || !want[string(r.msg)] {
				t.Fatalf("Receive %d = %q %v, want one of the messages sent after the cancel", i, r.msg, r.err)
			}
			delete(want, string(r.msg))
		}
	})
}

func TestCancelOneSenderLeavesOthersWaiting(t *testing.T) {
	t.Parallel()
	forEachVictim(t, "cancel-sender", func(t *testing.T, victim int, q *Queue) {
		fill := fillQueue(t, q)
		chans, cancels := startThreeParked(t, func(ctx context.Context, i int) <-chan callResult {
			return goSend(ctx, q, []byte(fmt.Sprintf("sender-%d", i)), 0)
		})
		cancels[victim]()
		if r := await(t, chans[victim], "the cancelled Send"); !errors.Is(r.err, context.Canceled) {
			t.Fatalf("cancelled Send = %v, want context.Canceled", r.err)
		}
		othersStillParked(t, chans, victim, "Send")
		// Make room for the two survivors, one message at a time.
		var got []string
		for range 2 {
			m, _, err := q.Receive(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(m))
		}
		for i := range 3 {
			if i == victim {
				continue
			}
			if r := await(t, chans[i], fmt.Sprintf("Send %d", i)); r.err != nil {
				t.Fatalf("Send %d = %v, want nil once there was room", i, r.err)
			}
		}
		for _, m := range drainQueue(t, q) {
			got = append(got, string(m.Data))
		}
		var want []string
		for _, m := range fill {
			want = append(want, string(m))
		}
		for i := range 3 {
			if i != victim {
				want = append(want, fmt.Sprintf("sender-%d", i))
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("queue held %q, want %q", got, want)
		}
	})
}

func TestDeadlineOfOneReceiverDoesNotCutAnothersWait(t *testing.T) {
	t.Parallel()
	// 200ms: visible if returned early; the test never waits on it
	// otherwise (only testutil.Patience bounds a hang).
	const timeout = 200 * time.Millisecond
	for _, deadlineFirst := range []bool{true, false} {
		label := "deadline-waiter-holds-turn"
		if !deadlineFirst {
			label = "deadline-waiter-queued-for-turn"
		}
		t.Run(label, func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t)
			var deadline time.Time
			start := func(withDeadline bool) (<-chan callResult, context.CancelFunc) {
				if withDeadline {
					ctx, cancel := context.WithTimeout(context.Background(), timeout)
					deadline, _ = ctx.Deadline()
					return goReceive(ctx, q), cancel
				}
				ctx, cancel := context.WithCancel(context.Background())
				return goReceive(ctx, q), cancel
			}
			first, cancel1 := start(deadlineFirst)
			defer cancel1()
			waitParked(t, 1)
			second, cancel2 := start(!deadlineFirst)
			defer cancel2()
			timed, patient := first, second
			if !deadlineFirst {
				timed, patient = second, first
			}
			r := await(t, timed, "the Receive with a deadline")
			// Measured against the ctx's own deadline: the goroutine starts a
			// moment after the ctx, so its elapsed time may be a hair short.
			if !errors.Is(r.err, context.DeadlineExceeded) || r.at.Before(deadline) {
				t.Fatalf("Receive with deadline = %v, %v before its deadline; want DeadlineExceeded at or after the deadline", r.err, deadline.Sub(r.at))
			}
			waitParked(t, 1)
			stillBlocked(t, patient, "the Receive without a deadline")
			if err := q.TrySend([]byte("late"), 0); err != nil {
				t.Fatal(err)
			}
			if r := await(t, patient, "the Receive without a deadline"); r.err != nil || string(r.msg) != "late" {
				t.Fatalf("Receive without a deadline = %q %v, want \"late\"", r.msg, r.err)
			}
		})
	}
}

// --- Monotonic deadlines ---------------------------------------------------------

// TestDeadlineIgnoresWallClockJump steps CLOCK_REALTIME an hour forward
// while a Receive with a 300ms timeout is parked: the Receive must still end
// after about 300ms, neither at once (deadline cut) nor in an hour (stretched).
// It changes the machine's clock, so it runs only as root with
// CHANMQ_CLOCK_TESTS=1, and puts the clock back before it returns.
func TestDeadlineIgnoresWallClockJump(t *testing.T) {
	if os.Getenv("CHANMQ_CLOCK_TESTS") != "1" {
		t.Skip("steps the system clock; set CHANMQ_CLOCK_TESTS=1 (as root) to run it")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to set CLOCK_REALTIME")
	}
	const timeout, jump = 300 * time.Millisecond, time.Hour
	q := newTestQueue(t)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	recv := goReceive(ctx, q)
	waitParked(t, 1)

	var before unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &before); err != nil {
		t.Fatal(err)
	}
	jumpedAt := time.Now() // its monotonic reading measures the time since
	ahead := unix.NsecToTimespec(before.Nano() + int64(jump))
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ahead); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("setting CLOCK_REALTIME is not allowed here: %v", err)
		}
		t.Fatalf("ClockSettime: %v", err)
	}
	var restoreOnce sync.Once
	restore := func() {
		restoreOnce.Do(func() {
			back := unix.NsecToTimespec(before.Nano() + int64(time.Since(jumpedAt)))
			if err := unix.ClockSettime(unix.CLOCK_REALTIME, &back); err != nil {
				t.Errorf("restoring CLOCK_REALTIME: %v (the clock is an hour ahead; fix it by hand)", err)
			}
		})
	}
	defer restore()

	r := await(t, recv, "Receive across a clock jump")
	elapsed := time.Since(start)
	restore()
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("Receive = %q %v, want DeadlineExceeded", r.msg, r.err)
	}
	// The upper bound is generous for a noisy machine; a stretched deadline
	// would take an hour, and one measured on the wall clock would end at once.
	if elapsed < timeout || elapsed > timeout+5*time.Second {
		t.Fatalf("Receive ended after %v, want about %v", elapsed, timeout)
	}
	t.Logf("Receive with a %v timeout ended after %v across a %v clock step", timeout, elapsed, jump)
}
