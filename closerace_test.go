//go:build linux

package chanmq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/testutil"
	"go.uber.org/goleak"
)

// Close racing with everything: direct calls, pumps, cancels and other
// Closes, with every message accounted for.

// msgLedger records message ids by what happened to them, for the
// conservation check: every message sent is received, still queued in
// the kernel, or returned inside an *UndeliveredError.
type msgLedger struct {
	mu                          sync.Mutex
	sent, received, undelivered []uint64
	damaged, unexpected         []error
	nextID                      uint64
}

func (l *msgLedger) id() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nextID++
	return l.nextID
}

func (l *msgLedger) add(list *[]uint64, id uint64) {
	l.mu.Lock()
	*list = append(*list, id)
	l.mu.Unlock()
}

func (l *msgLedger) receive(b []byte) {
	id, err := decodeCheckedMsg(b)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.damaged = append(l.damaged, err)
		return
	}
	l.received = append(l.received, id)
}

// undeliveredFrom adds the messages carried by err, if any; it reports
// how many.
func (l *msgLedger) undeliveredFrom(err error) int {
	msgs := carriedMessages(err)
	for _, m := range msgs {
		id, derr := decodeCheckedMsg(m.Data)
		l.mu.Lock()
		if derr != nil {
			l.damaged = append(l.damaged, derr)
		} else {
			l.undelivered = append(l.undelivered, id)
		}
		l.mu.Unlock()
	}
	return len(msgs)
}

func (l *msgLedger) fault(err error) {
	l.mu.Lock()
	l.unexpected = append(l.unexpected, err)
	l.mu.Unlock()
}

// check compares the multiset sent with the multiset received, queued and
// undelivered.
func (l *msgLedger) check(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.damaged {
		t.Error("damaged:", err)
	}
	for _, err := range l.unexpected {
		t.Error("unexpected error:", err)
	}
	count := map[uint64]int{}
	for _, id := range l.sent {
		count[id]++
	}
	for _, list := range [][]uint64{l.received, l.undelivered} {
		for _, id := range list {
			count[id]--
		}
	}
	bad := 0
	for id, n := range count {
		if n != 0 {
			if bad++; bad <= 10 {
				t.Errorf("message %d: sent minus accounted for = %d (lost if > 0, duplicated if < 0)", id, n)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d messages not conserved (sent %d, received or queued %d, undelivered %d)", bad, len(l.sent), len(l.received), len(l.undelivered))
	}
}

// drainKernelInto receives what is left in the kernel queue called name into
// l.received, through a new descriptor.
func drainKernelInto(t testing.TB, name string, l *msgLedger) int {
	t.Helper()
	q, err := Open(name, ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	left := drainQueue(t, q)
	for _, m := range left {
		l.receive(m.Data)
	}
	return len(left)
}

// TestCloseRacesSendReceivePumpsAndClose closes a Queue at random moments
// while direct senders and receivers, a send pump and a receive pump work
// on it, and Close is called from several goroutines at once. Every round
// must end with no panic, every goroutine and pump stopped, and every
// message conserved. It is serial so it can check for leaked goroutines.
func TestCloseRacesSendReceivePumpsAndClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rounds := 300
	if testing.Short() {
		rounds = 60
	}
	base := newTestQueue(t, MaxMessages(4), MessageSize(64))
	name := base.Name()
	var l msgLedger
	closeErrs := map[string]int{}
	for round := range rounds {
		q, err := Open(name)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		expected := func(err error) bool {
			return errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled)
		}
		for range 2 { // direct senders
			wg.Go(func() {
				for {
					id := l.id()
					err := q.Send(ctx, encodeCheckedMsg(id, checkedMsgHeader+int(id%50)), uint(id%7))
					if err != nil {
						if !expected(err) {
							l.fault(err)
						}
						return
					}
					l.add(&l.sent, id)
				}
			})
		}
		for range 2 { // direct receivers
			wg.Go(func() {
				for {
					b, _, err := q.Receive(ctx)
					if err != nil {
						if !expected(err) {
							l.fault(err)
						}
						return
					}
					l.receive(b)
				}
			})
		}
		s := q.MessageSender(ctx, Buffer(round%3))
		wg.Go(func() { // feeds the send pump, then waits for it
			for {
				id := l.id()
				select {
				case s.C <- Message{Data: encodeCheckedMsg(id, checkedMsgHeader+int(id%50)), Priority: uint(id % 5)}:
					l.add(&l.sent, id)
					continue
				case <-s.Done():
				}
				break
			}
			close(s.C)
			// Wait after the last send on C: it collects what is left there.
			if err := s.Wait(); err != nil {
				if l.undeliveredFrom(err) == 0 && !expected(err) {
					l.fault(err)
				}
			}
		})
		r := q.Receiver(ctx, Buffer(round%4))
		wg.Go(func() {
			for b := range r.C {
				l.receive(b)
			}
			if err := r.Err(); err != nil {
				l.fault(err)
			}
		})
		var closeMu sync.Mutex
		for range 3 { // concurrent Closes, at random moments
			delay := time.Duration(rand.IntN(2000)) * time.Microsecond
			wg.Go(func() {
				time.Sleep(delay)
				if round%5 == 0 {
					cancel() // some rounds end with a cancel racing the Closes
				}
				if err := q.Close(); err != nil {
					closeMu.Lock()
					closeErrs[err.Error()]++
					closeMu.Unlock()
					if l.undeliveredFrom(err) == 0 {
						l.fault(err)
					}
				}
			})
		}
		if !testutil.Returns(wg.Wait) {
			panic(fmt.Sprintf("round %d: goroutines still running %v after Close", round, testutil.Patience))
		}
		cancel()
		if err := q.Close(); err != nil {
			t.Errorf("Close after Close: %v", err)
		}
		if _, _, err := q.Receive(t.Context()); !errors.Is(err, ErrClosed) {
			t.Errorf("Receive after Close: %v", err)
		}
		// What the rounds left in the kernel is received by the next round
		// or by the final drain.
	}
	queued := drainKernelInto(t, name, &l)
	l.check(t)
	t.Logf("%d rounds: %d messages sent; %d received in rounds, %d left queued; %d undelivered; errors from Close: %v",
		rounds, len(l.sent), len(l.received)-queued, queued, len(l.undelivered), closeErrs)
}
