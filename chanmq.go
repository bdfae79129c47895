package chanmq

import (
	"context"
	"fmt"
	"iter"
)

// This file is the channel adapter's API: receive and send pumps that
// move messages between a Queue and a Go channel (engines in recvpump.go
// and sendpump.go), and the iterators. One receive pump and one send pump
// serve []byte, Message and typed channels (typed.go): they differ only in
// how a message becomes a value and back.

// ReceiverOf is a receive pump: a goroutine that takes messages from a
// Queue and hands them out on C as values of T, in the order the kernel
// gives them (highest priority first). Receiver (T is []byte) and
// MessageReceiver (T is Message) come from Queue.Receiver,
// Queue.MessageReceiver and OpenReceiver; typed ones from Of(…).Receiver
// and OpenReceiverOf.
//
// C is unbuffered: a value is delivered when a receive from C completes,
// and not before. The pump holds the message it offers on C, and with
// Buffer(n) up to n more that it read ahead, as the bytes they came with.
//
// The pump stops when its context is done, when the Queue is closed, on
// an end-of-stream marker (see EndOfStream), or on a fault; it then closes
// C, so `for v := range r.C` ends. Once C is closed, Err is final. Every
// message it took and did not deliver is then kept by the Queue, exactly
// as it came (bytes and priority, never re-encoded), for the Queue's next
// receive, in the order they were taken; a receive already waiting on the
// Queue takes them at once. Close puts them back into the kernel queue,
// each behind the messages of its priority already there (it needs a
// queue opened read-write, the default; on a ReadOnly queue Close returns
// them in an *UndeliveredError instead). None is lost.
//
// Before the process exits, stop the pump and wait for it: after leaving
// a range loop early, call cancel and then Wait (Ctrl-C through
// signal.NotifyContext cancels for you). Messages the pump holds live in
// this process until then; a process that exits without Wait, or crashes,
// loses them (one, plus the read-ahead). Queue.All holds nothing the
// program did not ask for.
type ReceiverOf[T any] struct {
	// C delivers the values. It is unbuffered and closed when the pump
	// stops.
	C <-chan T
	p *recvPump[T]
}

// Receiver is a receive pump of []byte messages; see ReceiverOf.
type Receiver = ReceiverOf[[]byte]

// MessageReceiver is a receive pump of messages with their priorities;
// see ReceiverOf.
type MessageReceiver = ReceiverOf[Message]

// Err returns nil while the pump runs and after it stopped because its
// context was done, the Queue was closed or the stream ended; otherwise
// it returns the fault that stopped the pump (for OpenReceiver, joined
// with any error of closing the Queue). Once C is closed, Err is final.
func (r *ReceiverOf[T]) Err() error { return r.p.result() }

// Done is closed when the pump has stopped: what it held is then kept by
// the Queue (or, for OpenReceiver, put back into the kernel queue).
func (r *ReceiverOf[T]) Done() <-chan struct{} { return r.p.done }

// Wait waits for the pump to stop and returns Err. The pump stops by
// itself only when its context is done, the Queue is closed, the stream
// ends, or on a fault, so cancel first: after breaking out of
// `range r.C`, call cancel and then Wait before the process exits, so
// that the messages the pump holds are not lost with the process.
func (r *ReceiverOf[T]) Wait() error { <-r.p.done; return r.p.err }

// Receiver starts a receive pump on q; see ReceiverOf. Its options are
// Buffer (read-ahead, default 0) and EndOfStream. An invalid option, a
// closed Queue or a write-only one stops the pump at once: C is closed
// and Err says why (nil for a closed Queue).
func (q *Queue) Receiver(ctx context.Context, opts ...ReceiverOption) *Receiver {
	return startReceiver(ctx, q, opts, bytesFrom)
}

// MessageReceiver is Receiver delivering each message with its priority.
// Messages kept for the next receive after a stop keep their priority.
func (q *Queue) MessageReceiver(ctx context.Context, opts ...ReceiverOption) *MessageReceiver {
	return startReceiver(ctx, q, opts, messageFrom)
}

// OpenReceiver opens the queue called name (with Open's options, such as
// Create) and starts a Receiver on it (with receiver options, such as
// Buffer). The Receiver owns the Queue: when the pump stops, it closes
// the Queue, which puts messages it held back into the kernel queue; a
// failure to do so is reported by Err. The Queue must be readable: with
// WriteOnly, OpenReceiver fails (ErrInvalidOption).
func OpenReceiver(ctx context.Context, name string, opts ...OpenReceiverOption) (*Receiver, error) {
	return openReceiver(ctx, name, opts, bytesFrom)
}

