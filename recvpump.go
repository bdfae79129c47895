package chanmq

import (
	"context"
	"errors"
	"fmt"
)

// This file is the receive pump: one goroutine that takes messages from a
// Queue and hands them out on an unbuffered channel.
//
// It accounts by construction. The channel has no buffer, so a value is
// delivered exactly when a send on it completes; every message the pump
// took and did not deliver is still in its own hands, as the bytes and
// priority it came with, in take order. When the pump stops it gives all
// of those to the Queue. Nothing is ever matched afterwards by comparing
// values, which equal values, NaNs and empty messages would defeat.
//
// Buffer(n) is a read-ahead of up to n messages, held raw inside the pump
// and decoded only when offered, so the program finds the next value
// ready while the pump takes the one after it.

// recvPump moves messages from a Queue to ch, turning each into a T when
// it offers it.
type recvPump[T any] struct {
	q      *Queue
	ch     chan T // unbuffered: a completed send is a completed hand-off
	decode func(Message) (T, error)
	c      *config
	owned  bool          // close q when the pump stops
	done   chan struct{} // closed when the pump has stopped and err is set
	err    error

	// ownsData: T holds its message's bytes ([]byte and Message pumps), so
	// each message is copied out of the receive buffer into a slice of its
	// own when taken, and handed out as it is. Otherwise (typed pumps) a
	// message stays in its receive buffer until it is decoded, and decode
	// is the caller's code (a codec): it runs between enterUser and
	// leaveUser, so that it may call Close.
	ownsData bool

	ahead fifo // taken, not handed out, in take order; ahead.front() is the one offered
	limit int  // most messages ahead holds: Buffer(n)+1
	// dry: the kernel queue was empty at the last look (a receive found
	// nothing, or had to wait for its message). A read-ahead now would
	// most likely find it empty again, a syscall for nothing, so the pump
	// reads ahead again only after a message that was there at once.
	dry     bool
	markers []heldMessage
	spare   [][]byte // receive buffers not in use, each of the queue's MessageSize
}

// runReceiver checks the Queue against c and starts a receive pump on it.
func runReceiver[T any](ctx context.Context, q *Queue, c *config, owned bool, decode func(Message) (T, error)) *ReceiverOf[T] {
	p := &recvPump[T]{q: q, ch: make(chan T), decode: decode, c: c, owned: owned, done: make(chan struct{})}
	r := &ReceiverOf[T]{C: p.ch, p: p}
	switch {
	case !q.canRecv:
		p.finish(opError("receiver", q.name, q.cannot(ErrWriteOnly)))
	case c.deadLetter.SameQueue(q):
		p.finish(opError("receiver", q.name, fmt.Errorf("%w: DeadLetter is the queue being received from", ErrInvalidOption)))
	case c.endOfStream && !q.canSend:
		p.finish(opError("receiver", q.name, fmt.Errorf("%w: EndOfStream puts the marker back for the other receivers, which needs the queue open for sending: %w (drop ReadOnly)", ErrInvalidOption, ErrReadOnly)))
	case !q.addPump():
		p.finish(nil) // closed: an ordinary end
	default:
		p.ownsData = ownsData[T]()
		p.limit = c.buffer + 1
		p.ahead = newFIFO(p.limit)
		go p.run(ctx)
	}
	return r
}

// ownsData reports whether a T made from a message holds the message's
// bytes: a []byte or a Message.
func ownsData[T any]() bool {
	switch any(*new(T)).(type) {
	case []byte, Message:
		return true
	}
	return false
}

func (p *recvPump[T]) run(ctx context.Context) {
	err := p.pump(ctx)
	p.finish(errors.Join(err, p.q.pumpDone()))
}

