package chanmq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

// This file turns a context into a wait on the runtime netpoller. A queue
// descriptor is pollable: readable when a message is queued, writable when
// there is room. The os.File that wraps it lets a goroutine park in
// RawConn.Read/Write without holding an OS thread, and a file deadline set in
// the past wakes it: that is how a context's deadline and cancellation reach
// a parked goroutine.
//
// Deadlines belong to the file, not to the caller, so only one goroutine per
// direction waits at a time: the one holding that direction's turn. The
// holder arms the deadline from its own context and disarms it before it
// hands the turn on, so one caller's cancel never ends another caller's wait.

// aLongTimeAgo is a deadline that has passed: setting it wakes a waiter.
var aLongTimeAgo = time.Unix(1, 0)

// fallbackSlice bounds each blocking syscall of the fallback wait, which is
// used only when the descriptor cannot be polled.
const fallbackSlice = 50 * time.Millisecond

// spinFor bounds how long Send, Receive and ReceiveInto retry the
// nonblocking syscall before they park on the netpoller. Parking and being
// woken again is a trip through epoll and the scheduler that costs tens of
// microseconds on a small VM, while a peer process or goroutine usually
// answers sooner: the spin is what brings the ping-pong and two-process
// stream figures of go run ./bench close to C's (run it to see them). Each
// retry first yields, to this process's other goroutines and to other
// threads on this CPU (a peer pinned to the same CPU, which could not run
// while we spun), so the retries cost little while the peer works. A call
// that waits longer parks as before: an idle queue costs no CPU.
const spinFor = 50 * time.Microsecond

// waiter runs one direction (receive or send) of a Queue: the fast path,
// the bounded spin and the park on the netpoller, in do.
type waiter struct {
	q    *Queue
	recv bool

	// interrupted, if set, reports that the caller should stop waiting and
	// look elsewhere: for receiving, that the Queue holds messages a pump
	// gave back (see held.go). A parked waiter is woken by wake.
	interrupted func() bool

	// turn is a one-slot semaphore: its holder alone parks and owns this
	// direction's file deadline and the call state below.
	turn chan struct{}

	// Call state of the turn holder: the buffer or message, and results.
	buf  []byte
	prio uint
	n    int
	err  error

	// Built once per Queue, so that waiting allocates no closure per call:
	// runs the syscall; false means "park me".
	ready func(fd uintptr) bool

	// armMu guards armGen and every change of this direction's deadline.
	// armGen names the current arming; a cancellation callback of an older
	// arming finds it changed and leaves the deadline alone.
	armMu  sync.Mutex
	armGen uint64
}

// errInterrupted is what do returns when interrupted reported true.
var errInterrupted = errors.New("interrupted: look at the held messages")

func newWaiter(q *Queue, recv bool, interrupted func() bool) *waiter {
	w := &waiter{q: q, recv: recv, interrupted: interrupted, turn: make(chan struct{}, 1)}
	w.ready = func(fd uintptr) bool {
		if w.isInterrupted() {
			w.err = errInterrupted
			return true
		}
		w.n, w.prio, w.err = w.syscall(int(fd), w.buf, w.prio, nil)
		return w.err != errAgain
	}
	return w
}

// rawWait runs ready on p's RawConn until it returns true, parking on the
// netpoller while it returns false.
func (w *waiter) rawWait(p *poller) error {
	if w.recv {
		return p.raw.Read(w.ready)
	}
	return p.raw.Write(w.ready)
}

// setDeadline sets this direction's deadline on the Queue's file. Before
// register made the file no caller has parked, so there is nothing to set.
func (w *waiter) setDeadline(t time.Time) error {
	p := w.q.poll.Load()
	if p == nil {
		return nil
	}
	if w.recv {
		return p.file.SetReadDeadline(t)
	}
	return p.file.SetWriteDeadline(t)
}

func (w *waiter) isInterrupted() bool { return w.interrupted != nil && w.interrupted() }

