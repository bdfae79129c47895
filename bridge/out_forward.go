package mqbridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/chanmq/chanmq"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxBurst is the most messages published together.
const maxBurst = 64

// forward republishes the recovered messages, then receives, journals and
// publishes until ctx is done (nil), or until queueCtx is (its cause,
// once forwardLeft took what the queue still held).
func (b *outBridge) forward(ctx, queueCtx context.Context, recovered []*nats.Msg) error {
	for _, m := range recovered {
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
			// They stay journaled; the drain waits for those published.
			return nil
		}
		b.publish(m)
	}
	q := b.cfg.Queue
	burst := make([]*nats.Msg, 0, maxBurst)
	for {
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		data, prio, err := q.Receive(queueCtx)
		if err != nil {
			<-b.slots
			switch {
			case ctx.Err() != nil:
				return nil // cancelled: nothing was taken
			case queueCtx.Err() != nil:
				return b.forwardLeft(ctx, context.Cause(queueCtx))
			}
			return err
		}
		// Take what else is queued, journaling each message before the next
		// receive (so a crash still loses at most the one in hand), and
		// publish them together: one flush of the connection per burst
		// instead of a wake-up of nats.go's flusher per message.
		for {
			m, jerr := b.journal(data, prio)
			if jerr != nil {
				b.publishAll(burst)
				return b.unjournaled(data, prio, jerr)
			}
			burst = append(burst, m)
			if len(burst) == maxBurst || !b.trySlot() {
				break
			}
			if data, prio, err = q.TryReceive(); err != nil {
				<-b.slots
				break
			}
		}
		b.publishAll(burst)
		burst = burst[:0]
		if err != nil && !errors.Is(err, chanmq.ErrEmpty) {
			return err
		}
	}
}

// forwardLeft journals and publishes what the queue holds until it is
// empty, then returns why (the cause of the end), or nil if ctx is done
// first.
func (b *outBridge) forwardLeft(ctx context.Context, why error) error {
	q := b.cfg.Queue
	for {
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		data, prio, err := q.TryReceive()
		if err != nil {
			<-b.slots
			if errors.Is(err, chanmq.ErrEmpty) {
				return why
			}
			return err
		}
		m, err := b.journal(data, prio)
		if err != nil {
			return b.unjournaled(data, prio, err)
		}
		b.publish(m)
	}
}

// trySlot takes a window slot if one is free.
func (b *outBridge) trySlot() bool {
	select {
	case b.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// newMsg builds the message to publish: its headers are the ID, the
// expected stream (a slice shared by all messages; nothing modifies it),
// the origin (origin.go; shared too) and the priority when it is not 0.
func (b *outBridge) newMsg(id string, prio uint, data []byte) *nats.Msg {
	h := make(nats.Header, 4)
	h[jetstream.MsgIDHeader] = []string{id}
	h[OriginHeader] = originHeader(b.cfg.Queue)
	if b.stream != "" {
		h[jetstream.ExpectedStreamHeader] = b.streamH
	}
	if prio != 0 {
		h[PriorityHeader] = []string{strconv.FormatUint(uint64(prio), 10)}
	}
	return &nats.Msg{Subject: b.cfg.Subject, Header: h, Data: data}
}

func (b *outBridge) publishAll(ms []*nats.Msg) {
	for _, m := range ms {
		b.publish(m)
	}
}

// publish sends m asynchronously; a failure goes to the retrier.
func (b *outBridge) publish(m *nats.Msg) {
	if _, err := b.js.PublishMsgAsync(m); err != nil {
		b.retry <- m // never full: it holds every message in flight
	}
}

// unjournaled reports a journal failure, trying to give the message in
// hand back to the queue first.
func (b *outBridge) unjournaled(data []byte, prio uint, err error) error {
	err = journalError(b.cfg.Journal, err)
	if perr := b.cfg.Queue.TrySend(data, prio); perr != nil {
		return fmt.Errorf("%w; the message in hand (%d bytes, priority %d) could not be put back (%v) and is lost", err, len(data), prio, perr)
	}
	return fmt.Errorf("%w (the message in hand was put back into the queue)", err)
}
