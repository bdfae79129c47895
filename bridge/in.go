package mqbridge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/chanmq/chanmq"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultPrefetch is how many stream messages the in direction buffers
// (PullMaxMessages) when In.Prefetch is zero.
const DefaultPrefetch = 64

// ReasonHeader, on a message sent to In.DeadLetter, says why it was
// refused.
const ReasonHeader = "Chanmq-Reason"

const inMagic = "chanmq-bridge in 1\n"

// inCompactRecords is how many sequence records the in journal holds
// before it is rewritten with only those still needed.
const inCompactRecords = 1 << 18

// inReserve is the journal space an in bridge reserves for appending: a
// sequence record is 17 bytes, so inCompactRecords of them and as many
// carried over fit (beyond it, appends use write(2)).
const inReserve = 10 << 20

// In forwards the messages of a JetStream stream, through a durable pull
// consumer, into a local queue.
//
// A message is acknowledged to JetStream only after the kernel accepted
// it, and its stream sequence is journaled in between, so a redelivery
// (after a crash, or after AckWait ran out while the local queue was full)
// is acknowledged without a second send. A message the queue can never
// take (larger than its MessageSize, or with an invalid priority header)
// is terminated with a reason (it shows in the server's
// $JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED advisory and in Log), after a
// copy went to DeadLetter if that is set.
type In struct {
	// Queue is the local queue, open for sending. Run does not close it.
	Queue *chanmq.Queue
	// Stream and Durable name the stream and its durable pull consumer.
	Stream, Durable string
	// CreateConsumer makes Run create the durable consumer when it does
	// not exist (explicit acks, AckWait, FilterSubject, MaxAckPending of
	// four times Prefetch). Without it a missing consumer is an error.
	CreateConsumer bool
	// AckWait and FilterSubject configure a consumer that Run creates.
	AckWait       time.Duration
	FilterSubject string
	// Journal is the path of the file that remembers the stream sequences
	// already sent to the queue. One journal per In; never share it.
	Journal string
	// Fsync makes every journal write durable before the acknowledgement.
	Fsync bool
	// Prefetch is how many messages the bridge asks for ahead (default
	// DefaultPrefetch). A full queue stops the bridge from asking for more.
	Prefetch int
	// DeadLetter, if set, is a subject that receives a copy of every
	// message the queue cannot take (stored by JetStream if a stream
	// captures it), with the reason in the ReasonHeader header, before the
	// message is terminated.
	DeadLetter string
	// Log receives start-up facts and faults (default slog.Default()).
	Log *slog.Logger
}

type inBridge struct {
	i         *In
	js        jetstream.JetStream
	cons      jetstream.Consumer
	log       *slog.Logger
	keepalive time.Duration // how often a blocked send says InProgress

	jf        journalFile
	identity  []byte              // stream, creation time, durable: the journal's owner
	sent      map[uint64]struct{} // stream sequences sent and maybe not acknowledged
	records   int                 // sequence records in the journal file
	compactAt int                 // rewrite the journal when records passes this
	buf       []byte
}

