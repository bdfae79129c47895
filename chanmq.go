// Package chanmq makes Linux POSIX message queues feel like Go channels:
// processes on one host, or containers of one Kubernetes pod (they share an
// IPC namespace), talk through a kernel queue as goroutines talk through a
// chan []byte. It is pure Go (no cgo), every blocking call takes a context,
// and a blocked call holds no OS thread.
//
// Start with [Queue.Receiver] and [Queue.Sender] (or [OpenReceiver] and
// [OpenSender]), which expose a queue as a receive-only or send-only
// channel; [Queue.All] ranges over messages without a goroutine; the raw
// [Queue] methods (Send, Receive, ReceiveInto, TrySend, TryReceive) are
// there when you need control. See the examples.
//
// No message is lost silently: a message taken out of the kernel queue is
// delivered, kept for the next Receive on the same Queue, put back into the
// kernel queue by Close, or returned inside an *UndeliveredError.
package chanmq

import (
	"context"
	"errors"
	"iter"
	"sync"
)

// This file is the channel adapter: pumps that move messages between a
// Queue and a Go channel, and the iterator.

// Receiver is a receive pump: a goroutine that takes messages from a Queue
// and hands them out on C, in the order the kernel gives them (highest
// priority first). Create one with Queue.Receiver or OpenReceiver.
//
// The pump stops when its context is done, when the Queue is closed, or on
// a fault; it then closes C, so `for msg := range r.C` ends. Messages it
// had taken but not handed out (the one in its hand and those in C's
// buffer) are kept by the Queue for its next Receive, or put back into the
// kernel queue by Close: none is lost. Putting back needs a queue opened
// read-write (the default); on a ReadOnly queue Close returns them in an
// *UndeliveredError instead. A message put back goes behind the messages
// of its priority that arrived since. To leave a range loop early, cancel
// the context and call Wait.
type Receiver struct {
	// C delivers the messages. It is closed when the pump stops.
	C <-chan []byte
	p *recvPump[[]byte]
}

// Err returns nil while the pump runs and after it stopped because its
// context was done or the Queue was closed; otherwise, once C is closed,
// it returns the fault that stopped the pump.
func (r *Receiver) Err() error { return r.p.result() }

// Done is closed when the pump has stopped: what it held is then kept by
// the Queue (or, for OpenReceiver, put back into the kernel queue).
func (r *Receiver) Done() <-chan struct{} { return r.p.done }

// Wait waits for the pump to stop and returns Err. The pump stops by
// itself only when its context is done, the Queue is closed, or on a
// fault, so cancel first: after breaking out of `range r.C`, call cancel
// and then Wait before the process exits, so that the message in the
// pump's hand is not lost with the process.
func (r *Receiver) Wait() error { <-r.p.done; return r.p.err }

// MessageReceiver is Receiver for messages with their priorities.
type MessageReceiver struct {
	// C delivers the messages. It is closed when the pump stops.
	C <-chan Message
	p *recvPump[Message]
}

// Err is Receiver.Err.
func (r *MessageReceiver) Err() error { return r.p.result() }

// Done is Receiver.Done.
func (r *MessageReceiver) Done() <-chan struct{} { return r.p.done }

// Wait is Receiver.Wait.
func (r *MessageReceiver) Wait() error { <-r.p.done; return r.p.err }

// Receiver starts a receive pump on q; see the type's documentation. Its
// only options are Buffer (capacity of C, default 0); any other option
// stops it at once with an error (C closed, Err set). The pump also stops
// at once if q is closed or write-only.
func (q *Queue) Receiver(ctx context.Context, opts ...Option) *Receiver {
	p := startReceiver(ctx, q, opts, false, func(data []byte, _ uint) []byte { return data },
		func(b []byte) Message { return Message{Data: b} })
	return &Receiver{C: p.ch, p: p}
}

// MessageReceiver is Receiver delivering each message with its priority.
// Messages kept for the next Receive after a stop keep their priority.
func (q *Queue) MessageReceiver(ctx context.Context, opts ...Option) *MessageReceiver {
	p := startReceiver(ctx, q, opts, false, func(data []byte, prio uint) Message { return Message{Data: data, Priority: prio} },
		func(m Message) Message { return m })
	return &MessageReceiver{C: p.ch, p: p}
}

