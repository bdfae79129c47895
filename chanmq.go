// Package chanmq makes Linux POSIX message queues feel like Go channels:
// processes on one host, or containers of one Kubernetes pod (they share an
// IPC namespace), talk through a kernel queue as goroutines talk through a
// chan []byte. It is pure Go (no cgo), every blocking call takes a context,
// and a blocked call holds no OS thread.
//
// Start with [Queue.Receiver] and [Queue.Sender] (or [OpenReceiver] and
// [OpenSender]), which expose a queue as a receive-only or send-only
// channel; [OpenReceiverOf], [OpenSenderOf] and [Of] do the same for
// values of any type, through a [Codec] such as [JSON]; [EndOfStream]
// carries close(C) to receivers in other processes; [Queue.All] ranges over
// messages without a goroutine; the raw [Queue] methods (Send, Receive,
// ReceiveInto, TrySend, TryReceive) are there when you need control. See
// the examples.
//
// No message is lost silently: a message taken out of the kernel queue is
// delivered, kept for the next Receive on the same Queue, put back into the
// kernel queue by Close, or returned inside an *UndeliveredError (or, if it
// did not decode, a *DecodeError); a value a send pump accepted but did
// not queue comes back from Wait inside an *UnsentError.
package chanmq

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"sync"
	"unsafe"
)

// This file is the channel adapter: pumps that move messages between a
// Queue and a Go channel, and the iterators. One receive pump and one send
// pump serve []byte, Message and typed channels (typed.go): they differ
// only in how a message becomes a value and back.

