//go:build linux

package main

import (
	"context"
	"fmt"
	"log"
	"time"

	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/nats-io/nats.go/jetstream"
)

// ceilingConsume is the in direction's ceiling: nats.go pulling n stored
// messages and acknowledging each, as the in bridge does (a durable
// consumer with explicit acks and MaxAckPending of four times the
// prefetch, as -create-consumer makes it; Messages with PullMaxMessages of
// the default prefetch; the metadata parsed for the stream sequence and
// time, then Ack), without a queue.
func (b *bench) ceilingConsume() func(n int) time.Duration {
	return func(n int) time.Duration {
		name, subj := b.freshStream()
		defer b.dropStream(name)
		b.fill(subj, n)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		t0 := b.start()
		cons, err := b.js.CreateConsumer(ctx, name, jetstream.ConsumerConfig{Durable: "ceiling", AckPolicy: jetstream.AckExplicitPolicy,
			MaxAckPending: 4 * mqbridge.DefaultPrefetch})
		check(err)
		it, err := cons.Messages(jetstream.PullMaxMessages(mqbridge.DefaultPrefetch))
		check(err)
		defer it.Stop()
		for i := range n {
			m, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				log.Fatalf("message %d of %d: %v", i, n, err)
			}
			meta, err := m.Metadata()
			check(err)
			if meta.Sequence.Stream == 0 || meta.Timestamp.IsZero() {
				check(fmt.Errorf("message %d: no sequence or time in its metadata", i))
			}
			check(m.Ack())
		}
		return b.stop(t0)
	}
}
