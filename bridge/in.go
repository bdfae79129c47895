package mqbridge

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/chanmq/chanmq"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of a message sent to In.DeadLetter: why it was refused, and
// where it came from, so that an operator can find the original.
const (
	// ReasonHeader says why the message was refused.
	ReasonHeader = "Chanmq-Reason"
	// StreamHeader names the stream the message was taken from.
	StreamHeader = "Chanmq-Stream"
	// SubjectHeader is the subject the message was published on.
	SubjectHeader = "Chanmq-Subject"
	// SequenceHeader is the message's sequence in that stream (decimal).
	SequenceHeader = "Chanmq-Sequence"
)

// In forwards the messages of a JetStream stream, through a durable pull
// consumer, into a local queue.
//
// A message is acknowledged to JetStream only after the kernel accepted
// it, and its stream sequence (with the time the stream stored it, which
// tells a recreated stream's messages from the old one's) is journaled in
// between, so a redelivery (after a crash, or after AckWait ran out while
// the local queue was full) is acknowledged without a second send. The
// journal forgets only sequences at or below an ack floor the server can
// no longer go back on, even if it crashes (in_floor.go). A message the
// queue can never take (larger than its MessageSize, or with an invalid
// priority header) is terminated with a reason (it shows in the server's
// $JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED advisory and in Log), after
// a copy went to DeadLetter if that is set.
//
// While it runs, In checks every few seconds, and before acknowledging a
// message it had to wait with, that the consumer and its stream are still
// those it started with (in_watch.go). A stream deleted and recreated
// under its name gets a fresh journal; a consumer deleted is created
// again, from where the bridge was, with CreateConsumer, and is an error
// (ErrConsumerNotFound) without it; a deleted stream is an error
// (ErrStreamNotFound). A message that an Out reading this same queue
// published is an error (ErrLoop), before it is delivered. It checks
// every second that the queue's name still leads to Queue
// (queue_watch.go); a queue removed under it is an error
// (ErrQueueReplaced), after what it had delivered into that queue was
// moved to the queue the name leads to (in_orphaned.go).
type In struct {
	// Queue is the local queue, open for sending, and for receiving too
	// where the user may (Open without ReadOnly or WriteOnly): if the
	// queue is removed under Run, Run takes back what it delivered into
	// it and no program took, and moves it (ErrQueueReplaced); from a
	// write-only Queue it cannot, and says how many messages the removed
	// queue takes with it. Run does not close it.
	Queue *chanmq.Queue
	// Stream and Durable name the stream and its durable pull consumer.
	Stream, Durable string
	// CreateConsumer makes Run create the durable consumer when it does
	// not exist, at start or later (explicit acks, AckWait, FilterSubject,
	// MaxAckPending of four times Prefetch; from the stream's first
	// message, or after the last one the bridge's journal knows was
	// acknowledged). Without it a missing consumer is an error.
	CreateConsumer bool
	// AckWait and FilterSubject configure a consumer that Run creates
	// (AckWait zero: DefaultAckWait). For a consumer that exists, a
	// FilterSubject other than its own is an error (ErrConsumerConfig) and
	// an AckWait other than its own a warning; zero values mean "not
	// asked for", and are neither compared nor put in the advice.
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
	// captures it), with the reason, the stream, the subject and the
	// stream sequence in headers (ReasonHeader, StreamHeader,
	// SubjectHeader, SequenceHeader), before the message is terminated.
	DeadLetter string
	// Log receives start-up facts and faults (default slog.Default()).
	Log *slog.Logger
}

// inBridge is one running In. Only Run's goroutine touches it: the
// consumer's messages are taken one at a time (forward), and the checks
// of the consumer run between them or while a send waits, so nothing here
// needs a lock.
type inBridge struct {
	cfg       *In
	nc        *nats.Conn
	js        jetstream.JetStream
	log       *slog.Logger
	prefetch  int
	origin    string        // the queue's origin (origin.go); "" if unknown
	keepalive time.Duration // how often a blocked send says InProgress

	// What the bridge validated (in_check.go); in_watch.go checks that
	// they stay so.
	stream        jetstream.Stream
	streamCreated time.Time // the stream's incarnation
	cons          jetstream.Consumer
	consCreated   time.Time // the consumer's incarnation
	watch         watchState

	jf        journalFile
	identity  []byte           // stream, creation time, durable: the journal's owner
	sent      map[uint64]int64 // stream sequence -> stored time (UnixNano; 0: any) of what was sent and maybe not acknowledged
	floor     durableFloor     // which sequences the journal may forget
	records   int              // sequence records in the journal file
	compactAt int              // rewrite the journal when records passes this
	buf       []byte
}

// Run forwards messages until ctx is done or a fault stops it. A cancelled
// ctx is an ordinary end (nil): a message being sent when ctx ends is not
// acknowledged, so JetStream redelivers it after AckWait.
func (in *In) Run(ctx context.Context, nc *nats.Conn) (err error) {
	defer func() { err = runError("in", in.Queue, err) }()
	if in.Queue == nil || in.Stream == "" || in.Durable == "" || in.Journal == "" {
		return errors.New("In needs Queue, Stream, Durable and Journal")
	}
	b := &inBridge{cfg: in, nc: nc, log: in.Log, prefetch: in.Prefetch, sent: map[uint64]int64{}, origin: queueOrigin(in.Queue.Name())}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.log = b.log.With("direction", "in", "queue", in.Queue.Name(), "stream", in.Stream, "durable", in.Durable)
	if b.prefetch <= 0 {
		b.prefetch = DefaultPrefetch
	}
	if b.js, err = jetstream.New(nc); err != nil {
		return err
	}
	defer b.jf.close()
	defer b.watch.stop()
	// runCtx ends when the queue's name leads elsewhere (watchQueue): the
	// bridge then stops pulling and sending at once, and moves what it
	// delivered into the queue it holds (in_orphaned.go).
	runCtx, leave := context.WithCancelCause(ctx)
	defer leave(nil)
	stopWatch := startQueueWatch(runCtx, in.Queue, chanmq.WriteOnly(), b.log, func(reason *queueGone) {
		b.log.Warn("the queue's name no longer leads to the queue the bridge holds; stopping, and moving what is left in it to the queue the name leads to now", "err", reason)
		leave(reason)
	})
	err = b.run(runCtx)
	stopWatch()
	var gone *queueGone
	if errors.As(context.Cause(runCtx), &gone) { // the queue went before any cancel of ctx (which would be the cause)
		return b.moveOrphaned(ctx, gone)
	}
	return unlessDone(ctx, err)
}

// run validates, then forwards until ctx is done or a fault stops it,
// validating again whenever the consumer or its stream changed.
func (b *inBridge) run(ctx context.Context) error {
	if err := b.start(ctx); err != nil {
		return err
	}
	for {
		err := b.forward(ctx)
		var ch *changed
		if !errors.As(err, &ch) {
			return err
		}
		if err := b.revalidate(ctx, ch); err != nil {
			return err
		}
	}
}
