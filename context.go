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
// answers sooner. Measured with go run ./bench on a 2-vCPU VM: pinned
// ping-pong p50 went from 2.8x to 1.4x C, and two-process streams from
// 0.4-0.8x to 0.9-1.2x C. Each retry first yields, to this process's
// other goroutines and to other threads on this CPU (a peer pinned to the
// same CPU, which could not run while we spun), so the retries cost little
// while the peer works. A call that waits longer parks as before: an idle
// queue costs no CPU.
const spinFor = 50 * time.Microsecond

// spin paces the bounded retry of spinReceive and spinSend.
type spin struct {
	done  <-chan struct{}
	start time.Time
}

func newSpin(ctx context.Context) spin { return spin{done: ctx.Done(), start: time.Now()} }

// yield gives way to this process's other goroutines and to other threads
// on this CPU, and reports false (retry no more) once ctx is done.
func (s *spin) yield() bool {
	select {
	case <-s.done:
		return false
	default:
	}
	runtime.Gosched()
	sysYield()
	return true
}

// expired reports whether spinFor has passed since the spin began.
func (s *spin) expired() bool { return time.Since(s.start) >= spinFor }

// spinReceive retries the nonblocking receive for at most spinFor, and
// returns errAgain if the caller should park (also at once if ctx is done,
// so that the wait reports it).
func (q *Queue) spinReceive(ctx context.Context, buf []byte) (int, uint, error) {
	for s := newSpin(ctx); s.yield(); {
		n, prio, err := q.tryReceive(buf)
		if err != errAgain || s.expired() {
			return n, prio, err
		}
	}
	return 0, 0, errAgain
}

// spinSend is spinReceive for Send.
func (q *Queue) spinSend(ctx context.Context, msg []byte, prio uint) error {
	for s := newSpin(ctx); s.yield(); {
		if err := q.trySend(msg, prio); err != errAgain || s.expired() {
			return err
		}
	}
	return errAgain
}

// waiter waits for one direction (receive or send) of a Queue.
type waiter struct {
	q    *Queue
	recv bool

	// turn is a one-slot semaphore: its holder alone waits and owns this
	// direction's file deadline and the call state below.
	turn chan struct{}

	// Call state of the turn holder: the buffer or message, and results.
	buf  []byte
	prio uint
	n    int
	err  error

	// Built once per Queue, so that waiting allocates no closures per call.
	rawWait     func(func(uintptr) bool) error // RawConn.Read or Write
	setDeadline func(time.Time) error          // SetReadDeadline or SetWriteDeadline
	ready       func(fd uintptr) bool          // runs the syscall; false means "park me"

	// armMu guards armGen and every change of this direction's deadline.
	// armGen names the current arming; a cancellation callback of an older
	// arming finds it changed and leaves the deadline alone.
	armMu  sync.Mutex
	armGen uint64
}

func newWaiter(q *Queue, recv bool) *waiter {
	w := &waiter{q: q, recv: recv, turn: make(chan struct{}, 1)}
	if recv {
		w.rawWait, w.setDeadline = q.raw.Read, q.file.SetReadDeadline
	} else {
		w.rawWait, w.setDeadline = q.raw.Write, q.file.SetWriteDeadline
	}
	w.ready = func(fd uintptr) bool {
		w.op(int(fd), nil)
		return w.err != errAgain
	}
	return w
}

// op runs this direction's syscall once on fd with the holder's call state.
// abs is nil on the netpoller path, where the descriptor is nonblocking.
func (w *waiter) op(fd int, abs *timespec) {
	switch {
	case abs == nil && w.recv:
		w.n, w.prio, w.err = sysTryReceive(fd, w.buf, nil)
	case abs == nil:
		w.err = sysTrySend(fd, w.buf, w.prio, nil)
	case w.recv:
		w.n, w.prio, w.err = sysReceive(fd, w.buf, abs)
	default:
		w.err = sysSend(fd, w.buf, w.prio, abs)
	}
}

// wait sends or receives buf, blocking until the syscall succeeds, fails,
// ctx is done, or the Queue is closed. err is a raw errno from the
// syscall, ErrClosed, or ctx's error. A message received is always
// returned, even if ctx ends at the same moment.
func (w *waiter) wait(ctx context.Context, buf []byte, prio uint) (n int, rprio uint, err error) {
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
	if !w.q.polled {
		return w.waitBlocking(ctx)
	}
	stop, err := w.arm(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer w.disarm(stop)
	for {
		err := w.rawWait(w.ready)
		if err == nil {
			return w.n, w.prio, w.err
		}
		if w.q.closed.Load() {
			return 0, 0, ErrClosed
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, 0, fmt.Errorf("waiting on the netpoller: %w", err)
		}
		if err := ctxDoneError(ctx); err != nil {
			return 0, 0, err
		}
		// The deadline fired but ctx is not done: it was stale. Set ours again.
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

// interrupt wakes this direction's parked waiter for Close, without closing
// the descriptor (pumps still need it to put messages back).
func (w *waiter) interrupt() {
	w.armMu.Lock()
	defer w.armMu.Unlock()
	_ = w.setDeadline(aLongTimeAgo)
}

// waitBlocking is the fallback for a descriptor the netpoller cannot watch:
// bounded blocking syscalls (this parks a thread), re-checking ctx and
// Close between slices. Linux mq descriptors are pollable, so it is not
// expected to run; it exists so the library degrades instead of hanging.
func (w *waiter) waitBlocking(ctx context.Context) (int, uint, error) {
	for {
		if err := ctxDoneError(ctx); err != nil {
			return 0, 0, err
		}
		end := time.Now().Add(fallbackSlice)
		if dl, ok := ctx.Deadline(); ok && dl.Before(end) {
			end = dl
		}
		abs := absTimespec(end)
		if !w.q.acquireFD() {
			return 0, 0, ErrClosed
		}
		w.op(w.q.fd, &abs)
		w.q.releaseFD()
		if w.err != errTimedOut && w.err != errAgain {
			return w.n, w.prio, w.err
		}
	}
}

// ctxDoneError returns ctx's error if ctx is done or its deadline has passed
// (a file deadline can fire a moment before ctx's own timer; then it waits
// for that timer), else nil.
func ctxDoneError(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		// The file deadline (or a fallback timeout) can fire a moment
		// before ctx's own timer. That timer is due: wait for it, so that
		// the error returned matches ctx.Err() when the caller looks.
		if done := ctx.Done(); done != nil {
			<-done
		}
		return ctxError(ctx)
	}
	return nil
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
