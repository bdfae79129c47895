//go:build linux

package chanmq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/testutil"
)

// These tests pin down the holes an adversarial review found in the
// adapter (issue "Reliability, round two"): each failed before its fix.

// Once C is closed, Err is final: a Receiver on a ReadOnly queue whose
// Close cannot put the held message back reports it, every time, or the
// message reached C. delivered + carried in Err = sent, in every round.
func TestReceiverErrIsFinalOnceCIsClosed(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	rounds := 400
	if testing.Short() {
		rounds = 100
	}
	for i := range rounds {
		want := fmt.Sprintf("round %d", i)
		if err := q.Send(context.Background(), []byte(want), 0); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		rx, err := OpenReceiver(ctx, q.Name(), ReadOnly())
		if err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, "the pump to take the message", func() bool { return q.Len() == 0 })
		cancel()
		var got []string
		for m := range rx.C {
			got = append(got, string(m))
		}
		err = rx.Err() // no Wait: C's close alone must publish the result
		for _, m := range carriedMessages(err) {
			got = append(got, string(m.Data))
		}
		if len(got) != 1 || got[0] != want {
			t.Fatalf("round %d: delivered+carried = %q (Err %v), want exactly %q", i, got, err, want)
		}
		if len(carriedMessages(err)) == 1 && !errors.Is(err, ErrReadOnly) {
			t.Fatalf("round %d: Err = %v, want it to say the queue is read-only", i, err)
		}
	}
}

// A Sender's Err is nil while it runs and, once Done is closed, what Wait
// returns; a MessageReceiver's Err is final once its C is closed.
func TestSenderErrAndMessageReceiverErrAreFinalOnceStopped(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(1))
	ctx, cancel := context.WithCancel(context.Background())
	tx := q.Sender(ctx)
	tx.C <- []byte("queued")
	tx.C <- []byte("in hand")
	if err := tx.Err(); err != nil {
		t.Fatalf("Err while running = %v, want nil", err)
	}
	cancel()
	<-tx.Done()
	defer close(tx.C)
	var ue *UnsentError[[]byte]
	if err := tx.Err(); !errors.As(err, &ue) || len(ue.Values) != 1 || string(ue.Values[0]) != "in hand" {
		t.Fatalf("Err after Done = %v, want the message in hand", err)
	}

	ro, err := Open(q.Name(), ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	rx := ro.MessageReceiver(rctx)
	testutil.WaitFor(t, "the pump to take the message", func() bool { return q.Len() == 0 })
	rcancel()
	for range rx.C {
		t.Fatal("the message reached C after cancel with nobody reading") // possible only if the select raced; C is unbuffered and unread
	}
	if err := rx.Err(); err != nil {
		t.Fatalf("Err = %v, want nil: the message is held by the Queue", err)
	}
	if err := ro.Close(); len(carriedMessages(err)) != 1 {
		t.Fatalf("Close = %v, want the held message returned (read-only)", err)
	}
}

// A pump that stops hands its messages to a Receive that was already
// parked on the empty kernel queue, at once.
func TestHeldMessagesWakeAReceiveAlreadyWaiting(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"Receive", "ReceiveInto", "Receiver"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t)
			sendN(t, q, 1, "held %d")
			pctx, stopPump := context.WithCancel(context.Background())
			pump := q.Receiver(pctx) // takes the message and waits for a reader
			testutil.WaitFor(t, "the pump to take the message", func() bool { return q.Len() == 0 })

			got := make(chan string, 1)
			ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
			defer cancel()
			switch how {
			case "Receive":
				go func() { m, _, err := q.Receive(ctx); got <- fmt.Sprint(string(m), err) }()
			case "ReceiveInto":
				go func() {
					buf := make([]byte, q.MessageSize())
					n, _, err := q.ReceiveInto(ctx, buf)
					got <- fmt.Sprint(string(buf[:n]), err)
				}()
			case "Receiver":
				rx := q.Receiver(ctx)
				go func() { m := <-rx.C; got <- fmt.Sprint(string(m), rx.Err()) }()
			}
			waitParked(t, 1)
			stopPump()
			if err := pump.Wait(); err != nil {
				t.Fatal(err)
			}
			select {
			case s := <-got:
				if s != "held 0<nil>" {
					t.Fatalf("waiting %s got %q, want the held message", how, s)
				}
			case <-time.After(testutil.Patience):
				t.Fatalf("a %s already waiting never got the held message", how)
			}
		})
	}
}

