package mqbridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// refuse hands a message the queue cannot take to the dead-letter subject
// (if any) and terminates it with the reason, so it is never redelivered
// and never dropped silently.
func (b *inBridge) refuse(ctx context.Context, msg jetstream.Msg, reason string) error {
	var seq uint64
	if meta, err := msg.Metadata(); err == nil {
		seq = meta.Sequence.Stream
	}
	if dl := b.cfg.DeadLetter; dl != "" {
		h := nats.Header{}
		for k, v := range msg.Headers() {
			h[k] = v
		}
		h.Set(ReasonHeader, reason)
		h.Del(jetstream.MsgIDHeader)
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
