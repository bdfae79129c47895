package mqbridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

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
			return b.notCaptured(ctx, need)
		}
		return fmt.Errorf("look up the stream of subject %q: %w", out.Subject, noJetStream(err))
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

// notCaptured is the error when no stream captures the subject, with the
// command that fixes it: `nats stream add` when the stream Out names does
// not exist (or Out names none), `nats stream edit` with the stream's
// subjects and this one when it exists (the nats CLI's --subjects
// replaces the list).
func (b *outBridge) notCaptured(ctx context.Context, need int) error {
	out := b.cfg
	if out.Stream != "" {
		s, err := b.js.Stream(ctx, out.Stream)
		if err == nil {
			var edit strings.Builder
			fmt.Fprintf(&edit, "nats stream edit %s", out.Stream)
			for _, subj := range append(s.CachedInfo().Config.Subjects, out.Subject) {
				fmt.Fprintf(&edit, " --subjects %s", shellQuote(subj))
			}
			return fmt.Errorf("%w: stream %q exists but does not capture subject %q (it captures %s): add the subject to it (`%s`) "+
				"or give a -subject it captures", ErrStreamNotFound, out.Stream, out.Subject, strings.Join(s.CachedInfo().Config.Subjects, ", "), edit.String())
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: no stream captures subject %q, and stream %q cannot be read: %w", ErrStreamNotFound, out.Subject, out.Stream, err)
		}
	}
	return fmt.Errorf("%w: no stream captures subject %q: create one first, e.g. `nats stream add %s --subjects %s --dupe-window 2h --max-msg-size %d --defaults`",
		ErrStreamNotFound, out.Subject, cmp.Or(out.Stream, "STREAM"), shellQuote(out.Subject), need)
}

// shellQuote quotes s for a POSIX shell when it needs it: subjects hold
// ">" and "*", and may hold "$".
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