// FIFO within a priority survives any number of pump stops: pumps take
// messages from the held list and give them back, and the order is always
// the order in which they left the kernel queue.
func TestHeldOrderSurvivesPumpStops(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(8))
	sent := sendN(t, q, 5, "m%d")

	// Pump A holds m0..m4 (four in C's buffer, one in hand).
	actx, stopA := context.WithCancel(context.Background())
	a := q.Receiver(actx, Buffer(4))
	testutil.WaitFor(t, "pump A to take every message", func() bool { return q.Len() == 0 })
	stopA()
	_ = a.Wait()

	// Pump B takes m0..m2 from the held list (two buffered, one in hand).
	bctx, stopB := context.WithCancel(context.Background())
	b := q.Receiver(bctx, Buffer(2))
	testutil.WaitFor(t, "pump B to take three", func() bool { return q.held.n.Load() == 2 })
	stopB()
	_ = b.Wait()
	checkSameMessages(t, tryReceiveN(t, q, 5), sent)

	// Many pumps, random buffers, a random number read by a consumer
	// before each stop, interleaved with direct receives.
	rng := rand.New(rand.NewPCG(1, 2))
	var want, got [][]byte
	for round := range 200 {
		for len(want)-len(got) < 6 {
			m := []byte(fmt.Sprintf("r%d-%d", round, len(want)))
			if err := q.Send(context.Background(), m, 0); err != nil {
				t.Fatal(err)
			}
			want = append(want, m)
		}
		ctx, stop := context.WithCancel(context.Background())
		rx := q.Receiver(ctx, Buffer(rng.IntN(4)))
		for range rng.IntN(3) {
			got = append(got, <-rx.C)
		}
		stop()
		if err := rx.Wait(); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(3) == 0 {
			m, _, err := q.Receive(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, m)
		}
	}
	for len(got) < len(want) {
		m, _, err := q.TryReceive()
		if err != nil {
			t.Fatalf("after %d of %d: %v", len(got), len(want), err)
		}
		got = append(got, m)
	}
	checkSameMessages(t, got, want)
}

// Held messages come first, before newer messages of any priority: they
// already left the kernel queue, and the next receive takes them in the
// order they left it. Close puts them back with their own priority.
func TestHeldMessagesComeBeforeNewerHigherPriorityMessages(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sent := sendN(t, q, 2, "old %d")
	stopReceiverHolding(t, q, 2, 0)
	if err := q.Send(context.Background(), []byte("new urgent"), 9); err != nil {
		t.Fatal(err)
	}
	got := tryReceiveN(t, q, 3)
	checkSameMessages(t, got, append(sent, []byte("new urgent")))
}

// stopReceiverHolding starts a Receiver that takes n queued messages (n-1
// buffered, one in hand) and leaves kernelLeft in the kernel queue, then
// stops it: the Queue holds the n messages.
func stopReceiverHolding(t *testing.T, q *Queue, n, kernelLeft int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rx := q.Receiver(ctx, Buffer(n-1))
	testutil.WaitFor(t, "the pump to take its messages", func() bool { return q.Len() == kernelLeft })
	cancel()
	if err := rx.Wait(); err != nil {
		t.Fatal(err)
	}
}

