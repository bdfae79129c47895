package mqbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/chanmq/chanmq"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Out forwards the messages of a local queue to a JetStream subject.
//
// Each message is written to a local journal right after it is received
// (the only moment a crash can lose it, and then only that one message),
// published asynchronously with a message ID that JetStream de-duplicates,
// and marked acknowledged in the journal once the server stored it. On
// start, every journaled message not marked acknowledged is republished
// with its original ID. The zero values of the optional fields choose
// the defaults.
type Out struct {
	// Queue is the local queue, open for receiving. Run does not close it.
	Queue *chanmq.Queue
	// Subject is the subject messages are published to. A stream must
	// capture it.
	Subject string
	// Stream, if set, is the stream that must capture Subject; every
	// publish then expects it (Nats-Expected-Stream). If empty, Run looks
	// the stream up by Subject.
	Stream string
	// Journal is the path of the journal file (created if missing). One
	// journal per Out; never share it between two running bridges.
	Journal string
	// Fsync makes every journal write durable (fsync) before the message
	// is published, so that a host crash, not only a process crash, loses
	// at most the message in hand. It costs a disk flush per message.
	Fsync bool
	// Window is the most messages published but not yet acknowledged
	// (default DefaultWindow). When it is full the bridge stops receiving,
	// the local queue fills, and local senders block.
	Window int
	// DrainTimeout bounds how long a cancelled Run waits for outstanding
	// acknowledgements (default DefaultDrainTimeout). Messages still
	// unacknowledged then stay in the journal for the next start.
	DrainTimeout time.Duration
	// AckTimeout bounds the wait for one acknowledgement (default
	// DefaultAckTimeout) before the message is republished.
	AckTimeout time.Duration
	// Log receives start-up facts, retries and faults (default
	// slog.Default()).
	Log *slog.Logger
}

// flight is a journaled message not yet acknowledged.
type flight struct {
	msg   *nats.Msg
	order uint64 // journal order, so that a rewrite keeps it
	prio  uint16
}

// outBridge is one running Out. Four kinds of goroutine share it:
//   - Run's goroutine checks, recovers the journal, then receives,
//     journals and publishes (forward), and at the end drains and writes
//     the last acknowledgements (finish);
//   - the retrier (out_ack.go) republishes failed publishes and writes the
//     acknowledgements to the journal when no message carries them;
//   - nats.go's goroutines call onAck and onErr (out_ack.go) for each
//     publish;
//   - the queue watcher (queue_watch.go) touches none of it: it ends the
//     forward loop's receive when the queue's name leads elsewhere.
//
// The fields above mu are set by Run before the retrier starts and before
// the first publish (so before any callback), and only read afterwards.
// slots, retry and done are channels: safe from any of them. The fields
// below mu are guarded by it, whoever touches them.
type outBridge struct {
	cfg     *Out
	js      jetstream.JetStream
	log     *slog.Logger
	stream  string
	streamH []string                // the Nats-Expected-Stream header value, shared by every message (never modified)
	fail    context.CancelCauseFunc // stops Run with a fatal error (onErr, the retrier)

	slots chan struct{}  // one token per message published and not acknowledged (the window): forward takes, onAck gives back
	retry chan *nats.Msg // failed publishes, to republish with their ID: publish and onErr send, the retrier receives
	done  chan struct{}  // closed when Run returns: late nats.go callbacks then drop their hand-off

	mu       sync.Mutex // guards the fields below
	jf       journalFile
	epoch    string // prefix of new message IDs; new on every start and rewrite
	next     uint64 // sequence of the next new message ID in epoch
	order    uint64
	inflight map[string]flight // by message ID
	acked    []byte            // recordAck records of acknowledged IDs not yet written to the journal
	buf      []byte
}

