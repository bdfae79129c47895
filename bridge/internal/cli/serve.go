package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/nats-io/nats.go"
)

// serve opens the queues, connects and runs the bridges c describes until
// SIGINT or SIGTERM (nil) or a fault. The queues come first: a bad name,
// a missing queue or sizes an existing queue has not are the command
// line's to fix, and say so even when no server answers. When serve
// returns, the connection is closed and has logged its last event, so
// that the caller's line is the last.
func serve(c *config, log *slog.Logger) error {
	if err := os.MkdirAll(c.journal, 0o700); err != nil {
		return fmt.Errorf("journal directory: %w", err)
	}
	out, in, closeQueues, err := c.bridges(log)
	if err != nil {
		return err
	}
	defer closeQueues()

	closed := make(chan struct{})
	opts, err := c.natsOptions(log, closed)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(c.servers, opts...)
	if err != nil {
		return explainConnect(c.servers, err)
	}
	defer func() {
		nc.Close()
		select {
		case <-closed:
		case <-time.After(5 * time.Second): // a handler stuck in the log's writer
		}
	}()
	log.Info("connected", "server", nc.ConnectedUrlRedacted())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return mqbridge.Run(ctx, nc, out, in)
}
