package mqbridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// check verifies the stream and consumer at start-up (creating the
// consumer if asked to) and warns when the stream takes messages the queue
// cannot. It sets b.identity, b.cons and b.keepalive.
func (b *inBridge) check(ctx context.Context, prefetch int) error {
	in, q := b.cfg, b.cfg.Queue
	s, err := b.js.Stream(ctx, in.Stream)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: stream %q does not exist: check -stream, or create it (`nats stream add %s --subjects ...`)", ErrStreamNotFound, in.Stream, in.Stream)
		}
		return fmt.Errorf("stream %q: %w", in.Stream, err)
	}
	info := s.CachedInfo()
	if m := info.Config.MaxMsgSize; m <= 0 || int(m) > q.MessageSize() {
		b.log.Warn("the stream takes messages larger than the queue's MessageSize; such messages will be terminated (see the bridge's log and the server's advisories)",
			"stream_max_msg_size", m, "queue_message_size", q.MessageSize())
	}
	b.identity = journalOwner(in.Stream, info.Created, in.Durable)

	cons, err := s.Consumer(ctx, in.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) && in.CreateConsumer {
		cons, err = s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       in.Durable,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       in.AckWait,
			FilterSubject: in.FilterSubject,
			MaxAckPending: 4 * prefetch,
		})
		if err == nil {
			b.log.Info("created the durable consumer")
		}
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("%w: stream %q has no consumer %q: create it (`nats consumer add %s %s --pull --ack explicit`) or let the bridge create it (-create-consumer)", ErrConsumerNotFound, in.Stream, in.Durable, in.Stream, in.Durable)
		}
		return fmt.Errorf("consumer %q on stream %q: %w", in.Durable, in.Stream, err)
	}
	cfg := cons.CachedInfo().Config
	if cfg.AckPolicy != jetstream.AckExplicitPolicy {
		return fmt.Errorf("%w: consumer %q acknowledges with policy %q; the bridge needs explicit acks (recreate it with --ack explicit)", ErrConsumerConfig, in.Durable, cfg.AckPolicy)
	}
	if cfg.DeliverSubject != "" {
		return fmt.Errorf("%w: consumer %q is a push consumer; the bridge needs a pull consumer (recreate it with --pull)", ErrConsumerConfig, in.Durable)
	}
	b.cons = cons
	b.keepalive = max(cfg.AckWait/3, 100*time.Millisecond)
	if cfg.AckWait == 0 {
		b.keepalive = 10 * time.Second // the server's default AckWait is 30s
	}
	return nil
}
