package mqbridge

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"
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
