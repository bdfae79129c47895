package mqbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Watching the consumer and its stream while the bridge runs.
//
// A pull subscription says nothing when its consumer is deleted while no
// pull is outstanding (a bridge blocked on a full queue has none), and
// nothing at all when the stream is deleted and recreated under its name
// with a durable of the same name: new pulls then reach the new consumer,
// whose messages reuse the old sequences. So the bridge asks for the
// consumer's info every inCheckEvery, from a timer that does not wait for
// the queue (forward's Next and send's wait both wake for it), right away
// when the pull reports a deleted consumer or missing heartbeats, and,
// before it acknowledges a message it had to wait with, if its last check
// began more than inAckFresh ago: an acknowledgement names only the stream and
// consumer names and the sequence, so one for a message of a deleted
// stream would acknowledge the new stream's message of that sequence. The
// consumer's creation time tells its incarnation, and a consumer never
// outlives its stream, so one request covers both; the stream is asked for
// only when the consumer changed. The same request gives the ack floor
// that in_floor.go confirms.

const (
	// inCheckEvery is how often the bridge checks its consumer.
	inCheckEvery = 2 * time.Second
	// inAckFresh is how long before the bridge acknowledges a message it
	// waited with the last check may have begun; after longer, it checks
	// again first (so at most ten checks a second while the queue is
	// full).
	inAckFresh = 100 * time.Millisecond
	// inCheckTimeout bounds one check.
	inCheckTimeout = 5 * time.Second
	// inFailingLogEvery spaces the warnings about checks that keep
	// failing.
	inFailingLogEvery = time.Minute
)

// changed is why forward stopped: the consumer or its stream is not the
// one the bridge validated (or the pull broke); revalidate looks again.
type changed struct {
	// stream: the stream was deleted or recreated (or that could not be
	// ruled out), so a message in hand belongs to a stream that is gone,
	// and must be neither journaled nor acknowledged.
	stream bool
	why    string
}

func (c *changed) Error() string { return c.why }

// watchState is what verify keeps between checks.
type watchState struct {
	ctx       context.Context // Run's: tick ends with it
	log       *slog.Logger
	next      time.Time          // when the next periodic check is due
	tick      context.Context    // done at next: forward's Next waits on it
	stopTick  context.CancelFunc // releases tick
	lastCheck time.Time          // when the last check began
	failing   time.Time          // since when checks fail (zero: they do not)
	warned    time.Time          // the last warning that they fail
	pruneSoon bool               // compact the journal at the next confirmed floor (after a start)
}

// start (re)starts the periodic checks, the first one due inCheckEvery
// from now (the bridge has just checked), until ctx ends.
func (w *watchState) start(ctx context.Context, log *slog.Logger) {
	w.ctx, w.log = ctx, log
	w.lastCheck = time.Now()
	w.schedule(w.lastCheck.Add(inCheckEvery))
}

// schedule makes the next check due at t.
func (w *watchState) schedule(t time.Time) {
	w.stop()
	w.next = t
	w.tick, w.stopTick = context.WithDeadline(w.ctx, t)
}

// stop releases the timer.
func (w *watchState) stop() {
	if w.stopTick != nil {
		w.stopTick()
	}
}

// due reports whether a periodic check is due.
func (w *watchState) due() bool { return w.tick == nil || w.tick.Err() != nil }

// failed notes a check that could not be made, and warns at the first and
// then every inFailingLogEvery.
func (w *watchState) failed(err error) {
	now := time.Now()
	if w.failing.IsZero() {
		w.failing = now
	}
	if w.warned.IsZero() || now.Sub(w.warned) >= inFailingLogEvery {
		w.warned = now
		w.log.Warn("checking the consumer failed; the bridge goes on, but cannot notice a deleted consumer or stream meanwhile",
			"failing_for", now.Sub(w.failing).Round(time.Second), "err", err)
	}
}

// passed notes a check that could be made, after failures.
func (w *watchState) passed() {
	if !w.failing.IsZero() {
		w.log.Info("checking the consumer works again", "failed_for", time.Since(w.failing).Round(time.Second))
		w.failing, w.warned = time.Time{}, time.Time{}
	}
}

// verify checks that the durable consumer is still the incarnation the
// bridge validated, and records its ack floor (compacting the journal
// after a start, once a floor is confirmed). It returns a *changed if the
// consumer is not that incarnation any more; a check that cannot be made
// (the server away or slow) is logged and is not an error: the bridge goes
// on. It schedules the next periodic check.
func (b *inBridge) verify(ctx context.Context) error {
	w := &b.watch
	began := time.Now()
	w.lastCheck = began
	w.schedule(began.Add(inCheckEvery))
	if !b.nc.IsConnected() {
		return nil // nats.go reconnects and logs it; nothing can be asked meanwhile
	}
	reconnects := b.nc.Stats().Reconnects
	cctx, cancel := context.WithTimeout(ctx, inCheckTimeout)
	info, err := b.cons.Info(cctx)
	cancel()
	if ctx.Err() != nil {
		return nil
	}
	in := b.cfg
	switch {
	case err == nil && info.Created.Equal(b.consCreated):
		w.passed()
		if b.floor.observe(info.AckFloor.Stream, began, time.Now(), reconnects) && w.pruneSoon {
			w.pruneSoon = false
			return b.rewrite()
		}
		return nil
	case err == nil:
		return b.streamChanged(ctx, fmt.Sprintf("consumer %q was deleted and created again (created %s; the bridge started with the one created %s)",
			in.Durable, info.Created.Format(time.RFC3339Nano), b.consCreated.Format(time.RFC3339Nano)))
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return b.streamChanged(ctx, fmt.Sprintf("consumer %q was deleted", in.Durable))
	}
	w.failed(err)
	return nil
}

// streamChanged returns the *changed for a consumer that changed (why),
// after asking whether its stream is the one the bridge validated. If
// that cannot be told, it says the stream changed: the message in hand is
// then neither journaled nor acknowledged, and revalidate looks again.
func (b *inBridge) streamChanged(ctx context.Context, why string) error {
	cctx, cancel := context.WithTimeout(ctx, inCheckTimeout)
	s, err := b.js.Stream(cctx, b.cfg.Stream)
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return &changed{stream: true, why: fmt.Sprintf("%s: stream %q was deleted", why, b.cfg.Stream)}
	case err != nil:
		return &changed{stream: true, why: fmt.Sprintf("%s, and whether stream %q is the same could not be checked (%v)", why, b.cfg.Stream, err)}
	case !s.CachedInfo().Created.Equal(b.streamCreated):
		return &changed{stream: true, why: fmt.Sprintf("%s: stream %q was deleted and created again", why, b.cfg.Stream)}
	}
	return &changed{why: why}
}

// pullFailed is forward's answer to a pull that reports a deleted
// consumer, missing heartbeats or its own end: check now, and stop (with
// a *changed) so that revalidate checks again and forward pulls anew.
func (b *inBridge) pullFailed(ctx context.Context, err error) error {
	if verr := b.verify(ctx); verr != nil {
		return verr
	}
	return &changed{why: fmt.Sprintf("pulling from consumer %q failed (%v)", b.cfg.Durable, err)}
}