// OpenReceiver opens the queue called name (with Open's options, such as
// Create) and starts a Receiver on it (with pump options, such as Buffer).
// The Receiver owns the Queue: when the pump stops, it closes the Queue,
// which puts messages it held back into the kernel queue; a failure to do
// so is reported by Err.
func OpenReceiver(ctx context.Context, name string, opts ...Option) (*Receiver, error) {
	q, c, err := openForPump("receiver", name, opts)
	if err != nil {
		return nil, err
	}
	p := runReceiver(ctx, q, c, true, func(data []byte, _ uint) []byte { return data },
		func(b []byte) Message { return Message{Data: b} })
	return &Receiver{C: p.ch, p: p}, nil
}

// OpenSender opens the queue called name (with Open's options, such as
// Create) and starts a Sender on it (with pump options, such as Priority).
// The Sender owns the Queue and closes it when the pump stops.
func OpenSender(ctx context.Context, name string, opts ...Option) (*Sender, error) {
	q, c, err := openForPump("sender", name, opts)
	if err != nil {
		return nil, err
	}
	p := runSender(ctx, q, c, true, func(b []byte) Message { return Message{Data: b, Priority: c.priority} })
	return &Sender{C: p.ch, p: p}, nil
}

// openForPump opens a queue with the Open options among opts and returns
// the config for the pump options.
func openForPump(op, name string, opts []Option) (*Queue, *config, error) {
	if err := validateName(name); err != nil {
		return nil, nil, opError("open", name, err)
	}
	c, err := applyOptions(opts)
	if err != nil {
		return nil, nil, opError("open", name, err)
	}
	q, err := openWith(name, c)
	if err != nil {
		return nil, nil, err
	}
	return q, c, nil
}

// recvPump moves messages from a Queue to ch.
type recvPump[T any] struct {
	q      *Queue
	ch     chan T
	wrap   func([]byte, uint) T
	unwrap func(T) Message
	owned  bool          // close q when the pump stops
	done   chan struct{} // closed when the pump has stopped and err is set
	err    error
}

func startReceiver[T any](ctx context.Context, q *Queue, opts []Option, owned bool, wrap func([]byte, uint) T, unwrap func(T) Message) *recvPump[T] {
	c, err := newPumpConfig(opts)
	if err != nil {
		p := &recvPump[T]{q: q, ch: make(chan T), done: make(chan struct{})}
		p.err = opError("receiver", q.name, err)
		close(p.ch)
		close(p.done)
		return p
	}
	return runReceiver(ctx, q, c, owned, wrap, unwrap)
}

func runReceiver[T any](ctx context.Context, q *Queue, c *config, owned bool, wrap func([]byte, uint) T, unwrap func(T) Message) *recvPump[T] {
	p := &recvPump[T]{q: q, ch: make(chan T, c.buffer), wrap: wrap, unwrap: unwrap, owned: owned, done: make(chan struct{})}
	if !q.canRecv {
		p.finish(opError("receiver", q.name, ErrWriteOnly))
		return p
	}
	if !q.addPump() {
		p.finish(nil) // closed: an ordinary end
		return p
	}
	go p.run(ctx)
	return p
}

func (p *recvPump[T]) run(ctx context.Context) {
	err := p.pump(ctx)
	p.q.pumps.Done()
	p.finish(err)
}

// pump loops until ctx is done, the Queue closes, or a fault; it returns
// the fault, or nil for an ordinary end.
func (p *recvPump[T]) pump(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			p.keepBuffered(nil)
			return nil
		default:
		}
		data, prio, err := p.q.Receive(ctx)
		if err != nil {
			p.keepBuffered(nil)
			if ordinaryEnd(err) {
				return nil
			}
			return opError("receiver", p.q.name, errors.Unwrap(err))
		}
		select {
		case p.ch <- p.wrap(data, prio):
		case <-ctx.Done():
			p.keepBuffered(&Message{Data: data, Priority: prio})
			return nil
		case <-p.q.done:
			p.keepBuffered(&Message{Data: data, Priority: prio})
			return nil
		}
	}
}