// Run forwards messages until ctx is done or a fault stops it. A cancelled
// ctx is an ordinary end (nil): a message being sent when ctx ends is not
// acknowledged, so JetStream redelivers it after AckWait.
func (i *In) Run(ctx context.Context, nc *nats.Conn) error {
	if i.Queue == nil || i.Stream == "" || i.Durable == "" || i.Journal == "" {
		return errors.New("mqbridge: In needs Queue, Stream, Durable and Journal")
	}
	b := &inBridge{i: i, log: i.Log, sent: map[uint64]struct{}{}}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.log = b.log.With("direction", "in", "queue", i.Queue.Name(), "stream", i.Stream, "durable", i.Durable)
	prefetch := i.Prefetch
	if prefetch <= 0 {
		prefetch = DefaultPrefetch
	}
	var err error
	if b.js, err = jetstream.New(nc); err != nil {
		return fmt.Errorf("mqbridge: %w", err)
	}
	if err := b.check(ctx, prefetch); err != nil {
		if ctx.Err() != nil {
			return nil // cancelled while starting: an ordinary end
		}
		return err
	}
	lock, err := lockJournal(i.Journal)
	if err != nil {
		return fmt.Errorf("mqbridge: in: %w", err)
	}
	defer lock.Close()
	if err := b.recover(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("mqbridge: in %s: %w", i.Journal, err)
	}
	defer b.jf.close()

	it, err := b.cons.Messages(jetstream.PullMaxMessages(prefetch))
	if err != nil {
		return fmt.Errorf("mqbridge: in: consume %s/%s: %w", i.Stream, i.Durable, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return fmt.Errorf("mqbridge: in: consumer %s on stream %s: %w: recreate it and restart the bridge", i.Durable, i.Stream, err)
			}
			b.log.Warn("pull", "err", err)
			select { // do not spin on an error that persists
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if err := b.handle(ctx, msg); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// check verifies the stream and consumer at start-up and warns when the
// stream takes messages the queue cannot.
func (b *inBridge) check(ctx context.Context, prefetch int) error {
	i, q := b.i, b.i.Queue
	s, err := b.js.Stream(ctx, i.Stream)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("mqbridge: in %s: stream %q not found: check -stream, or create it (`nats stream add %s --subjects ...`)", q.Name(), i.Stream, i.Stream)
		}
		return fmt.Errorf("mqbridge: in %s: stream %q: %w", q.Name(), i.Stream, err)
	}
	info := s.CachedInfo()
	if m := info.Config.MaxMsgSize; m <= 0 || int(m) > q.MessageSize() {
		b.log.Warn("the stream takes messages larger than the queue's MessageSize; such messages will be terminated (see the bridge's log and the server's advisories)",
			"stream_max_msg_size", m, "queue_message_size", q.MessageSize())
	}
	b.identity = []byte(fmt.Sprintf("%s\x00%d\x00%s", i.Stream, info.Created.UnixNano(), i.Durable))

	cons, err := s.Consumer(ctx, i.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) && i.CreateConsumer {
		cons, err = s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       i.Durable,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       i.AckWait,
			FilterSubject: i.FilterSubject,
			MaxAckPending: 4 * prefetch,
		})
		if err == nil {
			b.log.Info("created the durable consumer")
		}
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("mqbridge: in %s: stream %q has no consumer %q: create it (`nats consumer add %s %s --pull --ack explicit`) or let the bridge create it (-create-consumer)", q.Name(), i.Stream, i.Durable, i.Stream, i.Durable)
		}
		return fmt.Errorf("mqbridge: in %s: consumer %q on stream %q: %w", q.Name(), i.Durable, i.Stream, err)
	}
	cfg := cons.CachedInfo().Config
	if cfg.AckPolicy != jetstream.AckExplicitPolicy {
		return fmt.Errorf("mqbridge: in %s: consumer %q acknowledges with policy %q; the bridge needs explicit acks (recreate it with --ack explicit)", q.Name(), i.Durable, cfg.AckPolicy)
	}
	if cfg.DeliverSubject != "" {
		return fmt.Errorf("mqbridge: in %s: consumer %q is a push consumer; the bridge needs a pull consumer (recreate it with --pull)", q.Name(), i.Durable)
	}
	b.cons = cons
	b.keepalive = max(cfg.AckWait/3, 100*time.Millisecond)
	if cfg.AckWait == 0 {
		b.keepalive = 10 * time.Second // the server's default AckWait is 30s
	}
	return nil
}

