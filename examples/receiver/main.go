// Command receiver is one half of the classic two-process demo: it prints
// the messages that examples/sender queues on a POSIX message queue, until
// Ctrl-C (or -n messages).
//
//	go run ./examples/receiver &
//	go run ./examples/sender -n 5
//
// It creates the queue (mode 0600: this user only) if it does not exist,
// and leaves it there when it exits; remove it with
// `chanmq rm /chanmq-demo`. Run `go run ./examples/demo` to see both
// halves started for you.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/chanmq/chanmq"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("receiver: ")
	queue := flag.String("queue", "/chanmq-demo", "queue name")
	n := flag.Int("n", 0, "exit after this many messages (0: run until Ctrl-C)")
	flag.Parse()

	// Ctrl-C or SIGTERM cancels ctx, which stops the receive pump.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Open read-write (not ReadOnly) so that Close can put back a message
	// the pump took from the kernel but we did not read.
	q, err := chanmq.Open(*queue, chanmq.Create(0o600))
	if err != nil {
		log.Fatal(err)
	}
	rx := q.Receiver(ctx)
	fmt.Printf("receiver: waiting for messages on %s (Ctrl-C to stop)\n", *queue)

	count := 0
	for msg := range rx.C { // ends when ctx is done (Ctrl-C)
		count++
		fmt.Printf("receiver: got %q\n", msg)
		if count == *n {
			break
		}
	}

	// Stop the pump, and close the queue: Close waits for the pump and
	// puts back into the kernel queue a message it held, so nothing that
	// the sender queued is lost when we leave early.
	stop()
	if err := q.Close(); err != nil {
		log.Fatal(err)
	}
	if err := rx.Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("receiver: done after %d message(s)\n", count)
}