// A call whose ctx is already done takes nothing and queues nothing, even
// when a message is waiting (in the kernel or held) or there is room.
func TestDoneContextTakesNothingAndQueuesNothing(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for name, ctx := range map[string]context.Context{"cancelled": cancelled, "deadline passed": expired} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t)
			sendN(t, q, 2, "m%d")
			stopReceiverHolding(t, q, 1, 1) // one held, one in the kernel
			if n, held := q.Len(), q.held.n.Load(); n != 1 || held != 1 {
				t.Fatalf("setup: %d in the kernel, %d held; want 1 and 1", n, held)
			}
			want := ctx.Err()
			if _, _, err := q.Receive(ctx); !errors.Is(err, want) {
				t.Errorf("Receive = %v, want %v", err, want)
			}
			if _, _, err := q.ReceiveInto(ctx, make([]byte, q.MessageSize())); !errors.Is(err, want) {
				t.Errorf("ReceiveInto = %v, want %v", err, want)
			}
			for _, err := range q.All(ctx) {
				if !errors.Is(err, want) {
					t.Errorf("All yielded %v, want %v", err, want)
				}
			}
			for _, err := range q.Messages(ctx) {
				if !errors.Is(err, want) {
					t.Errorf("Messages yielded %v, want %v", err, want)
				}
			}
			rx := q.Receiver(ctx, Buffer(2))
			if got := waitClosed(t, rx.C); len(got) != 0 {
				t.Errorf("a Receiver with a done ctx delivered %q", got)
			}
			if err := q.Send(ctx, []byte("x"), 0); !errors.Is(err, want) {
				t.Errorf("Send = %v, want %v", err, want)
			}
			if n, held := q.Len(), q.held.n.Load(); n != 1 || held != 1 {
				t.Errorf("after the calls: %d in the kernel, %d held; want 1 and 1 (nothing taken, nothing queued)", n, held)
			}
		})
	}
}

// Ranging over All stops taking messages at the first step after cancel,
// however busy the producer keeps the queue.
func TestAllStopsTakingAfterCancelWhileTheProducerKeepsGoing(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	pctx, stopProducer := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			if q.Send(pctx, []byte(fmt.Sprint(i)), 0) != nil {
				return
			}
		}
	}()
	defer func() { stopProducer(); wg.Wait() }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	taken, afterCancel := 0, 0
	for _, err := range q.All(ctx) {
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("All ended with %v, want context.Canceled", err)
			}
			break
		}
		if ctx.Err() != nil {
			afterCancel++
		}
		if taken++; taken == 20 {
			cancel()
		}
	}
	if taken != 20 || afterCancel != 0 {
		t.Fatalf("took %d messages (%d after cancel), want 20 and none after cancel", taken, afterCancel)
	}
}

// deadlineOnlyContext has a deadline but never closes Done: legal for a
// Context, and a trap for code that waits on Done once the deadline passed.
type deadlineOnlyContext struct {
	context.Context
	deadline time.Time
	done     chan struct{}
}

func (c deadlineOnlyContext) Deadline() (time.Time, bool) { return c.deadline, true }
func (c deadlineOnlyContext) Done() <-chan struct{}       { return c.done }
func (c deadlineOnlyContext) Err() error                  { return nil }

// A wait ends promptly whatever the context does: with a context whose
// deadline passes but whose Done is never closed, Receive and a Receiver
// end by themselves (the deadline passed before the call, or while it was
// parked); with one whose deadline is far off, Close ends both (Close
// waits for the pump, so a pump stuck on Done would hang Close).
func TestWaitsEndWhateverTheContextDoes(t *testing.T) {
	t.Parallel()
	for _, lead := range []time.Duration{-time.Second, 50 * time.Millisecond, time.Hour} {
		t.Run(fmt.Sprint(lead), func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t)
			ctx := deadlineOnlyContext{Context: context.Background(), deadline: time.Now().Add(lead), done: make(chan struct{})}
			rx := q.Receiver(ctx)
			res := make(chan error, 1)
			go func() { _, _, err := q.Receive(ctx); res <- err }()
			if lead == time.Hour {
				waitParked(t, 2) // the Receive and the pump's
				closed := make(chan error, 1)
				go func() { closed <- q.Close() }()
				select {
				case err := <-closed:
					if err != nil {
						t.Fatalf("Close = %v", err)
					}
				case <-time.After(testutil.Patience):
					t.Fatal("Close hung waiting for a pump whose context never closes Done")
				}
			}
			want := ErrClosed
			if lead != time.Hour {
				want = context.DeadlineExceeded
			}
			select {
			case err := <-res:
				if !errors.Is(err, want) {
					t.Fatalf("Receive = %v, want %v", err, want)
				}
			case <-time.After(testutil.Patience):
				t.Fatal("a Receive never ended")
			}
			select {
			case <-rx.Done():
			case <-time.After(testutil.Patience):
				t.Fatal("a Receiver never ended")
			}
			if got := waitClosed(t, rx.C); len(got) != 0 || rx.Err() != nil {
				t.Fatalf("Receiver: delivered %q, Err %v; want nothing and nil", got, rx.Err())
			}
		})
	}
}

