package mqbridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/chanmq/chanmq"
	"github.com/nats-io/nats.go/jetstream"
)

// forward pulls the consumer's messages and hands each to handle until
// ctx is done (nil), a fault stops it, or the consumer or its stream
// changed (a *changed: Run revalidates and calls forward again). Between
// messages, and while it waits for one, it checks the consumer when a
// check is due (in_watch.go).
func (b *inBridge) forward(ctx context.Context) error {
	in := b.cfg
	it, err := b.cons.Messages(jetstream.PullMaxMessages(b.prefetch))
	if err != nil {
		return fmt.Errorf("consume %s/%s: %w", in.Stream, in.Durable, err)
	}
	defer it.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		if b.watch.due() {
			if err := b.verify(ctx); err != nil {
				return err
			}
		}
		msg, err := it.Next(jetstream.NextContext(b.watch.tick))
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
				continue // a check is due
			case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrNoHeartbeat), errors.Is(err, jetstream.ErrMsgIteratorClosed):
				return b.pullFailed(ctx, err)
			}
			b.log.Warn("pulling from the consumer failed; retrying", "err", err)
			select { // do not spin on an error that persists
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if err := b.handle(ctx, msg); err != nil {
			return unlessDone(ctx, err)
		}
	}
}

// handle forwards one stream message, or acknowledges it if it was sent
// before, or terminates it if the queue can never take it.
func (b *inBridge) handle(ctx context.Context, msg jetstream.Msg) error {
	meta, err := msg.Metadata()
	if err != nil {
		return b.refuse(ctx, msg, fmt.Sprintf("not a JetStream message (%v)", err))
	}
	seq, stored := meta.Sequence.Stream, meta.Timestamp.UnixNano()
	h := msg.Headers()
	if b.origin != "" && h.Get(OriginHeader) == b.origin {
		return b.looped(seq)
	}
	if b.sentBefore(seq, stored) {
		b.ack(msg, seq)
		return nil
	}
	q := b.cfg.Queue
	data := msg.Data()
	if len(data) > q.MessageSize() {
		return b.refuse(ctx, msg, fmt.Sprintf("message of %d bytes is larger than the MessageSize %d of queue %s: recreate the queue with a larger MessageSize (fs.mqueue.msgsize_max permitting) or cap the stream's max_msg_size", len(data), q.MessageSize(), q.Name()))
	}
	var prio uint64
	if p := h.Get(PriorityHeader); p != "" {
		prio, err = strconv.ParseUint(p, 10, 16)
		if err != nil || prio > chanmq.MaxPriority {
			return b.refuse(ctx, msg, fmt.Sprintf("header %s: %q is not a priority (0 to %d)", PriorityHeader, p, chanmq.MaxPriority))
		}
	}
	waited, err := b.send(ctx, msg, data, uint(prio))
	if err != nil {
		if ctx.Err() != nil {
			return err // not sent, not acknowledged: JetStream redelivers it
		}
		var ch *changed
		if errors.As(err, &ch) {
			return err // not sent, not acknowledged
		}
		return fmt.Errorf("stream sequence %d: %w (not acknowledged: JetStream redelivers it)", seq, err)
	}
	// An acknowledgement names only the sequence: make sure, after a wait,
	// that the stream is still the one this message came from.
	var changedErr error
	if waited && time.Since(b.watch.lastCheck) > inAckFresh {
		changedErr = b.verify(ctx)
		var ch *changed
		if errors.As(changedErr, &ch) && ch.stream {
			b.log.Warn("a message of the stream that was deleted went to the queue; it is neither journaled nor acknowledged", "seq", seq)
			return changedErr
		}
	}
	if err := b.journalSent(seq, stored); err != nil {
		return err
	}
	b.ack(msg, seq)
	if changedErr != nil {
		return changedErr
	}
	return b.compact()
}

// send queues data, telling JetStream the message is in progress while
// the queue stays full, so that its AckWait does not run out, and
// checking the consumer when a check is due. It reports whether it had to
// wait. An error means data was not queued; a *changed means the consumer
// or its stream changed meanwhile.
func (b *inBridge) send(ctx context.Context, msg jetstream.Msg, data []byte, prio uint) (waited bool, err error) {
	q := b.cfg.Queue
	err = q.TrySend(data, prio)
	if !errors.Is(err, chanmq.ErrFull) {
		return false, err
	}
	alive := time.Now().Add(b.keepalive)
	for {
		sctx, cancel := context.WithDeadline(ctx, minTime(alive, b.watch.next))
		err := q.Send(sctx, data, prio)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return true, err
		}
		if b.watch.due() {
			if err := b.verify(ctx); err != nil {
				return true, err
			}
		}
		if now := time.Now(); !now.Before(alive) {
			_ = msg.InProgress() // best effort: a redelivery is acknowledged without a send anyway
			alive = now.Add(b.keepalive)
		}
	}
}

// minTime is the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ack acknowledges msg. A lost ack only means a redelivery, which the
// journal catches; a failure here is a closed connection, which the next
// pull reports. So it is logged (at debug level), not returned.
func (b *inBridge) ack(msg jetstream.Msg, seq uint64) {
	if err := msg.Ack(); err != nil {
		b.log.Debug("acknowledging to JetStream failed; a redelivery will be acknowledged from the journal", "seq", seq, "err", err)
	}
}