// syscall runs this direction's syscall once on fd: receive into buf, or
// send buf with prio. It returns the length and priority received, or
// for a send 0 and prio unchanged (the turn holder's prio is reused by
// the next try). abs is nil on a nonblocking descriptor.
func (w *waiter) syscall(fd int, buf []byte, prio uint, abs *timespec) (int, uint, error) {
	if w.recv {
		return sysReceive(fd, buf, abs)
	}
	return 0, prio, sysSend(fd, buf, prio, abs)
}

// attempt is one nonblocking syscall under the Queue's descriptor lock:
// errAgain means the queue is empty (or full).
func (w *waiter) attempt(buf []byte, prio uint) (int, uint, error) {
	if !w.q.acquireFD() {
		return 0, 0, ErrClosed
	}
	n, p, err := w.syscall(w.q.fd, buf, prio, w.q.tryTimeout)
	w.q.releaseFD()
	if err == errTimedOut {
		err = errAgain
	}
	return n, p, err
}

// do receives into buf (or sends buf with prio). With block false it makes
// one attempt and returns errAgain if it would wait. With block true it
// waits until the syscall succeeds or fails, ctx ends, the Queue closes,
// or interrupted reports true (errInterrupted); waited says whether the
// first attempt found the queue empty (or full). err is a raw errno,
// ErrClosed, errInterrupted or ctx's error; a message received is always
// returned, even if ctx ends at the same moment. The caller checks first
// that ctx has not ended (ctxEnded), so that such a call takes nothing.
func (w *waiter) do(ctx context.Context, buf []byte, prio uint, block bool) (n int, p uint, waited bool, err error) {
	n, p, err = w.attempt(buf, prio)
	if err != errAgain || !block {
		return n, p, false, err
	}
	n, p, err = w.wait(ctx, buf, prio)
	return n, p, true, err
}

// wait is do after a first attempt found the queue empty (or full).
func (w *waiter) wait(ctx context.Context, buf []byte, prio uint) (int, uint, error) {
	// Retry for at most spinFor before parking; see spinFor.
	for start, done := time.Now(), ctx.Done(); ; {
		select {
		case <-done:
			return 0, 0, ctxError(ctx)
		default:
		}
		if w.isInterrupted() {
			return 0, 0, errInterrupted
		}
		runtime.Gosched()
		sysYield()
		if n, p, err := w.attempt(buf, prio); err != errAgain {
			return n, p, err
		}
		if time.Since(start) >= spinFor {
			break
		}
	}
	return w.park(ctx, buf, prio)
}

