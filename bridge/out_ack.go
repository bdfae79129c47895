package mqbridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// onAck runs in nats.go's goroutine when the server stored a message (or
// recognised it as a duplicate of a stored one).
func (b *outBridge) onAck(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
	if b.onAckID(m.Header.Get(jetstream.MsgIDHeader)) {
		<-b.slots
	}
}

// onAckID records that the message with this ID is stored, and reports
// whether it was in flight.
func (b *outBridge) onAckID(id string) bool {
	b.mu.Lock()
	_, ok := b.inflight[id]
	if ok {
		delete(b.inflight, id)
		b.acked = appendAckRecord(b.acked, id)
	}
	b.mu.Unlock()
	return ok
}

// onErr runs in nats.go's goroutines when a publish failed or timed out.
// The message may still have been stored; it is republished with its ID,
// never dropped. A rejection by the stream (a 4xx API error) stops the
// bridge instead: republishing cannot fix it.
func (b *outBridge) onErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	var je jetstream.JetStreamError
	if errors.As(err, &je) {
		if ae := je.APIError(); ae != nil && ae.Code >= 400 && ae.Code < 500 && ae.Code != 408 {
			b.fail(fmt.Errorf("%w: stream %q rejected message %s: %w; the message stays journaled and is republished on the next start once the cause is fixed", ErrPublishRejected, b.stream, m.Header.Get(jetstream.MsgIDHeader), err))
			return
		}
	}
	select {
	case b.retry <- m: // never full: it holds every message in flight
	case <-b.done: // Run returned; the message is journaled for the next start
	}
}

// retrier republishes failed messages with their IDs after a short pause,
// and writes acknowledgements to the journal when no message comes to
// carry them.
func (b *outBridge) retrier(ctx context.Context) {
	flush := time.NewTicker(100 * time.Millisecond)
	defer flush.Stop()
	var backlog []*nats.Msg
	var wait <-chan time.Time
	var lastLog time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-b.retry:
			backlog = append(backlog, m)
			if wait == nil {
				wait = time.After(200 * time.Millisecond)
			}
		case <-flush.C:
			b.mu.Lock()
			err := b.flushAcksLocked()
			b.mu.Unlock()
			if err != nil {
				b.fail(journalError(b.cfg.Journal, err))
			}
		case <-wait:
			wait = nil
			var still []*nats.Msg
			for _, m := range backlog {
				b.mu.Lock()
				_, ok := b.inflight[m.Header.Get(jetstream.MsgIDHeader)]
				b.mu.Unlock()
				if !ok {
					continue // acknowledged meanwhile
				}
				// A fresh Msg: nats.go keeps the failed one in its records.
				if _, err := b.js.PublishMsgAsync(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}); err != nil {
					still = append(still, m)
				}
			}
			if n := len(backlog); n > 0 && time.Since(lastLog) > 5*time.Second {
				b.log.Warn("republishing messages whose publish failed or timed out, with their original IDs", "count", n)
				lastLog = time.Now()
			}
			backlog = still
			if len(backlog) > 0 {
				wait = time.After(time.Second)
			}
		}
	}
}
