//go:build linux

package chanmq_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/chanmq/chanmq"
)

// The first page: a sender and a receiver, each opened by name, as two
// processes would (here two goroutines of one, so that the example runs).
// Both create the queue if it does not exist yet, so either may start
// first. Each ends the one rule's way: close and Wait for the sender,
// cancel and Wait for the receiver.
func ExampleOpenSender() {
	name := fmt.Sprintf("/example-%d", os.Getpid())
	defer chanmq.Unlink(name)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// process A
	tx, err := chanmq.OpenSender(ctx, name, chanmq.Create(0o600))
	if err != nil {
		log.Fatal(err)
	}
	for _, job := range []string{"resize a.png", "resize b.png", "stop"} {
		tx.C <- []byte(job) // waits while the kernel queue is full
	}
	close(tx.C)
	if err := tx.Wait(); err != nil { // nil: every message is queued
		log.Fatal(err)
	}

	// process B
	rx, err := chanmq.OpenReceiver(ctx, name, chanmq.Create(0o600))
	if err != nil {
		log.Fatal(err)
	}
	for msg := range rx.C {
		if string(msg) == "stop" {
			break
		}
		fmt.Printf("%s\n", msg)
	}
	cancel()                          // stop the pump...
	if err := rx.Wait(); err != nil { // ...and wait: what it held goes back into the queue
		log.Fatal(err)
	}
	// Output:
	// resize a.png
	// resize b.png
}

// Leaving a range early: break, cancel the pump's context, Wait. The
// messages the pump took but did not deliver are kept, in order, for the
// next receive, here by a second receiver; a process that exits after
// Wait finds them back in the kernel queue (OpenReceiver closes its queue).
func ExampleReceiverOf_leaveEarly() {
	q, err := chanmq.CreateTemp("/example-")
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()
	for _, m := range []string{"1", "2", "3", "4"} {
		if err := q.Send(context.Background(), []byte(m), 0); err != nil {
			log.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	rx := q.Receiver(ctx, chanmq.Buffer(2)) // reads up to two ahead
	for msg := range rx.C {
		fmt.Printf("took %s\n", msg)
		break
	}
	cancel()
	if err := rx.Wait(); err != nil {
		log.Fatal(err)
	}

	for { // the rest, without waiting (Queue.All would wait for more)
		msg, _, err := q.TryReceive()
		if errors.Is(err, chanmq.ErrEmpty) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("then %s\n", msg)
	}
	// Output:
	// took 1
	// then 2
	// then 3
	// then 4
}

// Ctrl-C through signal.NotifyContext, with the plain send loop a program
// converted from make(chan T) has: after the signal the pump stops
// queueing, the loop still runs to its end (each send returns at once),
// and Wait reports every value that was not queued. Here the queue holds
// two messages and nobody receives, so the loop is stuck on the third
// when Ctrl-C comes. (The example calls stop, which ends ctx as the
// signal would, so that it runs anywhere; TestCtrlCEndsAPlainSendLoop...
// in obvious_test.go sends a real SIGINT to a real process.)
func ExampleSenderOf_ctrlC() {
	q, err := chanmq.CreateTemp("/example-", chanmq.MaxMessages(2))
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() { // the user presses Ctrl-C once the queue is full
		for q.Len() < 2 {
			time.Sleep(time.Millisecond)
		}
		stop() // as SIGINT would: ctx is done
	}()

	tx := chanmq.Of(q, chanmq.JSON[int]()).Sender(ctx)
	for job := range 5 {
		tx.C <- job
	}
	close(tx.C)
	err = tx.Wait()
	var ue *chanmq.UnsentError[int]
	if errors.As(err, &ue) && errors.Is(err, context.Canceled) {
		fmt.Println("queued:", q.Len(), "not sent:", ue.Values)
	}
	// Output:
	// queued: 2 not sent: [2 3 4]
}

// CreateTemp makes a queue with a fresh name, as os.CreateTemp makes a
// file; remove it with Unlink when done (processes that have it open keep
// using it). Removing a queue that is gone already is fs.ErrNotExist.
func ExampleCreateTemp() {
	q, err := chanmq.CreateTemp("/myapp-", chanmq.MaxMessages(10), chanmq.MessageSize(256))
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	fmt.Println("capacity", q.Cap(), "message size", q.MessageSize())
	if err := chanmq.Unlink(q.Name()); err != nil {
		log.Fatal(err)
	}
	err = chanmq.Unlink(q.Name())
	fmt.Println("again:", errors.Is(err, fs.ErrNotExist))
	// Output:
	// capacity 10 message size 256
	// again: true
}

// TrySend and TryReceive never wait: like a select with a default case,
// they fail with ErrFull or ErrEmpty instead.
func ExampleQueue_TrySend() {
	q, err := chanmq.CreateTemp("/example-", chanmq.MaxMessages(1))
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()

	fmt.Println(q.TrySend([]byte("first"), 0))
	fmt.Println(errors.Is(q.TrySend([]byte("second"), 0), chanmq.ErrFull))
	msg, _, err := q.TryReceive()
	fmt.Printf("%s %v\n", msg, err)
	_, _, err = q.TryReceive()
	fmt.Println(errors.Is(err, chanmq.ErrEmpty))
	// Output:
	// <nil>
	// true
	// first <nil>
	// true
}

// ReceiveInto reuses one buffer of MessageSize bytes: no allocation per
// message.
func ExampleQueue_ReceiveInto() {
	q, err := chanmq.CreateTemp("/example-", chanmq.MessageSize(64))
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()
	ctx := context.Background()
	for _, m := range []string{"a", "bb"} {
		if err := q.Send(ctx, []byte(m), 0); err != nil {
			log.Fatal(err)
		}
	}

	buf := make([]byte, q.MessageSize())
	for range 2 {
		n, prio, err := q.ReceiveInto(ctx, buf)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s (priority %d)\n", buf[:n], prio)
	}
	// Output:
	// a (priority 0)
	// bb (priority 0)
}

// NewQueue adopts a descriptor that someone else opened: here, in a child
// process, the queue its parent passed as file 3 (cmd.ExtraFiles), or
// systemd's ListenMessageQueue=. The Queue works on a duplicate; close f too.
func ExampleNewQueue() {
	f := os.NewFile(3, "jobs")
	if f == nil {
		log.Fatal("no file 3: start this program with the queue as its file 3")
	}
	q, err := chanmq.NewQueue(f) // fails, saying so, if file 3 is not a message queue
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	for msg, err := range q.All(context.Background()) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s\n", msg)
	}
}
