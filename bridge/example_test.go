//go:build linux

package mqbridge_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"github.com/chanmq/chanmq"
	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/nats-io/nats.go"
)

// A sidecar that forwards /jobs to the subject jobs.work and the stream's
// durable consumer "results" into /results, until SIGTERM.
func ExampleRun_sidecar() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()

	// Reconnect forever: while the server is away the out window fills and
	// local senders block; both directions resume on reconnect.
	nc, err := nats.Connect(nats.DefaultURL, nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	jobs, err := chanmq.Open("/jobs", chanmq.ReadOnly(), chanmq.Create(0o600))
	if err != nil {
		log.Fatal(err)
	}
	defer jobs.Close()
	results, err := chanmq.Open("/results", chanmq.WriteOnly(), chanmq.Create(0o600))
	if err != nil {
		log.Fatal(err)
	}
	defer results.Close()

	out := &mqbridge.Out{Queue: jobs, Subject: "jobs.work", Stream: "JOBS", Journal: "/var/lib/bridge/out.journal"}
	in := &mqbridge.In{Queue: results, Stream: "RESULTS", Durable: "results", CreateConsumer: true,
		Journal: "/var/lib/bridge/in.journal"}
	if err := mqbridge.Run(ctx, nc, out, in); err != nil {
		log.Fatal(err) // a fault; SIGTERM is an ordinary end (nil)
	}
}
