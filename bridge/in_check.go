package mqbridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// inRevalidateFor bounds how long revalidate retries checks that a
// connected server fails to answer (slow, or without a JetStream leader)
// before it gives up.
const inRevalidateFor = time.Minute

// start validates the stream, takes and loads the journal (whose records
// count only if it belongs to this stream incarnation and durable),
// validates or creates the consumer, and rewrites the journal.
func (b *inBridge) start(ctx context.Context) error {
	info, err := b.checkStream(ctx)
	if err != nil {
		return err
	}
	b.warnSize(info)
	b.streamCreated = info.Created
	b.identity = journalOwner(b.cfg.Stream, info.Created, b.cfg.Durable)
	if err := b.recover(); err != nil {
		return journalError(b.cfg.Journal, err)
	}
	if err := b.checkConsumer(ctx); err != nil {
		return err
	}
	b.watch.pruneSoon = true // once a floor is confirmed (in_floor.go)
	return b.rewrite()
}

// revalidate runs after forward stopped because the consumer or its
// stream changed (ch says how), or because the pull failed: it checks the
// stream and the consumer again, as at start, creating the consumer again
// if the bridge may, and starts a new journal if the stream is not the
// one the journal is about. It retries checks that may pass later: for as
// long as the server is away, and for up to inRevalidateFor while it is
// connected but does not answer.
func (b *inBridge) revalidate(ctx context.Context, ch *changed) error {
	b.log.Warn(ch.why + "; checking the stream and the consumer again")
	giveUp := time.Now().Add(inRevalidateFor)
	for attempt := 0; ; attempt++ {
		err := b.recheck(ctx)
		var r retryable
		if err == nil || !errors.As(err, &r) || b.nc.IsClosed() || time.Now().After(giveUp) {
			if err != nil {
				return fmt.Errorf("while running, %s: %w", ch.why, err)
			}
			return nil
		}
		if !b.nc.IsConnected() {
			// The server is away: nats.go reconnects for as long as it
			// takes, and the bridge waits for it, as it does for pulls.
			giveUp = time.Now().Add(inRevalidateFor)
		}
		if attempt%30 == 0 { // one a second: say so every half minute
			b.log.Warn("checking the stream and the consumer failed; retrying", "attempts", attempt+1, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// recheck is one attempt of revalidate.
func (b *inBridge) recheck(ctx context.Context) error {
	info, err := b.checkStream(ctx)
	if err != nil {
		return err
	}
	if !info.Created.Equal(b.streamCreated) {
		b.log.Warn("the stream was deleted and created again: what the journal holds is about the old one; starting a new journal",
			"created", info.Created, "was_created", b.streamCreated)
		b.warnSize(info)
		b.streamCreated = info.Created
		b.identity = journalOwner(b.cfg.Stream, info.Created, b.cfg.Durable)
		clear(b.sent)
		b.floor = durableFloor{}
	}
	if err := b.checkConsumer(ctx); err != nil {
		return err
	}
	b.watch.pruneSoon = true
	return b.rewrite()
}

// retryable marks the error of a check that may pass when tried again
// (the server away, slow, or without a JetStream leader for a moment).
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// checkStream looks the stream up and sets b.stream.
func (b *inBridge) checkStream(ctx context.Context) (*jetstream.StreamInfo, error) {
	name := b.cfg.Stream
	s, err := b.js.Stream(ctx, name)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("%w: stream %q does not exist: check -stream, or create it (`nats stream add %s --subjects ... --defaults`)", ErrStreamNotFound, name, name)
		}
		return nil, retryable{fmt.Errorf("stream %q: %w", name, noJetStream(err))}
	}
	b.stream = s
	return s.CachedInfo(), nil
}

// warnSize warns when the stream takes messages the queue cannot: larger
// than its MessageSize plus the room headers take. The stream's
// max_msg_size counts a message's headers and payload together, and a
// stream made for out-bridges holds the queue's MessageSize plus
// headerAllowance (the README's --max-msg-size 8448 for 8192-byte
// messages), so that is the limit that does not warn.
func (b *inBridge) warnSize(info *jetstream.StreamInfo) {
	q := b.cfg.Queue
	limit := int64(info.Config.MaxMsgSize)
	if mp := b.nc.MaxPayload(); mp > 0 && (limit <= 0 || mp < limit) {
		limit = mp // the server refuses larger messages whatever the stream says
	}
	room := int64(q.MessageSize() + headerAllowance)
	if limit > 0 && limit <= room {
		return
	}
	b.log.Warn("the stream takes messages larger than the queue's MessageSize; such messages will be terminated (see the bridge's log and the server's advisories)",
		"stream_max_msg_size", info.Config.MaxMsgSize, "server_max_payload", b.nc.MaxPayload(), "queue_message_size", q.MessageSize(),
		"to_cap_it", fmt.Sprintf("nats stream edit %s --max-msg-size %d", b.cfg.Stream, room))
}

// checkConsumer looks the durable consumer up, or creates it if it is
// missing and the bridge may, and checks that the bridge can use it: a
// pull consumer with explicit acks and the filter asked for. It sets
// b.cons, b.consCreated and b.keepalive, and tells b.floor which consumer
// its floors are of.
func (b *inBridge) checkConsumer(ctx context.Context) error {
	in := b.cfg
	asked, reconnects := time.Now(), b.nc.Stats().Reconnects
	cons, err := b.stream.Consumer(ctx, in.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) && in.CreateConsumer {
		cons, err = b.createConsumer(ctx)
	}
	switch {
	case errors.Is(err, jetstream.ErrNotPullConsumer):
		return fmt.Errorf("%w: consumer %q of stream %q is a push consumer; the bridge needs a pull consumer: recreate it with --pull (`nats consumer rm %s %s -f`, then `%s`)",
			ErrConsumerConfig, in.Durable, in.Stream, in.Stream, in.Durable, b.addCommand())
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return fmt.Errorf("%w: stream %q has no consumer %q: create it (`%s`) or let the bridge create it (-create-consumer)",
			ErrConsumerNotFound, in.Stream, in.Durable, b.addCommand())
	case err != nil:
		return retryable{fmt.Errorf("consumer %q on stream %q: %w", in.Durable, in.Stream, err)}
	}
	info := cons.CachedInfo()
	cfg := info.Config
	if cfg.AckPolicy != jetstream.AckExplicitPolicy {
		return fmt.Errorf("%w: consumer %q acknowledges with policy %q; the bridge needs explicit acks (recreate it with --ack explicit)", ErrConsumerConfig, in.Durable, cfg.AckPolicy)
	}
	if cfg.DeliverSubject != "" {
		return fmt.Errorf("%w: consumer %q is a push consumer; the bridge needs a pull consumer (recreate it with --pull)", ErrConsumerConfig, in.Durable)
	}
	// A filter decides which messages arrive: one other than asked for is
	// refused. AckWait only decides when JetStream redelivers, and the
	// bridge keeps a waiting message alive by the consumer's own AckWait:
	// a different one is worth a warning, not a refusal.
	filters := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		filters = []string{cfg.FilterSubject}
	}
	if in.FilterSubject != "" && !(len(filters) == 1 && filters[0] == in.FilterSubject) {
		has := "takes every subject of the stream"
		if len(filters) > 0 {
			has = fmt.Sprintf("filters %q", strings.Join(filters, ","))
		}
		return fmt.Errorf("%w: consumer %q %s, not %q as -filter asks: change it (`nats consumer edit %s %s --filter %s`) or leave -filter out to take what it delivers",
			ErrConsumerConfig, in.Durable, has, in.FilterSubject, in.Stream, in.Durable, in.FilterSubject)
	}
	if in.AckWait != 0 && cfg.AckWait != in.AckWait {
		b.log.Warn("the consumer's AckWait is not the one asked for, which applies only to a consumer the bridge creates; the bridge goes on with the consumer's",
			"consumer_ack_wait", cfg.AckWait, "asked", in.AckWait,
			"to_change_it", fmt.Sprintf("nats consumer edit %s %s --wait %s", in.Stream, in.Durable, in.AckWait))
	}
	b.cons, b.consCreated = cons, info.Created
	b.floor.follow(info.Created)
	b.keepalive = max(cfg.AckWait/3, 100*time.Millisecond)
	if cfg.AckWait == 0 {
		b.keepalive = 10 * time.Second // the server's default AckWait is 30s
	}
	b.watch.start(ctx, b.log)
	b.floor.observe(info.AckFloor.Stream, asked, time.Now(), reconnects)
	return nil
}

// createConsumer creates the durable consumer: from the stream's first
// message, or, if the journal knows a floor a consumer of this name on
// this stream reached, just above it (the bridge sent everything up to
// it, and remembers what it sent above).
func (b *inBridge) createConsumer(ctx context.Context) (jetstream.Consumer, error) {
	in := b.cfg
	cfg := jetstream.ConsumerConfig{
		Durable:       in.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cmp.Or(in.AckWait, DefaultAckWait),
		FilterSubject: in.FilterSubject,
		MaxAckPending: 4 * b.prefetch,
	}
	if r := b.floor.resume; r > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, r+1
	}
	cons, err := b.stream.CreateConsumer(ctx, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		// Someone else created it meanwhile: use theirs (and check it).
		return b.stream.Consumer(ctx, in.Durable)
	}
	if err == nil {
		b.log.Info("created the durable consumer", "from_sequence", max(cfg.OptStartSeq, 1))
	}
	return cons, err
}

// addCommand is the nats CLI command that creates the consumer the bridge
// needs, from where the bridge was if its journal knows.
func (b *inBridge) addCommand() string {
	in := b.cfg
	from := "all"
	if r := b.floor.resume; r > 0 {
		from = fmt.Sprint(r + 1)
	}
	cmd := fmt.Sprintf("nats consumer add %s %s --pull --ack explicit --deliver %s", in.Stream, in.Durable, from)
	if in.FilterSubject != "" {
		cmd += " --filter " + in.FilterSubject
	}
	if in.AckWait != 0 {
		cmd += " --wait " + in.AckWait.String()
	}
	return cmd + " --defaults"
}
