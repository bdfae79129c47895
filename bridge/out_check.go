package mqbridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// headerAllowance is what the headers the bridge adds (message ID,
// priority, expected stream) can take on top of a message's bytes.
const headerAllowance = 256

// check verifies at start-up what can be verified: a stream captures the
// subject, its message size limit and the server's max_payload hold the
// queue's largest message. It sets b.stream and b.streamH.
func (b *outBridge) check(ctx context.Context, nc *nats.Conn) error {
	out, q := b.cfg, b.cfg.Queue
	need := q.MessageSize() + headerAllowance
	if mp := nc.MaxPayload(); mp > 0 && int64(need) > mp {
		return fmt.Errorf("%w: the server's max_payload is %d bytes, less than the queue's MessageSize %d plus %d for headers: raise max_payload in the server configuration, or use a queue with smaller messages", ErrSizeLimit, mp, q.MessageSize(), headerAllowance)
	}
	name, err := b.js.StreamNameBySubject(ctx, out.Subject)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: no stream captures subject %q: create one first, e.g. `nats stream add %s --subjects %q --dupe-window 2h`", ErrStreamNotFound, out.Subject, cmp.Or(out.Stream, "STREAM"), out.Subject)
		}
		return fmt.Errorf("look up the stream of subject %q: %w", out.Subject, err)
	}
	if out.Stream != "" && name != out.Stream {
		return fmt.Errorf("%w: subject %q is captured by stream %q, not %q: fix -subject or -stream", ErrStreamMismatch, out.Subject, name, out.Stream)
	}
	b.stream = name
	b.streamH = []string{name}
	s, err := b.js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("stream %q: %w", name, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.MaxMsgSize > 0 && int(cfg.MaxMsgSize) < need {
		return fmt.Errorf("%w: stream %q takes messages up to %d bytes, less than the queue's MessageSize %d plus %d for headers: raise it (`nats stream edit %s --max-msg-size %d`) or use a queue with smaller messages", ErrSizeLimit, name, cfg.MaxMsgSize, q.MessageSize(), headerAllowance, name, need)
	}
	dw := cfg.Duplicates
	b.log.Info("stream checked", "stream", name, "duplicate_window", dw,
		"note", "a message republished after an outage longer than the duplicate window can be stored twice")
	return nil
}
