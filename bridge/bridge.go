package mqbridge

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"
)

// PriorityHeader carries a message's queue priority (decimal, 0 to
// chanmq.MaxPriority). The out direction sets it when the priority is not
// 0; the in direction restores it, and reads a missing header as 0.
const PriorityHeader = "Chanmq-Priority"

// headerAllowance is what the headers the out direction adds (message
// ID, expected stream, origin, priority) can take on top of a message's
// bytes: out checks that the stream and the server take a queue's
// MessageSize plus this, and in warns of a stream that takes more.
const headerAllowance = 256

// Defaults used when a field of Out or In is left zero.
const (
	// DefaultWindow is Out.Window's default.
	DefaultWindow = 512
	// DefaultDrainTimeout is Out.DrainTimeout's default.
	DefaultDrainTimeout = 5 * time.Second
	// DefaultAckTimeout bounds the wait for one publish acknowledgement;
	// a publish not acknowledged by then is republished with its ID.
	DefaultAckTimeout = 10 * time.Second
	// DefaultPrefetch is how many stream messages the in direction buffers
	// (PullMaxMessages) when In.Prefetch is zero.
	DefaultPrefetch = 64
	// DefaultAckWait is the AckWait of a consumer that In creates when
	// In.AckWait is zero (the server's own default).
	DefaultAckWait = 30 * time.Second
)

// Run runs out and in (either may be nil) on nc until ctx is done or one
// of them fails; a failure stops the other, and Run returns the first
// error. A cancelled ctx is an ordinary end: Run returns nil once both have
// stopped as their Run methods describe.
func Run(ctx context.Context, nc *nats.Conn, out *Out, in *In) error {
	if out == nil && in == nil {
		return errors.New("mqbridge: nothing to run: give Out, In or both")
	}
	g, gctx := errgroup.WithContext(ctx)
	if out != nil {
		g.Go(func() error { return out.Run(gctx, nc) })
	}
	if in != nil {
		g.Go(func() error { return in.Run(gctx, nc) })
	}
	return g.Wait()
}

// unlessDone is err, or nil once ctx is done: a Run cancelled while it
// starts or works ends without error, whatever the cancellation broke.
func unlessDone(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
