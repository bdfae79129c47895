package mqbridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// refuse hands a message the queue cannot take to the dead-letter subject
// (if any) and terminates it with the reason, so it is never redelivered
// and never dropped silently. The copy carries the original's headers,
// the reason, and where it came from (stream, subject, stream sequence).
func (b *inBridge) refuse(ctx context.Context, msg jetstream.Msg, reason string) error {
	var seq uint64
	if meta, err := msg.Metadata(); err == nil {
		seq = meta.Sequence.Stream
	}
	if dl := b.cfg.DeadLetter; dl != "" {
		h := nats.Header{}
		for k, v := range msg.Headers() {
			// Not the ID (the copy is another message) nor the publisher's
			// expectations (Nats-Expected-Stream would fail the copy).
			if k != jetstream.MsgIDHeader && !strings.HasPrefix(k, "Nats-Expected-") {
				h[k] = v
			}
		}
		h.Set(ReasonHeader, reason)
		h.Set(StreamHeader, b.cfg.Stream)
		h.Set(SubjectHeader, msg.Subject())
		h.Set(SequenceHeader, strconv.FormatUint(seq, 10))
		if _, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: dl, Header: h, Data: msg.Data()}); err != nil {
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				// No stream captures the subject: a core publish, for a subscriber.
				err = b.js.Conn().PublishMsg(&nats.Msg{Subject: dl, Header: h, Data: msg.Data()})
			}
			if err != nil {
				return fmt.Errorf("stream sequence %d refused (%s), and the copy to dead-letter subject %q failed: %w (not acknowledged: JetStream redelivers it)", seq, reason, dl, err)
			}
		}
	}
	b.log.Error("message refused and terminated", "seq", seq, "reason", reason, "dead_letter", b.cfg.DeadLetter)
	if err := msg.TermWithReason(reason); err != nil {
		b.log.Warn("terminating the refused message failed; JetStream redelivers it and it is refused again", "seq", seq, "err", err)
	}
	return nil
}

// looped is the error for a message that an out-bridge reading this very
// queue published: delivering it would feed that out-bridge again, for
// ever. The message is neither delivered nor acknowledged.
func (b *inBridge) looped(seq uint64) error {
	q := b.cfg.Queue
	return fmt.Errorf("%w: stream sequence %d was published by an out-bridge that reads this same queue %s on this host: the out and in bridges of one queue on one host form a loop. Give the in-bridge another queue (see \"both directions on one host\" in the bridge's README); the message was neither delivered nor acknowledged",
		ErrLoop, seq, q.Name())
}
