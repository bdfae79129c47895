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

// ReasonHeader, on a message sent to In.DeadLetter, says why it was
// refused.
const ReasonHeader = "Chanmq-Reason"

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

// inBridge is one running In. Only Run's goroutine touches it: the
// consumer's messages are taken one at a time (forward), so nothing here
// needs a lock.
type inBridge struct {
	cfg       *In
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
func (in *In) Run(ctx context.Context, nc *nats.Conn) (err error) {
	defer func() { err = runError("in", in.Queue, err) }()
	if in.Queue == nil || in.Stream == "" || in.Durable == "" || in.Journal == "" {
		return errors.New("In needs Queue, Stream, Durable and Journal")
	}
	b := &inBridge{cfg: in, log: in.Log, sent: map[uint64]struct{}{}}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.log = b.log.With("direction", "in", "queue", in.Queue.Name(), "stream", in.Stream, "durable", in.Durable)
	prefetch := in.Prefetch
	if prefetch <= 0 {
		prefetch = DefaultPrefetch
	}
	if b.js, err = jetstream.New(nc); err != nil {
		return err
	}
	if err := b.check(ctx, prefetch); err != nil {
		return unlessDone(ctx, err)
	}
	defer b.jf.close()
	if err := b.recover(ctx); err != nil {
		return unlessDone(ctx, journalError(in.Journal, err))
	}
	return b.forward(ctx, prefetch)
}
