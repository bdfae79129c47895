package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/nats-io/nats.go"
)

// serve connects, opens the queues and runs the bridges c describes until
// SIGINT or SIGTERM (nil) or a fault.
func serve(c *config, log *slog.Logger) error {
	if err := os.MkdirAll(c.journal, 0o700); err != nil {
		return fmt.Errorf("journal directory: %w", err)
	}
	opts, err := c.natsOptions(log)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(c.servers, opts...)
	if err != nil {
		return explainConnect(c.servers, err)
	}
	defer nc.Close()
	log.Info("connected", "server", nc.ConnectedUrlRedacted())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out, in, closeQueues, err := c.bridges(log)
	if err != nil {
		return err
	}
	defer closeQueues()
	return mqbridge.Run(ctx, nc, out, in)
}
