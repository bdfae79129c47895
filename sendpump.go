package chanmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// This file is the send pump: one goroutine that takes values from a
// channel the program sends on and queues them.
//
// A program converted from make(chan T) sends in a plain loop, with no
// select: `for _, v := range vs { tx.C <- v }; close(tx.C); tx.Wait()`. If
// the pump simply ended when its context did (Ctrl-C), that loop would
// block for ever on a channel nobody reads. So a pump that stops before C
// is closed goes on taking values from C until it is: each is recorded as
// unsent, with why the pump stopped, and returned by Wait. The loop runs
// to its end, close returns, and Wait reports every value that was not
// queued.

// sendPump moves values from ch to a Queue.
type sendPump[T any] struct {
	q      *Queue
	ch     chan T
	encode encodeFunc[T]
	user   bool // encode is the caller's code (a codec)
	c      *config
	owned  bool
	done   chan struct{} // closed when the pump has stopped queueing

	// After a stop before ch was closed, the pump goes on taking values
	// from ch (the sink). Wait hands it a channel on ask and the sink
	// closes it once every value sent so far is recorded; sinkDone is
	// closed when ch has been closed and emptied (or there is no sink).
	ask      chan chan struct{}
	sinkDone chan struct{}

	mu     sync.Mutex // guards what follows
	unsent []T        // accepted, not queued, in order
	why    []error    // why they were not queued, one entry per distinct reason
	stopAt error      // why the pump stopped, for values taken afterwards
	fault  error      // an error not tied to a value: the pump could not start, Close failed
}

func newSendPump[T any](q *Queue, c *config, owned bool, encode encodeFunc[T], user bool) *sendPump[T] {
	return &sendPump[T]{q: q, ch: make(chan T, c.buffer), encode: encode, user: user, c: c, owned: owned,
		done: make(chan struct{}), ask: make(chan chan struct{}), sinkDone: make(chan struct{})}
}

// runSender checks the Queue and starts a send pump on it.
func runSender[T any](ctx context.Context, q *Queue, c *config, owned bool, encode encodeFunc[T], user bool) *SenderOf[T] {
	p := newSendPump(q, c, owned, encode, user)
	s := &SenderOf[T]{C: p.ch, p: p}
	var fault error
	switch {
	case !q.canSend:
		fault = q.cannot(ErrReadOnly)
	case !q.addPump():
		fault = ErrClosed
	}
	if fault != nil {
		p.fault = opError("sender", q.name, fault)
		if p.owned {
			p.fault = errors.Join(p.fault, q.Close())
		}
		p.stopAt = p.fault
		close(p.done)
		go p.sink()
		return s
	}
	go p.run(ctx)
	return s
}

func (p *sendPump[T]) run(ctx context.Context) {
	reason, chClosed := p.pump(ctx)
	closeErr := p.q.pumpDone()
	if p.owned {
		closeErr = errors.Join(closeErr, p.q.Close())
	}
	p.mu.Lock()
	p.stopAt = reason
	p.fault = errors.Join(p.fault, closeErr)
	p.mu.Unlock()
	close(p.done)
	if chClosed {
		close(p.sinkDone)
		return
	}
	p.sink()
}

// pump loops until ch is closed, ctx is done, the Queue closes, or a
// fault. It returns the stop reason for values still unsent, and whether
// ch was closed (the ordinary end, when nothing more can be sent).
func (p *sendPump[T]) pump(ctx context.Context) (reason error, chClosed bool) {
	for {
		select {
		case v, ok := <-p.ch:
			if !ok {
				return p.closed(ctx), true
			}
			if err := p.send(ctx, v); err != nil {
				return err, false
			}
		case <-ctx.Done():
			return opError("sender", p.q.name, ctxError(ctx)), false
		case <-p.q.done:
			return opError("sender", p.q.name, ErrClosed), false
		}
	}
}

// sink takes the values sent on ch after the pump stopped, recording each
// as unsent, until ch is closed. Between values it answers Wait.
func (p *sendPump[T]) sink() {
	defer close(p.sinkDone)
	for {
		select {
		case v, ok := <-p.ch:
			if !ok {
				return
			}
			p.record(v, p.stopAt)
		case ack := <-p.ask:
			// Also what sits in ch's buffer: each of those sends completed
			// before Wait asked.
			for len(p.ch) > 0 {
				v, ok := <-p.ch
				if !ok {
					break
				}
				p.record(v, p.stopAt)
			}
			close(ack)
		}
	}
}

// send encodes and queues v; it records a value refused on its own and
// returns nil, so that the pump goes on, or returns a fault.
func (p *sendPump[T]) send(ctx context.Context, v T) error {
	data, prio, err := p.encodeValue(v)
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

// encodeValue turns v into a message. A codec is the caller's code: it
// may call Close, and a panic in it comes back as an error (encodeWith).
func (p *sendPump[T]) encodeValue(v T) ([]byte, uint, error) {
	if !p.user {
		return p.encode(v, p.c.priority)
	}
	p.q.enterUser()
	defer p.q.leaveUser()
	return p.encode(v, p.c.priority)
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
	if err != nil {
		p.addWhy(err)
	}
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

// wait waits for the pump to stop, then for the sink to record every value
// sent so far, and returns the report.
func (p *sendPump[T]) wait() error {
	<-p.done
	ack := make(chan struct{})
	select {
	case p.ask <- ack:
		<-ack
	case <-p.sinkDone:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.unsent) == 0 {
		return p.fault
	}
	return &UnsentError[T]{Values: append([]T(nil), p.unsent...), Err: errors.Join(append(p.why, p.fault)...)}
}