// The []byte and Message pumps' values are their messages: the pump
// copies each message into a slice of its own when it takes it.
func bytesFrom(m Message) ([]byte, error)    { return m.Data, nil }
func messageFrom(m Message) (Message, error) { return m, nil }

// openReceiver opens name and starts a receive pump that owns the Queue.
func openReceiver[T any](ctx context.Context, name string, opts []OpenReceiverOption, decode func(Message) (T, error)) (*ReceiverOf[T], error) {
	q, c, err := openForPump(name, opts)
	if err != nil {
		return nil, err
	}
	if c.writeOnly {
		return nil, closeAfter(q, opError("open", name, fmt.Errorf("%w: WriteOnly: a receiver receives; drop WriteOnly (or ask for ReadOnly)", ErrInvalidOption)))
	}
	return runReceiver(ctx, q, c, true, decode), nil
}

// openForPump opens a queue with the options of both kinds in opts and
// returns it with their config.
func openForPump[O Option](name string, opts []O) (*Queue, *config, error) {
	if err := validateName(name); err != nil {
		return nil, nil, opError("open", name, err)
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, nil, opError("open", name, err)
	}
	q, err := openWith(name, c)
	if err != nil {
		return nil, nil, err
	}
	return q, c, nil
}

// closeAfter closes q, which the caller opened for a pump it refuses to
// start, and returns err (with any error of closing).
func closeAfter(q *Queue, err error) error {
	if cerr := q.Close(); cerr != nil {
		return fmt.Errorf("%w (and closing: %v)", err, cerr)
	}
	return err
}

// startReceiver checks opts and starts a receive pump on q.
func startReceiver[T any](ctx context.Context, q *Queue, opts []ReceiverOption, decode func(Message) (T, error)) *ReceiverOf[T] {
	c, err := newConfig(opts)
	if err != nil {
		p := &recvPump[T]{q: q, ch: make(chan T), done: make(chan struct{})}
		p.finish(opError("receiver", q.name, err))
		return &ReceiverOf[T]{C: p.ch, p: p}
	}
	return runReceiver(ctx, q, c, false, decode)
}

// SenderOf is a send pump: a goroutine that takes values from C and queues
// them, waiting while the queue is full (so, with the default Buffer(0), a
// send on C blocks until the kernel queue has room: back-pressure is the
// kernel's). Sender (T is []byte) and MessageSender (T is Message, each
// with its own priority) come from Queue.Sender, Queue.MessageSender and
// OpenSender; typed ones from Of(…).Sender and OpenSenderOf.
//
// Send on C as on any channel, then close C and call Wait:
//
//	for _, v := range values {
//		tx.C <- v
//	}
//	close(tx.C)
//	err := tx.Wait() // nil: every value is queued
//
// Closing C makes the pump queue everything sent before (then, with
// EndOfStream, the end-of-stream marker) and stop. It also stops when its
// context is done, the Queue is closed, or on a fault; Done is then
// closed. A pump that stopped before C was closed goes on taking values
// from C, without queueing them, until C is closed: so the loop above
// runs to its end after Ctrl-C instead of blocking for ever, and every
// value it sent is either queued or returned by Wait in an
// *UnsentError[T]. A producer that should stop producing at once selects
// on Done (or its context) as it sends; an endless one must, since
// values sent after the stop are kept in memory for Wait to return.
//
// A value refused on its own (too large, failing to encode, a zero-length
// message with EndOfStream) is reported by Wait and the pump goes on with
// the next. Do not modify a slice after sending it on C.
//
// Before the process exits, close C and call Wait: until Wait returns,
// values may still be on their way into the kernel queue (and, with
// EndOfStream, the marker), and a process that exits loses them.
type SenderOf[T any] struct {
	// C accepts values to queue. The caller closes it when done, always:
	// after a stop, the pump's goroutine ends only when C is closed.
	C chan<- T
	p *sendPump[T]
}

// Sender is a send pump of []byte messages; see SenderOf.
type Sender = SenderOf[[]byte]

// MessageSender is a send pump of messages with their own priorities;
// see SenderOf.
type MessageSender = SenderOf[Message]