// Run forwards messages until ctx is done or a fault stops it. A cancelled
// ctx is an ordinary end: Run stops receiving (taking nothing more from the
// queue), waits up to DrainTimeout for the acknowledgements of what it
// published, records them and returns nil; messages still unacknowledged
// stay journaled and are republished by the next Run on the same journal.
// nc should reconnect forever (nats.MaxReconnects(-1)): while it is
// disconnected the window fills and the bridge stops receiving.
//
// Every second Run checks that the queue's name still leads to Queue. If
// the queue was removed (and perhaps created again under its name), Run
// forwards what is left in Queue, waits as for a cancel, and returns an
// error matching ErrQueueReplaced: restart it with the queue the name
// leads to now.
func (o *Out) Run(ctx context.Context, nc *nats.Conn) (err error) {
	defer func() { err = runError("out", o.Queue, err) }()
	if o.Queue == nil || o.Subject == "" || o.Journal == "" {
		return errors.New("Out needs Queue, Subject and Journal")
	}
	b := &outBridge{cfg: o, log: o.Log, inflight: map[string]flight{}, done: make(chan struct{})}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.log = b.log.With("direction", "out", "queue", o.Queue.Name(), "subject", o.Subject)
	window := o.Window
	if window <= 0 {
		window = DefaultWindow
	}
	ackTimeout := o.AckTimeout
	if ackTimeout <= 0 {
		ackTimeout = DefaultAckTimeout
	}
	b.slots = make(chan struct{}, window)
	b.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(2*window),
		jetstream.WithPublishAsyncTimeout(ackTimeout),
		jetstream.WithPublishAsyncAckHandler(b.onAck),
		jetstream.WithPublishAsyncErrHandler(b.onErr),
	)
	if err != nil {
		return err
	}
	defer func() {
		close(b.done) // late callbacks drop their hand-off from now on
		// Unsubscribe the acknowledgement inbox and stop nats.go's status
		// listener, so that a Run leaves nothing behind on nc.
		b.js.CleanupPublisher()
	}()
	if err := b.check(ctx, nc); err != nil {
		return unlessDone(ctx, err)
	}
	defer b.jf.close() // on the ordinary path finish closes it first
	recovered, err := b.recover()
	if err != nil {
		return journalError(o.Journal, err)
	}
	// Recovered messages can outnumber a smaller window than the one they
	// were sent under; the retry channel must hold every message in flight.
	b.retry = make(chan *nats.Msg, window+len(recovered))

	runCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	b.fail = fail
	retrierCtx, stopRetrier := context.WithCancel(context.Background())
	retrierDone := make(chan struct{})
	go func() {
		defer close(retrierDone)
		b.retrier(retrierCtx)
	}()

	// queueCtx ends when the queue's name leads elsewhere (watchQueue).
	queueCtx, leave := context.WithCancelCause(runCtx)
	defer leave(nil)
	stopWatch := startQueueWatch(runCtx, o.Queue, chanmq.ReadOnly(), b.log, func(reason *queueGone) {
		b.log.Warn("the queue's name no longer leads to the queue the bridge holds; forwarding what is left in it, then stopping", "err", reason)
		leave(reason)
	})

	if len(recovered) > 0 {
		b.log.Info("republishing journaled messages not acknowledged before the last stop", "count", len(recovered))
	}
	err = b.forward(runCtx, queueCtx, recovered)
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrQueueReplaced) {
		b.drain(o.DrainTimeout)
	}
	stopWatch()
	stopRetrier()
	<-retrierDone
	ferr := b.finish()
	if err == nil {
		if cause := context.Cause(runCtx); ctx.Err() == nil && cause != nil {
			err = cause // a fault from a callback
		}
	}
	if err == nil && ferr != nil {
		err = journalError(o.Journal, ferr)
	}
	if gone := (*queueGone)(nil); errors.As(err, &gone) {
		err = fmt.Errorf("%w; the bridge forwarded what was left in it: %s", err, gone.restart(gone.recreated))
	}
	return err
}