// pump loops until ctx is done, the Queue closes, the stream ends, or a
// fault; it returns the fault, or nil for an ordinary end. On every return
// what it took and did not hand out has gone to the Queue (stop), except
// a message inside the fault it returns.
func (p *recvPump[T]) pump(ctx context.Context) error {
	for {
		if p.ahead.len() == 0 {
			// With the end-of-stream marker in hand, look behind it without
			// waiting: values a stopped receiver put back after the marker
			// are still part of the stream.
			got, err := p.take(ctx, p.markers == nil)
			if err != nil {
				return p.stop(err)
			}
			if !got {
				return p.endOfStream()
			}
			continue // it may have been a marker
		}
		if err := p.readAhead(ctx); err != nil {
			return p.stop(err)
		}
		m := p.ahead.front()
		v, err := p.decodeValue(m.Message)
		if err != nil {
			p.ahead.pop() // it is the failure's now: handed to the caller, never put back
			err = p.decodeFailed(ctx, m.heldMessage, err)
			p.release(m)
			if err != nil {
				return p.stop(err)
			}
			continue
		}
		select {
		case p.ch <- v:
			p.release(p.ahead.pop())
		case <-ctx.Done():
			return p.stop(nil)
		case <-p.q.done:
			return p.stop(nil)
		}
	}
}

// take receives one message into ahead (or, if it is the end-of-stream
// marker, into markers). With block false it does not wait and reports
// false when the queue is empty.
func (p *recvPump[T]) take(ctx context.Context, block bool) (got bool, err error) {
	buf := p.buffer()
	m, from, err := p.q.receive(ctx, buf, block)
	if err != nil {
		p.spare = append(p.spare, buf)
		if err == errAgain {
			p.dry = true
			return false, nil
		}
		return false, err
	}
	switch from {
	case fromKernelAfterWait:
		p.dry = true
	case fromKernel:
		p.dry = false
	}
	if from == fromHeld || p.ownsData {
		p.spare = append(p.spare, buf)
		if from != fromHeld {
			m.Data = append(make([]byte, 0, len(m.Data)), m.Data...)
		}
		buf = nil
	}
	if p.c.endOfStream && len(m.Data) == 0 {
		p.release(aheadMessage{buf: buf})
		m.Data = nil
		p.markers = append(p.markers, m)
		return true, nil
	}
	p.ahead.push(aheadMessage{m, buf})
	return true, nil
}

// readAhead takes messages without waiting until ahead is full or the
// queue is empty (or was at the last look: see dry). It stops at an
// end-of-stream marker: what follows one is taken only when all before it
// has been handed out, one at a time.
func (p *recvPump[T]) readAhead(ctx context.Context) error {
	for !p.dry && p.markers == nil && p.ahead.len() < p.limit {
		got, err := p.take(ctx, false)
		if err != nil || !got {
			return err
		}
	}
	return nil
}

// buffer returns a receive buffer of the queue's MessageSize.
func (p *recvPump[T]) buffer() []byte {
	if n := len(p.spare); n > 0 {
		b := p.spare[n-1]
		p.spare = p.spare[:n-1]
		return b
	}
	return make([]byte, p.q.msgSize)
}

// release returns m's receive buffer, if it has one, for reuse.
func (p *recvPump[T]) release(m aheadMessage) {
	if m.buf != nil {
		p.spare = append(p.spare, m.buf)
	}
}

// decodeValue makes the value offered for m. A codec is the caller's code:
// it may call Close, and a panic in it comes back as an error (decodeWith).
func (p *recvPump[T]) decodeValue(m Message) (T, error) {
	if p.ownsData {
		return p.decode(m)
	}
	p.q.enterUser()
	defer p.q.leaveUser()
	return p.decode(m)
}

// endOfStream ends the pump when the marker was met and nothing follows
// it. It puts the markers back for the queue's other receivers (into the
// kernel queue if there is room, else among the held messages, for this
// process's next receive and for Close).
func (p *recvPump[T]) endOfStream() error {
	for i, m := range p.markers {
		if err := p.q.TrySend(nil, m.Priority); err != nil {
			p.q.keep(p.markers[i:])
			break
		}
	}
	p.markers = nil
	return nil
}

