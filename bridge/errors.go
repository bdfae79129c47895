package mqbridge

import (
	"errors"
	"fmt"

	"github.com/chanmq/chanmq"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors that Out.Run, In.Run and Run return wrapped, for callers to test
// with errors.Is. The message around each says what was found and what to
// do. Errors of the queue itself are chanmq's (chanmq.ErrClosed, …), and
// those of NATS are nats.go's, wrapped the same way.
var (
	// ErrStreamNotFound: no stream captures Out.Subject, or In.Stream does
	// not exist.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrStreamMismatch: Out.Subject is captured by a stream other than
	// Out.Stream.
	ErrStreamMismatch = errors.New("subject captured by another stream")
	// ErrQueueReplaced: the name of Out.Queue or In.Queue no longer leads
	// to the queue the bridge holds (it was removed, and perhaps created
	// again), so no program can reach that queue any more. Out forwarded
	// what was left in it, and stopped. In stopped pulling and sending, and
	// moved what it had delivered into it and no program had taken into
	// the queue the name leads to now (created again, with the same sizes
	// and mode 0600, if there was none); the message says how many, and
	// logs with their bytes those it could not move. Restart the bridge to
	// bridge the queue the name leads to.
	ErrQueueReplaced = errors.New("queue removed or replaced")
	// ErrConsumerNotFound: In.Durable does not exist on In.Stream (at
	// start, without In.CreateConsumer), or was deleted while In ran.
	ErrConsumerNotFound = errors.New("consumer not found")
	// ErrConsumerConfig: the durable consumer is not one In can use (it
	// needs a pull consumer with explicit acks).
	ErrConsumerConfig = errors.New("consumer not usable by the bridge")
	// ErrSizeLimit: the server's max_payload or the stream's maximum
	// message size is smaller than the queue's messages need.
	ErrSizeLimit = errors.New("message size limit too small for the queue")
	// ErrJournalLocked: another running bridge holds the journal.
	ErrJournalLocked = errors.New("journal in use")
	// ErrJournalHeader: the journal file was not written by this direction
	// of the bridge, or has a record format version it does not read.
	ErrJournalHeader = errors.New("wrong journal header")
	// ErrLoop: In took a message that an Out reading In's own queue on
	// this host published (OriginHeader): delivering it would feed that
	// Out again, for ever.
	ErrLoop = errors.New("bridge loop")
	// ErrPublishRejected: the stream refused a published message with an
	// error that republishing cannot fix.
	ErrPublishRejected = errors.New("stream rejected a message")
)

// runError is how every error of a direction's Run reads: prefixed once
// with the package, the direction and the queue,
// "mqbridge: out /jobs: stream not found: …". Code below Run returns
// errors without that prefix.
func runError(direction string, q *chanmq.Queue, err error) error {
	if err == nil {
		return nil
	}
	if q == nil {
		return fmt.Errorf("mqbridge: %s: %w", direction, err)
	}
	return fmt.Errorf("mqbridge: %s %s: %w", direction, q.Name(), err)
}

// noJetStream explains nats.go's "no responders" to a JetStream API
// request: nothing on the server serves the JetStream API for this account.
// The error it returns matches jetstream.ErrJetStreamNotEnabled and err.
func noJetStream(err error) error {
	if !errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return err
	}
	return fmt.Errorf("%w: JetStream is not enabled on the server (or for this account): start nats-server with -js, "+
		"or enable jetstream in its configuration (%w)", jetstream.ErrJetStreamNotEnabled, err)
}
