package chanmq

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// This file is everything about messages a pump held: a receive pump takes
// messages out of the kernel queue before anyone asks for them, so when it
// stops, the message in its hand and those in its channel's buffer come
// here. The Queue's next receive returns them first; Close waits for the
// pumps, then puts what is left back into the kernel queue.

// heldMessage is a message taken out of the kernel queue, with its place
// in the order in which this Queue took messages.
type heldMessage struct {
	Message
	seq uint64
}

// holder keeps the held messages of one Queue.
type holder struct {
	seq atomic.Uint64 // numbers each message taken, in take order

	n    atomic.Int32 // len(msgs), read without the lock on the hot path
	mu   sync.Mutex
	msgs []heldMessage // in take order
}

// next numbers a message just taken from the kernel.
func (h *holder) next() uint64 { return h.seq.Add(1) }

// has reports whether any message is held; it costs one atomic load.
func (h *holder) has() bool { return h.n.Load() != 0 }

// keep adds messages a stopping pump held. They go in take order among
// those already held, whichever pump held them before: a pump that took
// m0..m2 from here while m3 and m4 waited gives them back in front of m3.
func (h *holder) keep(msgs []heldMessage) {
	if len(msgs) == 0 {
		return
	}
	h.mu.Lock()
	h.msgs = append(h.msgs, msgs...)
	slices.SortStableFunc(h.msgs, func(a, b heldMessage) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	h.n.Store(int32(len(h.msgs)))
	h.mu.Unlock()
}

// pop removes the first held message.
func (h *holder) pop() (heldMessage, bool) {
	if !h.has() {
		return heldMessage{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.msgs) == 0 {
		return heldMessage{}, false
	}
	m := h.msgs[0]
	h.msgs[0] = heldMessage{}
	h.msgs = h.msgs[1:]
	h.n.Store(int32(len(h.msgs)))
	return m, true
}

// takeAll removes and returns every held message.
func (h *holder) takeAll() []heldMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	msgs := h.msgs
	h.msgs = nil
	h.n.Store(0)
	return msgs
}

// keep hands messages a stopping pump held to the Queue, and wakes a
// receiver already parked on the empty kernel queue so that it takes them.
func (q *Queue) keep(msgs []heldMessage) {
	if len(msgs) == 0 {
		return
	}
	q.held.keep(msgs)
	q.rx.wake()
}

// addPump registers a pump that Close must wait for; it reports false if
// the Queue is already closing.
func (q *Queue) addPump() bool { return q.pumps.add() }

// pumpDone ends a registration made by addPump. If Close did not wait for
// this pump (it was running the caller's code) and it is the last to
// finish, it finishes the Close: it puts back what is held and closes the
// descriptor, and returns the error of doing so.
func (q *Queue) pumpDone() error {
	if !q.pumps.stop() {
		return nil
	}
	return opError("close", q.name, q.finishClose())
}

// enterUser and leaveUser bracket a pump's call of the caller's code (a
// codec, a callback): Close does not wait for a pump there, since that code
// may call Close itself.
func (q *Queue) enterUser() { q.pumps.enterUser(&q.closed) }
func (q *Queue) leaveUser() { q.pumps.leaveUser() }

// putBack returns the held messages to the kernel queue, in take order,
// each with its priority (so each goes behind the messages of its priority
// that arrived since), and reports those that did not fit, with their
// bytes. The caller holds the descriptor.
func (q *Queue) putBack() error {
	msgs := q.held.takeAll()
	var left []Message
	var why error
	for _, m := range msgs {
		err := sysSend(q.fd, m.Data, m.Priority, q.tryTimeout)
		if err == nil {
			continue
		}
		switch {
		case err == errAgain || err == errTimedOut:
			why = fmt.Errorf("putting messages back: %w", ErrFull)
		case !q.canSend:
			why = fmt.Errorf("putting messages back: %w (open the queue read-write to let Close put them back)", ErrReadOnly)
		default:
			why = fmt.Errorf("putting messages back: %w", explainErrno("send", q.name, err, nil))
		}
		left = append(left, m.Message)
	}
	if left == nil {
		return nil
	}
	return &UndeliveredError{Messages: left, Err: why}
}