// The held list is sorted by take order, so keep must put messages a pump
// took from it back in front of those still there.
func TestHolderKeepsTakeOrder(t *testing.T) {
	var h holder
	msg := func(seq uint64) heldMessage {
		return heldMessage{Message{Data: []byte(fmt.Sprint(seq))}, seq}
	}
	h.keep([]heldMessage{msg(3), msg(4), msg(5)})
	h.keep([]heldMessage{msg(1), msg(2)})
	h.keep([]heldMessage{msg(6)})
	var got []uint64
	for m, ok := h.pop(); ok; m, ok = h.pop() {
		got = append(got, m.seq)
	}
	if want := []uint64{1, 2, 3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Fatalf("pop order %v, want %v", got, want)
	}
}

// readAfter reads rx.C to its end, passing each value to take, in a
// goroutine (counted in reader) that starts once gate is closed. It returns
// rx.Done.
func readAfter[T any](rx *ReceiverOf[T], gate <-chan struct{}, reader *sync.WaitGroup, take func(T)) (stopped <-chan struct{}) {
	reader.Add(1)
	go func() {
		defer reader.Done()
		<-gate
		for v := range rx.C {
			take(v)
		}
	}()
	return rx.Done()
}

// A pump that stops while its reader is still receiving from C keeps each
// message it drains back exactly once: the reader and the drain both take
// from C's head, so what the pump drains is not simply the last values it
// sent. Delivered + held = sent, as a multiset, in every round.
func TestStopWhileAReaderIsStillReceivingKeepsEachMessageOnce(t *testing.T) {
	t.Parallel()
	rounds := 2000
	if testing.Short() || raceEnabled {
		rounds = 300
	}
	for _, kind := range []string{"bytes", "typed"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t, MaxMessages(8))
			jobs := Of(q, JSON[typedJob]())
			next := 0
			for round := range rounds {
				var want []string
				for range 8 {
					j := typedJob{Path: strconv.Itoa(next)}
					next++
					if err := jobs.Send(context.Background(), j, 0); err != nil {
						t.Fatal(err)
					}
					want = append(want, j.Path)
				}
				ctx, cancel := context.WithCancel(context.Background())
				gate := make(chan struct{})
				var got []string
				var reader sync.WaitGroup
				var stopped <-chan struct{}
				if kind == "bytes" {
					stopped = readAfter(q.Receiver(ctx, Buffer(6)), gate, &reader, func(m []byte) {
						j, err := jobs.codec.Decode(m)
						if err != nil {
							t.Error(err)
						}
						got = append(got, j.Path)
					})
				} else {
					stopped = readAfter(jobs.Receiver(ctx, Buffer(6)), gate, &reader, func(j typedJob) {
						got = append(got, j.Path)
					})
				}
				// The pump reads seven ahead; then the reader starts
				// taking from C just as the pump is told to stop.
				testutil.WaitFor(t, "the pump to read ahead", func() bool { return q.Len() == 1 })
				close(gate)
				cancel()
				<-stopped
				reader.Wait()
				for {
					j, _, err := jobs.TryReceive()
					if errors.Is(err, ErrEmpty) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, j.Path)
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("round %d: delivered+kept %v, want each of %v once", round, got, want)
				}
			}
		})
	}
}
