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
// ctx is done (nil) or a fault stops it.
func (b *inBridge) forward(ctx context.Context, prefetch int) error {
	in := b.cfg
	it, err := b.cons.Messages(jetstream.PullMaxMessages(prefetch))
	if err != nil {
		return fmt.Errorf("consume %s/%s: %w", in.Stream, in.Durable, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return fmt.Errorf("%w: consumer %s on stream %s: %w: recreate it and restart the bridge", ErrConsumerNotFound, in.Durable, in.Stream, err)
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
	seq := meta.Sequence.Stream
	if _, done := b.sent[seq]; done {
		b.ack(msg, seq)
		return nil
	}
	q := b.cfg.Queue
	data := msg.Data()
	if len(data) > q.MessageSize() {
		return b.refuse(ctx, msg, fmt.Sprintf("message of %d bytes is larger than the MessageSize %d of queue %s: recreate the queue with a larger MessageSize (fs.mqueue.msgsize_max permitting) or cap the stream's max_msg_size", len(data), q.MessageSize(), q.Name()))
	}
	var prio uint64
	if h := msg.Headers().Get(PriorityHeader); h != "" {
		prio, err = strconv.ParseUint(h, 10, 16)
		if err != nil || prio > chanmq.MaxPriority {
			return b.refuse(ctx, msg, fmt.Sprintf("header %s: %q is not a priority (0 to %d)", PriorityHeader, h, chanmq.MaxPriority))
		}
	}
	if err := b.send(ctx, msg, data, uint(prio)); err != nil {
		if ctx.Err() != nil {
			return err // not sent, not acknowledged: JetStream redelivers it
		}
		return fmt.Errorf("stream sequence %d: %w (not acknowledged: JetStream redelivers it)", seq, err)
	}
	if err := b.journalSent(seq); err != nil {
		return err
	}
	b.ack(msg, seq)
	return b.compact(ctx)
}

// send queues data, telling JetStream the message is in progress while
// the queue stays full, so that its AckWait does not run out.
func (b *inBridge) send(ctx context.Context, msg jetstream.Msg, data []byte, prio uint) error {
	q := b.cfg.Queue
	err := q.TrySend(data, prio)
	if !errors.Is(err, chanmq.ErrFull) {
		return err
	}
	for {
		sctx, cancel := context.WithTimeout(ctx, b.keepalive)
		err := q.Send(sctx, data, prio)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		_ = msg.InProgress() // best effort: a redelivery is acknowledged without a send anyway
	}
}

// ack acknowledges msg. A lost ack only means a redelivery, which the
// journal catches; a failure here is a closed connection, which the next
// pull reports. So it is logged (at debug level), not returned.
func (b *inBridge) ack(msg jetstream.Msg, seq uint64) {
	if err := msg.Ack(); err != nil {
		b.log.Debug("acknowledging to JetStream failed; a redelivery will be acknowledged from the journal", "seq", seq, "err", err)
	}
}
