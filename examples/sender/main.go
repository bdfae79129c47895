// Command sender is one half of the classic two-process demo: it queues a
// numbered message every -interval on a POSIX message queue, for
// examples/receiver (or `chanmq recv /chanmq-demo -follow`) to print.
//
//	go run ./examples/sender -n 5 -interval 200ms
//
// While the queue is full (nobody receiving, 10 messages by default), the
// send on tx.C blocks: back-pressure is the kernel's, as with a buffered
// channel. Ctrl-C stops it, and any message not queued is reported.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/chanmq/chanmq"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("sender: ")
	queue := flag.String("queue", "/chanmq-demo", "queue name")
	n := flag.Int("n", 10, "number of messages to send (0: until Ctrl-C)")
	interval := flag.Duration("interval", 500*time.Millisecond, "pause between messages")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The send pump owns the queue and closes it when it stops. Create
	// it (mode 0600) if the receiver has not yet: start them in any order.
	tx, err := chanmq.OpenSender(ctx, *queue, chanmq.Create(0o600), chanmq.WriteOnly())
	if err != nil {
		log.Fatal(err)
	}

	sent := 0
loop:
	for i := 1; *n == 0 || i <= *n; i++ {
		msg := fmt.Sprintf("message %d from pid %d", i, os.Getpid())
		select {
		case tx.C <- []byte(msg):
			sent++
			fmt.Printf("sender: sent %q\n", msg)
		case <-tx.Done(): // Ctrl-C (or a fault) stopped the pump
			break loop
		}
		if *n != 0 && i == *n {
			break
		}
		select {
		case <-time.After(*interval):
		case <-ctx.Done():
			break loop
		}
	}
	close(tx.C) // like closing a channel: no more messages

	// Wait returns once the pump has queued everything, or says with their
	// bytes which messages it could not queue.
	var unsent *chanmq.UnsentError[[]byte]
	switch err := tx.Wait(); {
	case errors.As(err, &unsent):
		for _, m := range unsent.Values {
			fmt.Printf("sender: not queued: %q\n", m)
		}
		sent -= len(unsent.Values)
		if ctx.Err() == nil {
			log.Fatal(err)
		}
	case err != nil:
		log.Fatal(err)
	}
	fmt.Printf("sender: done: %d message(s) queued\n", sent)
}