// decodeFailed handles m, a message that did not decode: the OnDecodeError
// callback or the DeadLetter queue takes it (nil: go on), or the pump
// stops with a *DecodeError that holds it.
func (p *recvPump[T]) decodeFailed(ctx context.Context, m heldMessage, err error) error {
	de := &DecodeError{Message: Message{Data: append([]byte{}, m.Data...), Priority: m.Priority}, Err: err}
	switch {
	case p.c.onDecodeError != nil:
		if perr := p.callOnDecodeError(de); perr != nil {
			de.Err = errors.Join(err, perr)
			return opError("receiver", p.q.name, de)
		}
		return nil
	case p.c.deadLetter != nil:
		if serr := p.deadLetter(ctx, m.Message); serr != nil {
			de.Err = errors.Join(err, fmt.Errorf("to dead-letter queue: %w", serr))
			return opError("receiver", p.q.name, de)
		}
		return nil
	}
	return opError("receiver", p.q.name, de)
}

// callOnDecodeError runs the caller's OnDecodeError callback, which may
// call Close; a panic in it is returned as an error, and the pump stops
// with the message (the callback may not have kept it).
func (p *recvPump[T]) callOnDecodeError(de *DecodeError) (err error) {
	p.q.enterUser()
	defer p.q.leaveUser()
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("the OnDecodeError callback panicked: %v", v)
		}
	}()
	p.c.onDecodeError(de)
	return nil
}

// deadLetter sends m to the DeadLetter queue, waiting while it is full
// until ctx is done or this pump's Queue is closed.
func (p *recvPump[T]) deadLetter(ctx context.Context, m Message) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.q.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return p.c.deadLetter.Send(ctx, m.Data, m.Priority)
}

// stop gives the Queue every message the pump took and did not hand out,
// in take order, the end-of-stream markers last (a value found behind a
// marker was put back there by a stopped receiver, and belongs before
// it). It returns the fault for cause, nil for an ordinary end.
func (p *recvPump[T]) stop(cause error) error {
	keep := make([]heldMessage, 0, p.ahead.len()+len(p.markers))
	for p.ahead.len() > 0 {
		m := p.ahead.pop()
		if m.buf != nil {
			m.Data = append(make([]byte, 0, len(m.Data)), m.Data...)
		}
		keep = append(keep, m.heldMessage)
	}
	for _, m := range p.markers {
		m.seq = p.q.held.next()
		keep = append(keep, m)
	}
	p.markers = nil
	p.q.keep(keep)
	if cause == nil || ordinaryEnd(cause) {
		return nil
	}
	return reOp("receiver", cause)
}

// finish records why the pump stopped, closes an owned Queue, then closes
// done and the channel, in that order: once C is closed, Err is final.
func (p *recvPump[T]) finish(err error) {
	if p.owned {
		err = errors.Join(err, p.q.Close())
	}
	p.err = err
	close(p.done)
	close(p.ch)
}

// result returns the pump's fault once it has stopped, nil before.
func (p *recvPump[T]) result() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// ordinaryEnd reports whether err, from a receive with the pump's context,
// means the pump was asked to stop: its context is done (receive returns
// no other context's error) or its Queue closed.
func ordinaryEnd(err error) bool {
	return errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// reOp renames the operation of err, an *Error from the Queue, to op (a
// pump's name), keeping its cause; any other error is wrapped whole. It
// never returns nil for a non-nil err.
func reOp(op string, err error) error {
	var e *Error
	if errors.As(err, &e) && e.Err != nil {
		return &Error{Op: op, Name: e.Name, Err: e.Err}
	}
	return &Error{Op: op, Err: err}
}

// aheadMessage is a message a receive pump holds, and the receive buffer
// its Data is in (nil when Data is a slice of its own).
type aheadMessage struct {
	heldMessage
	buf []byte
}

// fifo is a fixed-capacity queue of the messages a receive pump holds.
type fifo struct {
	items []aheadMessage
	head  int
	n     int
}

func newFIFO(capacity int) fifo { return fifo{items: make([]aheadMessage, capacity)} }

func (f *fifo) len() int { return f.n }

// front returns the oldest message; f is not empty.
func (f *fifo) front() aheadMessage { return f.items[f.head] }

// push adds m at the back; f is not full.
func (f *fifo) push(m aheadMessage) {
	f.items[(f.head+f.n)%len(f.items)] = m
	f.n++
}

// pop removes and returns the oldest message; f is not empty.
func (f *fifo) pop() aheadMessage {
	m := f.items[f.head]
	f.items[f.head] = aheadMessage{}
	f.head = (f.head + 1) % len(f.items)
	f.n--
	return m
}