// park waits on the netpoller (or, for a descriptor it cannot watch, with
// bounded blocking calls) once this caller holds the direction's turn.
func (w *waiter) park(ctx context.Context, buf []byte, prio uint) (n int, rprio uint, err error) {
	select {
	case w.turn <- struct{}{}:
	case <-ctx.Done():
		return 0, 0, ctxError(ctx)
	case <-w.q.done:
		return 0, 0, ErrClosed
	}
	defer func() { <-w.turn }()
	w.buf, w.prio = buf, prio
	defer func() { w.buf = nil }()
	p, err := w.q.register()
	if err != nil {
		return 0, 0, err
	}
	if !p.polled {
		return w.waitBlocking(ctx)
	}
	stop, err := w.arm(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer w.disarm(stop)
	for {
		err := w.rawWait(p)
		if err == nil {
			return w.n, w.prio, w.err
		}
		if w.q.closed.Load() {
			return 0, 0, ErrClosed
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, 0, fmt.Errorf("waiting on the netpoller: %w", err)
		}
		if err := ctxEnded(ctx, w.q.done); err != nil {
			return 0, 0, err
		}
		if w.isInterrupted() {
			return 0, 0, errInterrupted
		}
		// The deadline fired but ctx is not done: it was stale, or wake
		// found nothing left to take. Set ours again.
		if err := w.rearm(ctx); err != nil {
			return 0, 0, err
		}
	}
}

// arm sets the deadline from ctx and arranges for ctx's cancellation to set
// a past deadline. It fails with ErrClosed once Close has begun, so a
// waiter can never arm after Close has woken everyone.
func (w *waiter) arm(ctx context.Context) (stop func() bool, err error) {
	w.armMu.Lock()
	defer w.armMu.Unlock()
	if w.q.closed.Load() {
		return nil, ErrClosed
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = w.setDeadline(dl)
	}
	if ctx.Done() == nil {
		return nil, nil // Background and friends: nothing can cancel, arm nothing
	}
	w.armGen++
	gen := w.armGen
	return context.AfterFunc(ctx, func() {
		w.armMu.Lock()
		defer w.armMu.Unlock()
		if w.armGen == gen {
			_ = w.setDeadline(aLongTimeAgo)
		}
	}), nil
}

// rearm restores the deadline of ctx after a stale wake-up.
func (w *waiter) rearm(ctx context.Context) error {
	w.armMu.Lock()
	defer w.armMu.Unlock()
	if w.q.closed.Load() {
		return ErrClosed
	}
	dl, _ := ctx.Deadline() // zero time: no deadline
	_ = w.setDeadline(dl)
	return nil
}

// disarm stops the cancellation callback and clears the deadline, so that
// nothing of this wait is left for the next turn holder.
func (w *waiter) disarm(stop func() bool) {
	w.armMu.Lock()
	defer w.armMu.Unlock()
	if stop != nil {
		stop()
		w.armGen++ // a callback that already started finds its arming gone
	}
	if !w.q.closed.Load() {
		_ = w.setDeadline(time.Time{})
	}
}

// wake makes this direction's parked waiter, if any, look again: for Close
// (the descriptor stays open, pumps still need it to put messages back),
// and when held messages arrive. A waiter that was not parked yet checks
// interrupted before it parks, and arms only after register and only if
// the Queue is not closed, so no wake-up is missed; with no poller yet no
// one is parked.
func (w *waiter) wake() {
	w.armMu.Lock()
	defer w.armMu.Unlock()
	_ = w.setDeadline(aLongTimeAgo)
}

// waitBlocking is the fallback for a descriptor the netpoller cannot watch:
// bounded blocking syscalls (this parks a thread), re-checking ctx, Close
// and interrupted between slices. Linux mq descriptors are pollable, so it
// is not expected to run; it exists so the library degrades instead of
// hanging.
func (w *waiter) waitBlocking(ctx context.Context) (int, uint, error) {
	for {
		if err := ctxEnded(ctx, w.q.done); err != nil {
			return 0, 0, err
		}
		if w.isInterrupted() {
			return 0, 0, errInterrupted
		}
		end := time.Now().Add(fallbackSlice)
		if dl, ok := ctx.Deadline(); ok && dl.Before(end) {
			end = dl
		}
		abs := absTimespec(end)
		if !w.q.acquireFD() {
			return 0, 0, ErrClosed
		}
		n, prio, err := w.syscall(w.q.fd, w.buf, w.prio, &abs)
		w.q.releaseFD()
		if err != errTimedOut && err != errAgain {
			return n, prio, err
		}
	}
}

// deadlineGrace bounds how long ctxEnded waits for a context whose
// deadline has passed to close its Done channel. The standard library's
// contexts do so within microseconds; a custom Context may never do it.
const deadlineGrace = 20 * time.Millisecond

// ctxEnded returns ctx's error if ctx is done or its deadline has passed,
// else nil. It costs one nonblocking channel check (nothing for
// Background) and, for a context with a deadline, one clock read.
//
// A file deadline can fire a moment before ctx's own timer: then ctxEnded
// waits, at most deadlineGrace and never past Close (closed), for that
// timer, so that the error returned matches ctx.Err() when the caller
// looks.
func ctxEnded(ctx context.Context, closed <-chan struct{}) error {
	done := ctx.Done()
	if done != nil {
		select {
		case <-done:
			return ctxError(ctx)
		default:
		}
	}
	dl, ok := ctx.Deadline()
	if !ok || time.Now().Before(dl) {
		return nil
	}
	if done != nil {
		t := time.NewTimer(deadlineGrace)
		select {
		case <-done:
		case <-closed:
		case <-t.C:
		}
		t.Stop()
	}
	return ctxError(ctx)
}

// ctxError returns ctx.Err() (DeadlineExceeded if ctx's deadline passed but
// its timer has not yet fired), joined with the cause when there is one.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		err = context.DeadlineExceeded
	}
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}