// keepBuffered moves what is left in the channel's buffer, then the
// message in hand (taken last, so it goes last), to the Queue's pending
// list for its next Receive (or Close).
func (p *recvPump[T]) keepBuffered(inHand *Message) {
	var keep []Message
	for {
		select {
		case v := <-p.ch:
			keep = append(keep, p.unwrap(v))
			continue
		default:
		}
		break
	}
	if inHand != nil {
		keep = append(keep, *inHand)
	}
	p.q.pending.push(keep...)
}

// finish records why the pump stopped, closes an owned Queue, then closes
// the channel and done.
func (p *recvPump[T]) finish(err error) {
	if p.owned {
		if cerr := p.q.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	p.err = err
	close(p.ch)
	close(p.done)
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

// ordinaryEnd reports whether err, from a Receive with the pump's context,
// means the pump was asked to stop: its context is done (Receive returns no
// other context's error) or its Queue closed.
func ordinaryEnd(err error) bool {
	return errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Sender is a send pump: a goroutine that takes messages from C and queues
// them, waiting while the queue is full (so, with the default Buffer(0), a
// send on C blocks until the kernel queue has room: back-pressure is the
// kernel's). Create one with Queue.Sender or OpenSender.
//
// Close C when done: the pump queues everything sent before, then stops.
// It also stops when its context is done, the Queue is closed, or on a
// fault; Done is then closed, and messages it accepted but did not queue
// are returned by Wait. Do not modify a slice after sending it on C.
type Sender struct {
	// C accepts messages to queue. The caller closes it when done.
	C chan<- []byte
	p *sendPump[[]byte]
}

// Wait waits for the pump to stop and returns nil if every message taken
// from C was queued. Otherwise it returns an *UndeliveredError holding the
// messages that were not, bytes included, and why: the context's error,
// ErrClosed, or a per-message refusal such as ErrMessageTooLarge (the
// pump reports such a message and goes on with the next one). Wait also
// collects messages left in C's buffer, so call it after the last send.
func (s *Sender) Wait() error { return s.p.wait() }

// Done is closed when the pump has stopped; after that nothing reads C.
// Select on it (or on the context) when sending on C.
func (s *Sender) Done() <-chan struct{} { return s.p.done }

// MessageSender is Sender for messages with their own priorities.
type MessageSender struct {
	// C accepts messages to queue. The caller closes it when done.
	C chan<- Message
	p *sendPump[Message]
}

// Wait is Sender.Wait.
func (s *MessageSender) Wait() error { return s.p.wait() }

// Done is Sender.Done.
func (s *MessageSender) Done() <-chan struct{} { return s.p.done }

// Sender starts a send pump on q; see the type's documentation. Its
// options are Buffer (capacity of C, default 0) and Priority (default 0).
// An invalid option, a closed Queue or a read-only one stops the pump at
// once: Done is closed and Wait reports why.
func (q *Queue) Sender(ctx context.Context, opts ...Option) *Sender {
	c, err := newPumpConfig(opts)
	if err != nil {
		p := stoppedSender[[]byte](q, err)
		return &Sender{C: p.ch, p: p}
	}
	p := runSender(ctx, q, c, false, func(b []byte) Message { return Message{Data: b, Priority: c.priority} })
	return &Sender{C: p.ch, p: p}
}

// MessageSender is Sender queueing each message with its own priority.
func (q *Queue) MessageSender(ctx context.Context, opts ...Option) *MessageSender {
	c, err := newPumpConfig(opts)
	if err != nil {
		p := stoppedSender[Message](q, err)
		return &MessageSender{C: p.ch, p: p}
	}
	p := runSender(ctx, q, c, false, func(m Message) Message { return m })
	return &MessageSender{C: p.ch, p: p}
}

// sendPump moves messages from ch to a Queue.
type sendPump[T any] struct {
	q      *Queue
	ch     chan T
	unwrap func(T) Message
	owned  bool
	done   chan struct{} // closed when the pump has stopped

	mu         sync.Mutex // guards what follows
	unsent     []Message  // accepted, not queued, in order
	why        []error    // why they were not queued, one entry per distinct reason
	stopReason error      // why the pump stopped, for messages found in ch afterwards
	fault      error      // an error not tied to a message: the pump could not start, or Close failed
}

func stoppedSender[T any](q *Queue, err error) *sendPump[T] {
	p := &sendPump[T]{q: q, ch: make(chan T), done: make(chan struct{})}
	p.fault = opError("sender", q.name, err)
	close(p.done)
	return p
}

func runSender[T any](ctx context.Context, q *Queue, c *config, owned bool, unwrap func(T) Message) *sendPump[T] {
	p := &sendPump[T]{q: q, ch: make(chan T, c.buffer), unwrap: unwrap, owned: owned, done: make(chan struct{})}
	var fault error
	switch {
	case !q.canSend:
		fault = ErrReadOnly
	case !q.addPump():
		fault = ErrClosed
	}
	if fault != nil {
		p.fault = opError("sender", q.name, fault)
		p.stop(p.fault)
		return p
	}
	go p.run(ctx)
	return p
}

func (p *sendPump[T]) run(ctx context.Context) {
	err := p.pump(ctx)
	p.q.pumps.Done()
	p.stop(err)
}

// pump loops until ch is closed (nil), ctx is done, the Queue closes, or
// a fault, and returns the stop reason for messages still unsent.
func (p *sendPump[T]) pump(ctx context.Context) error {
	for {
		select {
		case v, ok := <-p.ch:
			if !ok {
				return nil
			}
			m := p.unwrap(v)
			err := p.q.Send(ctx, m.Data, m.Priority)
			switch {
			case err == nil:
			case errors.Is(err, ErrMessageTooLarge) || errors.Is(err, ErrPriority):
				p.record(m, err) // this message only: go on with the next
			default:
				p.record(m, err)
				return err
			}
		case <-ctx.Done():
			return opError("sender", p.q.name, ctxError(ctx))
		case <-p.q.done:
			return opError("sender", p.q.name, ErrClosed)
		}
	}
}

// record notes m as unsent because of err.
func (p *sendPump[T]) record(m Message, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unsent = append(p.unsent, m)
	p.addWhy(err)
}

func (p *sendPump[T]) addWhy(err error) {
	for _, w := range p.why {
		if w.Error() == err.Error() {
			return
		}
	}
	p.why = append(p.why, err)
}

// stop closes an owned Queue, collects what is left in ch, and closes done.
func (p *sendPump[T]) stop(reason error) {
	var closeErr error
	if p.owned {
		closeErr = p.q.Close()
	}
	p.mu.Lock()
	p.stopReason = reason
	if p.fault == nil {
		p.fault = closeErr
	}
	p.mu.Unlock()
	p.drain()
	close(p.done)
}

// drain moves messages waiting in ch to unsent, without blocking.
func (p *sendPump[T]) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		select {
		case v, ok := <-p.ch:
			if !ok {
				return
			}
			p.unsent = append(p.unsent, p.unwrap(v))
			if p.stopReason != nil {
				p.addWhy(p.stopReason)
			}
			continue
		default:
		}
		return
	}
}

func (p *sendPump[T]) wait() error {
	<-p.done
	p.drain()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.unsent) == 0 {
		return p.fault
	}
	return &UndeliveredError{Messages: append([]Message(nil), p.unsent...), Err: errors.Join(append(p.why, p.fault)...)}
}

// All returns an iterator over the queue's messages, for
//
//	for msg, err := range q.All(ctx) { ... }
//
// Each step is a Receive, in the caller's goroutine: no pump, no message
// held anywhere but in the loop. It ends after yielding one error (ctx's
// error when ctx is done, ErrClosed after Close, or a fault), or when the
// loop breaks.
func (q *Queue) All(ctx context.Context) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		for {
			msg, _, err := q.Receive(ctx)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(msg, nil) {
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

// addPump registers a pump that Close must wait for; it reports false if
// the Queue is already closing.
func (q *Queue) addPump() bool {
	q.pumpMu.Lock()
	defer q.pumpMu.Unlock()
	if q.closed.Load() {
		return false
	}
	q.pumps.Add(1)
	return true
}