// Wait waits for the pump to stop and returns nil if every value taken
// from C was queued. Otherwise it returns an *UnsentError[T] holding the
// values that were not, in order, and why: the context's error, ErrClosed,
// or per-value refusals such as ErrMessageTooLarge. Every send on C that
// completed before Wait was called is accounted for (values left in C's
// buffer included); if the pump stopped before C was closed, values sent
// after Wait was called are returned by a later Wait (or Err).
func (s *SenderOf[T]) Wait() error { return s.p.wait() }

// Err returns nil while the pump runs; once Done is closed it returns what
// Wait returns.
func (s *SenderOf[T]) Err() error {
	select {
	case <-s.p.done:
		return s.p.wait()
	default:
		return nil
	}
}

// Done is closed when the pump has stopped queueing. Values sent on C
// after that are not queued: Wait returns them. Select on Done (or on the
// context) when sending on C to stop producing at once.
func (s *SenderOf[T]) Done() <-chan struct{} { return s.p.done }

// Sender starts a send pump on q; see SenderOf. Its options are Buffer
// (capacity of C, default 0), Priority (default 0) and EndOfStream. An
// invalid option, a closed Queue or a read-only one stops the pump at
// once: Done is closed and Wait reports why (and every value sent).
func (q *Queue) Sender(ctx context.Context, opts ...SenderOption) *Sender {
	return startSender(ctx, q, opts, bytesTo, false)
}

// MessageSender is Sender queueing each message with its own priority.
func (q *Queue) MessageSender(ctx context.Context, opts ...SenderOption) *MessageSender {
	return startSender(ctx, q, opts, messageTo, false)
}

// OpenSender opens the queue called name (with Open's options, such as
// Create) and starts a Sender on it (with sender options, such as
// Priority). The Sender owns the Queue and closes it when the pump stops.
// The Queue must be writable: with ReadOnly, OpenSender fails
// (ErrInvalidOption).
func OpenSender(ctx context.Context, name string, opts ...OpenSenderOption) (*Sender, error) {
	return openSender(ctx, name, opts, bytesTo, false)
}

func bytesTo(v []byte, prio uint) ([]byte, uint, error) { return v, prio, nil }
func messageTo(m Message, _ uint) ([]byte, uint, error) { return m.Data, m.Priority, nil }

// openSender opens name and starts a send pump that owns the Queue.
func openSender[T any](ctx context.Context, name string, opts []OpenSenderOption, encode encodeFunc[T], user bool) (*SenderOf[T], error) {
	q, c, err := openForPump(name, opts)
	if err != nil {
		return nil, err
	}
	if c.readOnly {
		return nil, closeAfter(q, opError("open", name, fmt.Errorf("%w: ReadOnly: a sender sends; drop ReadOnly (or ask for WriteOnly)", ErrInvalidOption)))
	}
	return runSender(ctx, q, c, true, encode, user), nil
}

// encodeFunc turns v into a message: its bytes, valid until the next
// call, and its priority (prio is the pump's). Each pump has its own.
type encodeFunc[T any] func(v T, prio uint) ([]byte, uint, error)

// startSender checks opts and starts a send pump on q.
func startSender[T any](ctx context.Context, q *Queue, opts []SenderOption, encode encodeFunc[T], user bool) *SenderOf[T] {
	c, err := newConfig(opts)
	if err != nil {
		p := newSendPump(q, &config{}, false, encode, user)
		p.fault = opError("sender", q.name, err)
		p.stopAt = p.fault
		close(p.done)
		go p.sink()
		return &SenderOf[T]{C: p.ch, p: p}
	}
	return runSender(ctx, q, c, false, encode, user)
}

// All returns an iterator over the queue's messages, for
//
//	for msg, err := range q.All(ctx) { ... }
//
// Each step is a Receive, in the caller's goroutine: no pump, no message
// held anywhere but in the loop. It ends after yielding one error (ctx's
// error when ctx is done, ErrClosed after Close, or a fault), or when the
// loop breaks. Once ctx is done it takes no more messages.
func (q *Queue) All(ctx context.Context) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		for {
			msg, _, err := q.Receive(ctx)
			if !yield(msg, err) || err != nil {
				return
			}
		}
	}
}

// Messages is All with each message's priority.
func (q *Queue) Messages(ctx context.Context) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		for {
			msg, prio, err := q.Receive(ctx)
			if err != nil {
				yield(Message{}, err)
				return
			}
			if !yield(Message{Data: msg, Priority: prio}, nil) {
				return
			}
		}
	}
}