// recover loads the sequences already sent, drops those the consumer's ack
// floor shows were acknowledged, and rewrites the journal with the rest.
func (b *inBridge) recover(ctx context.Context) error {
	b.jf = journalFile{path: b.i.Journal, fsync: b.i.Fsync, reserve: inReserve}
	data, err := readJournal(b.i.Journal)
	if err != nil {
		return err
	}
	if data != nil {
		if len(data) < len(inMagic) || string(data[:len(inMagic)]) != inMagic {
			return errors.New("not an in-direction journal of chanmq-bridge (wrong header); move it away if it belongs to something else")
		}
		same := false
		_, err := readRecords(data, len(inMagic), func(kind byte, p []byte) error {
			switch kind {
			case 'H':
				same = string(p) == string(b.identity)
			case 'S':
				if same && len(p) == 8 {
					b.sent[binary.LittleEndian.Uint64(p)] = struct{}{}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !same {
			b.log.Warn("the journal belongs to another stream, consumer or an earlier stream of the same name; starting a new one")
		}
	}
	return b.rewrite(ctx)
}

// rewrite prunes the sent sequences at or below the consumer's ack floor
// (JetStream never redelivers those) and writes the rest to a new journal.
func (b *inBridge) rewrite(ctx context.Context) error {
	info, err := b.cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer info: %w", err)
	}
	floor := info.AckFloor.Stream
	for seq := range b.sent {
		if seq <= floor {
			delete(b.sent, seq)
		}
	}
	contents := appendRecord([]byte(inMagic), 'H', b.identity)
	var s [8]byte
	for seq := range b.sent {
		binary.LittleEndian.PutUint64(s[:], seq)
		contents = appendRecord(contents, 'S', s[:])
	}
	if err := b.jf.rewrite(contents); err != nil {
		return err
	}
	b.records = len(b.sent)
	b.compactAt = b.records + inCompactRecords
	return nil
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
		return b.ack(msg, seq)
	}
	q := b.i.Queue
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
		return fmt.Errorf("mqbridge: in: stream sequence %d: %w (not acknowledged: JetStream redelivers it)", seq, err)
	}
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seq)
	b.buf = appendRecord(b.buf[:0], 'S', s[:])
	if err := b.jf.append(b.buf); err != nil {
		return fmt.Errorf("mqbridge: in %s: %w", b.i.Journal, err)
	}
	b.sent[seq] = struct{}{}
	b.records++
	if err := b.ack(msg, seq); err != nil {
		return err
	}
	if b.records > b.compactAt {
		if err := b.rewrite(ctx); err != nil {
			if ctx.Err() != nil {
				return err
			}
			// Most likely the server is away (the ack floor comes from
			// it): keep appending and try again later.
			b.log.Warn("journal rewrite postponed", "err", err)
			b.compactAt = b.records + inCompactRecords/4
		}
	}
	return nil
}

// send queues data, telling JetStream the message is in progress while
// the queue stays full, so that its AckWait does not run out.
func (b *inBridge) send(ctx context.Context, msg jetstream.Msg, data []byte, prio uint) error {
	q := b.i.Queue
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

func (b *inBridge) ack(msg jetstream.Msg, seq uint64) error {
	// A lost ack only means a redelivery, which the journal catches; a
	// failure here is a closed connection, which the next Next reports.
	if err := msg.Ack(); err != nil {
		b.log.Debug("ack", "seq", seq, "err", err)
	}
	return nil
}

// refuse hands a message the queue cannot take to the dead-letter subject
// (if any) and terminates it with the reason, so it is never redelivered
// and never dropped silently.
func (b *inBridge) refuse(ctx context.Context, msg jetstream.Msg, reason string) error {
	var seq uint64
	if meta, err := msg.Metadata(); err == nil {
		seq = meta.Sequence.Stream
	}
	if dl := b.i.DeadLetter; dl != "" {
		h := nats.Header{}
		for k, v := range msg.Headers() {
			h[k] = v
		}
		h.Set(ReasonHeader, reason)
		h.Del(nats.MsgIdHdr)
		if _, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: dl, Header: h, Data: msg.Data()}); err != nil {
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				// No stream captures the subject: a core publish, for a subscriber.
				err = b.js.Conn().PublishMsg(&nats.Msg{Subject: dl, Header: h, Data: msg.Data()})
			}
			if err != nil {
				return fmt.Errorf("mqbridge: in: stream sequence %d refused (%s), and the copy to dead-letter subject %q failed: %w (not acknowledged: JetStream redelivers it)", seq, reason, dl, err)
			}
		}
	}
	b.log.Error("message refused and terminated", "seq", seq, "reason", reason, "dead_letter", b.i.DeadLetter)
	if err := msg.TermWithReason(reason); err != nil {
		b.log.Warn("term", "seq", seq, "err", err)
	}
	return nil
}
