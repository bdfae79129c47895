//go:build linux

package chanmq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/chanmq/chanmq"
)

// A receive pump turns a queue into a channel: range over it like any
// other. In real use the sender is another process that opened the same
// name ("/jobs").
func ExampleQueue_Receiver() {
	q, err := chanmq.CreateTemp("/example-")
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()

	for _, job := range []string{"resize a.png", "resize b.png"} {
		if err := q.Send(context.Background(), []byte(job), 0); err != nil {
			log.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rx := q.Receiver(ctx)
	n := 0
	for msg := range rx.C {
		fmt.Printf("%s\n", msg)
		if n++; n == 2 {
			cancel() // the pump stops and closes rx.C; nothing it took is lost
		}
	}
	if err := rx.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// resize a.png
	// resize b.png
}

// Select on the receive channel and a context, as with any channel: the
// wait ends when the context does, and no thread is held meanwhile.
func ExampleQueue_Receiver_select() {
	q, err := chanmq.CreateTemp("/example-")
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // stops the pump
	rx := q.Receiver(ctx)

	wait, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	select {
	case msg := <-rx.C:
		fmt.Printf("got %s\n", msg)
	case <-wait.Done():
		fmt.Println("nothing arrived:", wait.Err())
	}
	// Output:
	// nothing arrived: context deadline exceeded
}

// A send pump turns a queue into a send-only channel. Close it when done;
// Wait returns nil once every message is in the kernel queue.
func ExampleQueue_Sender() {
	q, err := chanmq.CreateTemp("/example-")
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()

	tx := q.Sender(context.Background(), chanmq.Priority(3))
	tx.C <- []byte("job 1")
	tx.C <- []byte("job 2")
	close(tx.C)
	if err := tx.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("queued:", q.Len())
	// Output:
	// queued: 2
}

// When a send pump is cancelled, whatever it accepted but could not queue
// comes back from Wait with its bytes.
func ExampleUnsentError() {
	q, err := chanmq.CreateTemp("/example-", chanmq.MaxMessages(1))
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()

	ctx, cancel := context.WithCancel(context.Background())
	tx := q.Sender(ctx)
	tx.C <- []byte("fits")
	tx.C <- []byte("waits for room") // the queue holds one message
	cancel()
	close(tx.C)
	var ue *chanmq.UnsentError[[]byte]
	if err := tx.Wait(); errors.As(err, &ue) {
		for _, m := range ue.Values {
			fmt.Printf("not sent: %s\n", m)
		}
	}
	// Output:
	// not sent: waits for room
}

// All ranges over messages in the caller's goroutine, without a pump.
func ExampleQueue_All() {
	q, err := chanmq.CreateTemp("/example-")
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()

	for _, s := range []string{"a", "b", "stop"} {
		if err := q.TrySend([]byte(s), 0); err != nil {
			log.Fatal(err)
		}
	}
	for msg, err := range q.All(context.Background()) {
		if err != nil {
			log.Fatal(err)
		}
		if string(msg) == "stop" {
			break
		}
		fmt.Printf("%s\n", msg)
	}
	// Output:
	// a
	// b
}

// Higher priorities are received first; equal priorities in FIFO order.
func ExampleQueue_MessageReceiver() {
	q, err := chanmq.CreateTemp("/example-")
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()

	tx := q.MessageSender(context.Background())
	tx.C <- chanmq.Message{Data: []byte("routine"), Priority: 0}
	tx.C <- chanmq.Message{Data: []byte("urgent"), Priority: 10}
	tx.C <- chanmq.Message{Data: []byte("routine 2"), Priority: 0}
	close(tx.C)
	if err := tx.Wait(); err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rx := q.MessageReceiver(ctx)
	for range 3 {
		m := <-rx.C
		fmt.Printf("%d %s\n", m.Priority, m.Data)
	}
	// Output:
	// 10 urgent
	// 0 routine
	// 0 routine 2
}

// Open a queue by name, creating it if needed, as two processes would.
func ExampleOpen() {
	name := "/example-open"
	q, err := chanmq.Open(name, chanmq.Create(0o600), chanmq.MaxMessages(8), chanmq.MessageSize(1024))
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(name)
	defer q.Close()
	fmt.Println(q.Name(), q.Cap(), q.MessageSize())

	_, err = chanmq.Open("jobs")
	fmt.Println(err)
	// Output:
	// /example-open 8 1024
	// chanmq: open jobs: invalid queue name: "jobs" must start with "/"; did you mean "/jobs"?
}
