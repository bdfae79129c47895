package chanmq

import (
	"context"
	"fmt"
)

// This file is the Queue's one send path and one receive path; the public
// methods are thin wrappers over them.

// Send queues msg with the given priority (0 to MaxPriority; higher is
// received first). While the queue is full it waits until there is room,
// ctx is done, or the Queue is closed. On cancellation the error matches
// ctx.Err() and msg was not queued; a Send whose ctx is already done
// queues nothing. Send does not allocate.
func (q *Queue) Send(ctx context.Context, msg []byte, priority uint) error {
	return q.send(ctx, msg, priority, true)
}

// TrySend queues msg if there is room and fails with ErrFull if not, like a
// select with a default case. It never blocks and does not allocate.
func (q *Queue) TrySend(msg []byte, priority uint) error {
	return q.send(context.Background(), msg, priority, false)
}

// Receive takes the next message: the highest priority first, FIFO within
// a priority. While the queue is empty it waits until a message arrives,
// ctx is done, or the Queue is closed. The returned slice is new and
// exactly the message's length. On cancellation the error matches
// ctx.Err() and no message was taken: nothing is lost. A Receive whose ctx
// is already done takes nothing, even when a message is queued.
//
// Messages that a stopped receive pump of this Queue was holding come
// first, in the order they were taken from the kernel queue, before newer
// messages of any priority; a Receive already waiting when a pump stops
// takes them too.
func (q *Queue) Receive(ctx context.Context) (msg []byte, priority uint, err error) {
	return q.receiveNew(ctx, true)
}

// TryReceive takes the next message if there is one and fails with ErrEmpty
// if not, like a select with a default case. It never blocks; it allocates
// only the message it returns.
func (q *Queue) TryReceive() (msg []byte, priority uint, err error) {
	return q.receiveNew(context.Background(), false)
}

// ReceiveInto is Receive into buf, which must be at least MessageSize bytes
// long (else ErrBufferTooSmall and the message stays queued). It returns
// the message's length and does not allocate.
func (q *Queue) ReceiveInto(ctx context.Context, buf []byte) (n int, priority uint, err error) {
	return q.receiveInto(ctx, buf, true)
}

// TryReceiveInto is TryReceive into buf, with ReceiveInto's rules for buf.
// It never blocks and does not allocate.
func (q *Queue) TryReceiveInto(buf []byte) (n int, priority uint, err error) {
	return q.receiveInto(context.Background(), buf, false)
}

// send is the one send path: check, then the waiter's try/spin/park.
func (q *Queue) send(ctx context.Context, msg []byte, priority uint, block bool) error {
	switch {
	case !q.canSend:
		return opError("send", q.name, q.cannot(ErrReadOnly))
	case len(msg) > q.msgSize:
		return opError("send", q.name, fmt.Errorf("%w (%d > %d bytes)", ErrMessageTooLarge, len(msg), q.msgSize))
	case priority > MaxPriority:
		return opError("send", q.name, fmt.Errorf("%w: %d (0 to %d)", ErrPriority, priority, MaxPriority))
	}
	if err := ctxEnded(ctx, q.done); err != nil {
		return opError("send", q.name, err)
	}
	_, _, _, err := q.tx.do(ctx, msg, priority, block)
	switch err {
	case nil:
		return nil
	case errAgain:
		err = ErrFull
	case errMsgSize:
		err = fmt.Errorf("%w (%d > %d bytes)", ErrMessageTooLarge, len(msg), q.msgSize)
	}
	return failure("send", q.name, err, nil)
}

// receive is the one receive path: held messages first, then the kernel
// queue through the waiter's try/spin/park (which a message given back by
// a stopping pump interrupts). A held message is returned as it is (its
// Data is its own); a message from the kernel is in buf. Each message is
// numbered in the order this Queue took it. A call whose ctx has ended
// takes nothing. A nonblocking call that finds nothing returns errAgain,
// unwrapped and without allocating (emptyError makes the caller's error).
func (q *Queue) receive(ctx context.Context, buf []byte, block bool) (m heldMessage, from source, err error) {
	switch {
	case !q.canRecv:
		return m, fromHeld, opError("receive", q.name, q.cannot(ErrWriteOnly))
	case q.closed.Load():
		return m, fromHeld, opError("receive", q.name, ErrClosed)
	case len(buf) < q.msgSize:
		return m, fromHeld, opError("receive", q.name, fmt.Errorf("%w: %d bytes, the queue's MessageSize is %d (use a buffer of q.MessageSize() bytes)", ErrBufferTooSmall, len(buf), q.msgSize))
	}
	for {
		if err := ctxEnded(ctx, q.done); err != nil {
			return m, fromHeld, opError("receive", q.name, err)
		}
		if held, ok := q.held.pop(); ok {
			return held, fromHeld, nil
		}
		n, prio, waited, err := q.rx.do(ctx, buf, 0, block)
		switch err {
		case nil:
			from = fromKernel
			if waited {
				from = fromKernelAfterWait
			}
			return heldMessage{Message{Data: buf[:n], Priority: prio}, q.held.next()}, from, nil
		case errInterrupted:
			continue
		case errAgain:
			return m, fromHeld, errAgain // the caller decides: ErrEmpty, or for a pump nothing more to read ahead
		case errMsgSize:
			err = fmt.Errorf("%w: the queue's MessageSize is %d", ErrBufferTooSmall, q.msgSize)
		}
		return m, fromHeld, failure("receive", q.name, err, nil)
	}
}

// source says where receive found a message: among the held messages (or,
// with an error, nowhere), or in the kernel queue, at once or after
// waiting for it (the queue was empty when the call began).
type source int

const (
	fromHeld source = iota
	fromKernel
	fromKernelAfterWait
)

// receiveNew is receive into a pooled buffer, returning a new slice.
func (q *Queue) receiveNew(ctx context.Context, block bool) ([]byte, uint, error) {
	bp, _ := q.bufs.Get().(*[]byte)
	if bp == nil { // only a zero Queue{} has no buffers
		_, _, err := q.receive(ctx, nil, block)
		return nil, 0, err
	}
	m, from, err := q.receive(ctx, *bp, block)
	if from != fromHeld {
		msg := make([]byte, len(m.Data))
		copy(msg, m.Data)
		m.Data = msg
	}
	q.bufs.Put(bp)
	return m.Data, m.Priority, q.emptyError(err)
}

// emptyError turns receive's errAgain into the caller's ErrEmpty error.
func (q *Queue) emptyError(err error) error {
	if err == errAgain {
		return failure("receive", q.name, ErrEmpty, nil)
	}
	return err
}

// receiveInto is receive into the caller's buf.
func (q *Queue) receiveInto(ctx context.Context, buf []byte, block bool) (int, uint, error) {
	m, from, err := q.receive(ctx, buf, block)
	if err != nil {
		return 0, 0, q.emptyError(err)
	}
	if from == fromHeld {
		copy(buf, m.Data)
	}
	return len(m.Data), m.Priority, nil
}