// ReceiverOf is a receive pump: a goroutine that takes messages from a
// Queue and hands them out on C as values of T, in the order the kernel
// gives them (highest priority first). Receiver (T is []byte) and
// MessageReceiver (T is Message) come from Queue.Receiver,
// Queue.MessageReceiver and OpenReceiver; typed ones from Of(…).Receiver
// and OpenReceiverOf.
//
// The pump stops when its context is done, when the Queue is closed, on
// an end-of-stream marker (see EndOfStream), or on a fault; it then closes
// C, so `for v := range r.C` ends. Once C is closed, Err is final.
// Messages it had taken but not handed out (the one in its hand and those
// in C's buffer) are kept by the Queue for its next receive, in the order
// they were taken, or put back into the kernel queue by Close: none is
// lost. A receive already waiting on the Queue takes them at once. Putting
// back needs a queue opened read-write (the default); on a ReadOnly queue
// Close returns them in an *UndeliveredError instead. A message put back
// goes behind the messages of its priority that arrived since. To leave a
// range loop early, cancel the context and call Wait.
type ReceiverOf[T any] struct {
	// C delivers the values. It is closed when the pump stops.
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
// that the message in the pump's hand is not lost with the process.
func (r *ReceiverOf[T]) Wait() error { <-r.p.done; return r.p.err }

// Receiver starts a receive pump on q; see ReceiverOf. Its options are
// Buffer (capacity of C, default 0) and EndOfStream. An invalid option, a
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
// failure to do so is reported by Err.
func OpenReceiver(ctx context.Context, name string, opts ...OpenReceiverOption) (*Receiver, error) {
	return openReceiver(ctx, name, opts, bytesFrom)
}

func bytesFrom(m Message) ([]byte, error)    { return m.Data, nil }
func messageFrom(m Message) (Message, error) { return m, nil }

// openReceiver opens name and starts a receive pump that owns the Queue.
func openReceiver[T any](ctx context.Context, name string, opts []OpenReceiverOption, decode func(Message) (T, error)) (*ReceiverOf[T], error) {
	q, c, err := openForPump(name, opts)
	if err != nil {
		return nil, err
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

// recvPump moves messages from a Queue to ch, turning each into a T.
type recvPump[T any] struct {
	q      *Queue
	ch     chan T
	decode func(Message) (T, error)
	c      *config
	owned  bool          // close q when the pump stops
	done   chan struct{} // closed when the pump has stopped and err is set
	err    error

	// Messages from the kernel are received into slots, reused in turn,
	// unless the values keep their bytes ([]byte and Message pumps), when
	// each gets a new slice. A slot is reused only after cap(ch)+1 more
	// messages, when nothing can refer to it any more.
	keepsBytes bool
	slots      [][]byte
	slot       int

	// sent remembers the last cap(ch) values sent on ch with their
	// original messages, in order, so that a stopping pump can give back
	// those still in ch's buffer exactly as they came (never re-encoded).
	sent ring[T]
	// same tells whether a value drained from ch is the one sent for an
	// entry of sent (see keepBuffered).
	same func(a, b T) bool
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

func runReceiver[T any](ctx context.Context, q *Queue, c *config, owned bool, decode func(Message) (T, error)) *ReceiverOf[T] {
	p := &recvPump[T]{q: q, ch: make(chan T, c.buffer), decode: decode, c: c, owned: owned, done: make(chan struct{})}
	r := &ReceiverOf[T]{C: p.ch, p: p}
	switch {
	case !q.canRecv:
		p.finish(opError("receiver", q.name, ErrWriteOnly))
	case c.deadLetter.sameKernelQueue(q):
		p.finish(opError("receiver", q.name, fmt.Errorf("%w: DeadLetter is the queue being received from", ErrInvalidOption)))
	case c.endOfStream && !q.canSend:
		p.finish(opError("receiver", q.name, fmt.Errorf("%w: EndOfStream puts the marker back for the other receivers, which needs the queue open for sending: %w (drop ReadOnly)", ErrInvalidOption, ErrReadOnly)))
	case !q.addPump():
		p.finish(nil) // closed: an ordinary end
	default:
		p.keepsBytes, p.same = sameValue[T]()
		if !p.keepsBytes {
			p.slots = make([][]byte, c.buffer+1)
		}
		p.sent = newRing[T](c.buffer)
		go p.run(ctx)
	}
	return r
}

// sameValue returns how to tell that two values of T are the same value
// sent on a pump's channel, and whether T's values hold their message's
// bytes. A []byte or Message value holds the new slice made for its
// message, so the slice itself says which message it is. A typed value
// is compared with reflect.DeepEqual.
func sameValue[T any]() (keepsBytes bool, same func(a, b T) bool) {
	switch any(*new(T)).(type) {
	case []byte:
		return true, func(a, b T) bool { return sameSlice(any(a).([]byte), any(b).([]byte)) }
	case Message:
		return true, func(a, b T) bool {
			ma, mb := any(a).(Message), any(b).(Message)
			return ma.Priority == mb.Priority && sameSlice(ma.Data, mb.Data)
		}
	}
	return false, func(a, b T) bool { return reflect.DeepEqual(a, b) }
}

// sameSlice reports whether a and b are the same slice (same array, same
// length), not merely equal bytes.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

func (p *recvPump[T]) run(ctx context.Context) {
	err := p.pump(ctx)
	p.q.pumpDone()
	p.finish(err)
}

// pump loops until ctx is done, the Queue closes, the stream ends, or a
// fault; it returns the fault, or nil for an ordinary end.
func (p *recvPump[T]) pump(ctx context.Context) error {
	for {
		m, err := p.take(ctx)
		if err != nil {
			p.keepBuffered(nil)
			if ordinaryEnd(err) {
				return nil
			}
			return reOp("receiver", err)
		}
		if p.c.endOfStream && len(m.Data) == 0 {
			return p.endOfStream(m)
		}
		v, err := p.decode(m.Message)
		if err != nil {
			if err := p.decodeFailed(ctx, m, err); err != nil {
				p.keepBuffered(nil)
				return err
			}
			continue
		}
		select {
		case p.ch <- v:
			p.sent.push(sentValue[T]{m, v})
		case <-ctx.Done():
			p.keepBuffered(&m)
			return nil
		case <-p.q.done:
			p.keepBuffered(&m)
			return nil
		}
	}
}

// take receives the next message, into the next slot or a new slice.
func (p *recvPump[T]) take(ctx context.Context) (heldMessage, error) {
	var buf []byte
	if p.keepsBytes {
		bp := p.q.bufs.Get().(*[]byte)
		defer p.q.bufs.Put(bp)
		buf = *bp
	} else {
		if p.slots[p.slot] == nil {
			p.slots[p.slot] = make([]byte, p.q.msgSize)
		}
		buf = p.slots[p.slot]
	}
	m, fromKernel, err := p.q.receive(ctx, buf, true)
	if err != nil || !fromKernel {
		return m, err
	}
	if p.keepsBytes {
		data := make([]byte, len(m.Data))
		copy(data, m.Data)
		m.Data = data
	} else {
		p.slot = (p.slot + 1) % len(p.slots)
	}
	return m, nil
}

// endOfStream ends the pump on the marker m. It puts the marker back for
// the queue's other receivers (into the kernel queue if there is room,
// else among the held messages, for this process's next receive and for
// Close), and leaves ch's buffer to be read: the stream ended in order.
func (p *recvPump[T]) endOfStream(m heldMessage) error {
	if err := p.q.TrySend(nil, m.Priority); err != nil {
		p.q.keep([]heldMessage{m})
	}
	return nil
}

// decodeFailed handles a message that did not decode: the OnDecodeError
// callback or the DeadLetter queue takes it (nil: go on), or the pump
// stops with a *DecodeError that holds it.
func (p *recvPump[T]) decodeFailed(ctx context.Context, m heldMessage, err error) error {
	de := &DecodeError{Message: Message{Data: append([]byte(nil), m.Data...), Priority: m.Priority}, Err: err}
	switch {
	case p.c.onDecodeError != nil:
		p.c.onDecodeError(de)
		return nil
	case p.c.deadLetter != nil:
		if serr := p.c.deadLetter.Send(ctx, m.Data, m.Priority); serr != nil {
			de.Err = errors.Join(err, fmt.Errorf("to dead-letter queue: %w", serr))
			return opError("receiver", p.q.name, de)
		}
		return nil
	}
	return opError("receiver", p.q.name, de)
}

// keepBuffered gives the Queue what the pump holds: the values it drains
// from ch's buffer, as their original messages, and the one in hand, in
// the order they were taken.
//
// A reader may still be receiving from ch while the pump drains it, and
// both take from the head, so the drained values are some of the last
// ones sent, not necessarily the last n: each is matched, in order, to
// the entry of sent it came from. For []byte and Message pumps the match
// is exact (each value is its own new slice). For typed values it is by
// equality: of two values that decode equal but came from different
// bytes (a field this T does not know), the one a concurrent reader took
// cannot be told apart, and the bytes of either may be the ones kept.
func (p *recvPump[T]) keepBuffered(inHand *heldMessage) {
	var drained []T
	for {
		select {
		case v := <-p.ch:
			drained = append(drained, v)
			continue
		default:
		}
		break
	}
	keep := p.sent.match(drained, p.same)
	if inHand != nil {
		keep = append(keep, *inHand)
	}
	p.q.keep(keep)
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

// sentValue is a value sent on a pump's channel and the message it came from.
type sentValue[T any] struct {
	m heldMessage
	v T
}

// ring remembers the last few values sent on a pump's channel.
type ring[T any] struct {
	vals []sentValue[T]
	next int // where the next push goes
	n    int // how many are remembered, up to len(vals)
}

func newRing[T any](size int) ring[T] { return ring[T]{vals: make([]sentValue[T], size)} }

func (r *ring[T]) push(s sentValue[T]) {
	if len(r.vals) == 0 {
		return
	}
	r.vals[r.next] = s
	r.next = (r.next + 1) % len(r.vals)
	r.n = min(r.n+1, len(r.vals))
}

// match returns the messages of drained, values taken back from the
// channel in the order they were sent: each is the first remembered entry
// after the previous match that same says it is. A value same cannot
// place (a typed value holding a NaN is not DeepEqual to itself) takes the
// next entry in order: a guess, but never a message dropped.
func (r *ring[T]) match(drained []T, same func(a, b T) bool) []heldMessage {
	out := make([]heldMessage, 0, len(drained)+1)
	at := func(i int) sentValue[T] { return r.vals[(r.next-i+len(r.vals))%len(r.vals)] }
	i := r.n // entries left, oldest first: at(i) is the next one
	for _, d := range drained {
		j := i
		for j > 0 && !same(at(j).v, d) {
			j--
		}
		if j == 0 { // no match: take the next entry
			j = i
		}
		if j > 0 {
			out = append(out, at(j).m)
			i = j - 1
		}
	}
	return out
}

// SenderOf is a send pump: a goroutine that takes values from C and queues
// them, waiting while the queue is full (so, with the default Buffer(0), a
// send on C blocks until the kernel queue has room: back-pressure is the
// kernel's). Sender (T is []byte) and MessageSender (T is Message, each
// with its own priority) come from Queue.Sender, Queue.MessageSender and
// OpenSender; typed ones from Of(…).Sender and OpenSenderOf.
//
// Close C when done: the pump queues everything sent before (then, with
// EndOfStream, the end-of-stream marker), and stops. It also stops when
// its context is done, the Queue is closed, or on a fault; Done is then
// closed, and values it accepted but did not queue are returned by Wait.
// A value refused on its own (too large, failing to encode, a zero-length
// message with EndOfStream) is reported by Wait and the pump goes on with
// the next. Do not modify a slice after sending it on C.
type SenderOf[T any] struct {
	// C accepts values to queue. The caller closes it when done.
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
// or per-value refusals such as ErrMessageTooLarge. Wait also collects
// values left in C's buffer, so call it after the last send.
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

// Done is closed when the pump has stopped; after that nothing reads C.
// Select on it (or on the context) when sending on C.
func (s *SenderOf[T]) Done() <-chan struct{} { return s.p.done }

// Sender starts a send pump on q; see SenderOf. Its options are Buffer
// (capacity of C, default 0), Priority (default 0) and EndOfStream. An
// invalid option, a closed Queue or a read-only one stops the pump at
// once: Done is closed and Wait reports why.
func (q *Queue) Sender(ctx context.Context, opts ...SenderOption) *Sender {
	return startSender(ctx, q, opts, false, bytesTo)
}

// MessageSender is Sender queueing each message with its own priority.
func (q *Queue) MessageSender(ctx context.Context, opts ...SenderOption) *MessageSender {
	return startSender(ctx, q, opts, false, messageTo)
}

// OpenSender opens the queue called name (with Open's options, such as
// Create) and starts a Sender on it (with sender options, such as
// Priority). The Sender owns the Queue and closes it when the pump stops.
func OpenSender(ctx context.Context, name string, opts ...OpenSenderOption) (*Sender, error) {
	return openSender(ctx, name, opts, bytesTo)
}

func bytesTo(v []byte, prio uint) ([]byte, uint, error) { return v, prio, nil }
func messageTo(m Message, _ uint) ([]byte, uint, error) { return m.Data, m.Priority, nil }

// openSender opens name and starts a send pump that owns the Queue.
func openSender[T any](ctx context.Context, name string, opts []OpenSenderOption, encode encodeFunc[T]) (*SenderOf[T], error) {
	q, c, err := openForPump(name, opts)
	if err != nil {
		return nil, err
	}
	return runSender(ctx, q, c, true, encode), nil
}

// encodeFunc turns v into a message: its bytes, valid until the next
// call, and its priority (prio is the pump's). Each pump has its own.
type encodeFunc[T any] func(v T, prio uint) ([]byte, uint, error)

// sendPump moves values from ch to a Queue.
type sendPump[T any] struct {
	q      *Queue
	ch     chan T
	encode encodeFunc[T]
	c      *config
	owned  bool
	done   chan struct{} // closed when the pump has stopped

	mu     sync.Mutex // guards what follows
	unsent []T        // accepted, not queued, in order
	why    []error    // why they were not queued, one entry per distinct reason
	stopAt error      // why the pump stopped, for values found in ch afterwards
	fault  error      // an error not tied to a value: the pump could not start, Close failed
}

func startSender[T any](ctx context.Context, q *Queue, opts []SenderOption, owned bool, encode encodeFunc[T]) *SenderOf[T] {
	c, err := newConfig(opts)
	if err != nil {
		p := &sendPump[T]{q: q, ch: make(chan T), done: make(chan struct{})}
		p.fault = opError("sender", q.name, err)
		close(p.done)
		return &SenderOf[T]{C: p.ch, p: p}
	}
	return runSender(ctx, q, c, owned, encode)
}

func runSender[T any](ctx context.Context, q *Queue, c *config, owned bool, encode encodeFunc[T]) *SenderOf[T] {
	p := &sendPump[T]{q: q, ch: make(chan T, c.buffer), encode: encode, c: c, owned: owned, done: make(chan struct{})}
	s := &SenderOf[T]{C: p.ch, p: p}
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
		return s
	}
	go p.run(ctx)
	return s
}

func (p *sendPump[T]) run(ctx context.Context) {
	err := p.pump(ctx)
	p.q.pumpDone()
	p.stop(err)
}

// pump loops until ch is closed (nil), ctx is done, the Queue closes, or
// a fault, and returns the stop reason for values still unsent.
func (p *sendPump[T]) pump(ctx context.Context) error {
	for {
		select {
		case v, ok := <-p.ch:
			if !ok {
				return p.closed(ctx)
			}
			if err := p.send(ctx, v); err != nil {
				return err
			}
		case <-ctx.Done():
			return opError("sender", p.q.name, ctxError(ctx))
		case <-p.q.done:
			return opError("sender", p.q.name, ErrClosed)
		}
	}
}

// send encodes and queues v; it records a value refused on its own and
// returns nil, so that the pump goes on, or returns a fault.
func (p *sendPump[T]) send(ctx context.Context, v T) error {
	data, prio, err := p.encode(v, p.c.priority)
	if err == nil && p.c.endOfStream && len(data) == 0 {
		err = fmt.Errorf("%w: with EndOfStream a zero-length message is the end-of-stream marker", ErrEmptyMessage)
	}
	if err != nil {
		p.record(v, opError("sender", p.q.name, err)) // this value only: go on with the next
		return nil
	}
	err = p.q.Send(ctx, data, prio)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrMessageTooLarge) || errors.Is(err, ErrPriority):
		p.record(v, err) // this value only: go on with the next
		return nil
	default:
		p.record(v, err)
		return err
	}
}

// closed handles the close of ch: with EndOfStream, queue the marker.
func (p *sendPump[T]) closed(ctx context.Context) error {
	if !p.c.endOfStream {
		return nil
	}
	if err := p.q.Send(ctx, nil, 0); err != nil {
		p.mu.Lock()
		p.fault = fmt.Errorf("queueing the end-of-stream marker: %w", err)
		p.mu.Unlock()
	}
	return nil
}

// record notes v as unsent because of err.
func (p *sendPump[T]) record(v T, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unsent = append(p.unsent, v)
	p.addWhy(err)
}

// addWhy adds err to the reasons unless one of its kind is there: one
// per sentinel (the first "message too large" stands for all of them),
// else one per error value.
func (p *sendPump[T]) addWhy(err error) {
	for _, w := range p.why {
		if sameKind(w, err) {
			return
		}
	}
	p.why = append(p.why, err)
}

// reasonKinds are the sentinels by which addWhy groups reasons.
var reasonKinds = []error{ErrMessageTooLarge, ErrPriority, ErrEmptyMessage, ErrEncode, ErrClosed, context.Canceled, context.DeadlineExceeded}

func sameKind(a, b error) bool {
	for _, k := range reasonKinds {
		if errors.Is(a, k) {
			return errors.Is(b, k)
		}
	}
	return errors.Is(a, b)
}

// stop closes an owned Queue, collects what is left in ch, and closes done.
func (p *sendPump[T]) stop(reason error) {
	var closeErr error
	if p.owned {
		closeErr = p.q.Close()
	}
	p.mu.Lock()
	p.stopAt = reason
	p.fault = errors.Join(p.fault, closeErr)
	p.mu.Unlock()
	p.drain()
	close(p.done)
}

// drain moves values waiting in ch to unsent, without blocking.
func (p *sendPump[T]) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		select {
		case v, ok := <-p.ch:
			if !ok {
				return
			}
			p.unsent = append(p.unsent, v)
			if p.stopAt != nil {
				p.addWhy(p.stopAt)
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
	return &UnsentError[T]{Values: append([]T(nil), p.unsent...), Err: errors.Join(append(p.why, p.fault)...)}
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
