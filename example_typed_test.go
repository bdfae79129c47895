//go:build linux

package chanmq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"sync"

	"github.com/chanmq/chanmq"
)

// Typed channels: a chan<- Job in one process and a <-chan Job in another,
// with JSON on the wire. (Here both ends are in one process; in real use
// they are two programs that open the same name, "/jobs".)
func ExampleOpenSenderOf_json() {
	q, err := chanmq.CreateTemp("/example-")
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()
	ctx := context.Background()

	tx, err := chanmq.OpenSenderOf(ctx, q.Name(), chanmq.JSON[Job]())
	if err != nil {
		log.Fatal(err)
	}
	tx.C <- Job{Path: "a.png", Width: 640} // tx.C is a chan<- Job
	tx.C <- Job{Path: "b.png", Width: 320}
	close(tx.C)
	if err := tx.Wait(); err != nil { // nil once every value is queued
		log.Fatal(err)
	}

	// A message is the JSON text and nothing else: what a C peer's
	// mq_receive or Python's json.loads gets.
	msg, _, err := q.Receive(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", msg)

	ctx, cancel := context.WithCancel(ctx)
	rx, err := chanmq.OpenReceiverOf(ctx, q.Name(), chanmq.JSON[Job]())
	if err != nil {
		log.Fatal(err)
	}
	job := <-rx.C // rx.C is a <-chan Job
	fmt.Printf("%+v\n", job)
	cancel()
	if err := rx.Wait(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// {"path":"a.png","width":640}
	// {Path:b.png Width:320}
}

// A binary codec uses the type's own AppendBinary and UnmarshalBinary
// (Point, in codec_example_test.go, is two big-endian int32s): a message is
// exactly those 8 bytes, so a C peer reads it as a struct of two int32s.
func ExampleOf_binary() {
	q, err := chanmq.CreateTemp("/example-", chanmq.MessageSize(8))
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()
	ctx := context.Background()
	points := chanmq.Of(q, chanmq.Binary[Point]())

	tx := points.Sender(ctx)
	tx.C <- Point{X: 1, Y: -1}
	tx.C <- Point{X: 2, Y: 3}
	close(tx.C)
	if err := tx.Wait(); err != nil {
		log.Fatal(err)
	}

	msg, _, err := q.Receive(ctx) // the raw bytes
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("% x\n", msg)
	p, _, err := points.Receive(ctx) // the next one, decoded
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", p)
	// Output:
	// 00 00 00 01 ff ff ff ff
	// {X:2 Y:3}
}

// A message that does not decode has already left the kernel queue. By
// default the typed receive pump stops there, and Err returns a
// *DecodeError that carries the message's bytes and priority: the values
// before it were delivered, and nothing was dropped.
func ExampleDecodeError() {
	q, err := chanmq.CreateTemp("/example-")
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()
	ctx := context.Background()
	jobs := chanmq.Of(q, chanmq.JSON[Job]())
	_ = jobs.Send(ctx, Job{Path: "a.png", Width: 640}, 0)
	_ = q.Send(ctx, []byte("resize b.png"), 0) // a peer that does not speak JSON
	_ = jobs.Send(ctx, Job{Path: "c.png", Width: 320}, 0)

	rx := jobs.Receiver(ctx)
	for job := range rx.C {
		fmt.Println("got", job.Path)
	}
	var de *chanmq.DecodeError
	if errors.As(rx.Err(), &de) {
		fmt.Printf("stopped at %q (priority %d): %v\n", de.Data, de.Priority, de.Err)
	}
	fmt.Println("still queued:", q.Len())
	// Output:
	// got a.png
	// stopped at "resize b.png" (priority 0): json decode into chanmq_test.Job: invalid character 'r' looking for beginning of value
	// still queued: 1
}

// OnDecodeError handles a message that does not decode in place, and the
// pump goes on with the next one.
func ExampleOnDecodeError() {
	q, err := chanmq.CreateTemp("/example-")
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	jobs := chanmq.Of(q, chanmq.JSON[Job]())
	_ = jobs.Send(ctx, Job{Path: "a.png", Width: 640}, 0)
	_ = q.Send(ctx, []byte("resize b.png"), 0)
	_ = jobs.Send(ctx, Job{Path: "c.png", Width: 320}, 0)

	var bad []string // appended to in the pump's goroutine
	rx := jobs.Receiver(ctx, chanmq.OnDecodeError(func(de *chanmq.DecodeError) {
		bad = append(bad, string(de.Data))
	}))
	for range 2 {
		fmt.Println("got", (<-rx.C).Path)
	}
	cancel()
	if err := rx.Wait(); err != nil { // after Wait, bad is safe to read
		log.Fatal(err)
	}
	fmt.Printf("did not decode: %q\n", bad)
	// Output:
	// got a.png
	// got c.png
	// did not decode: ["resize b.png"]
}

// DeadLetter moves a message that does not decode, unchanged, to another
// queue, where a person or a program can look at it later.
func ExampleDeadLetter() {
	q, err := chanmq.CreateTemp("/example-")
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()
	dlq, err := chanmq.CreateTemp("/example-dead-")
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(dlq.Name())
	defer dlq.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	jobs := chanmq.Of(q, chanmq.JSON[Job]())
	_ = jobs.Send(ctx, Job{Path: "a.png", Width: 640}, 0)
	_ = q.Send(ctx, []byte("resize b.png"), 7)
	_ = jobs.Send(ctx, Job{Path: "c.png", Width: 320}, 0)

	rx := jobs.Receiver(ctx, chanmq.DeadLetter(dlq))
	for range 2 {
		fmt.Println("got", (<-rx.C).Path)
	}
	cancel()
	if err := rx.Wait(); err != nil {
		log.Fatal(err)
	}
	msg, prio, err := dlq.TryReceive()
	fmt.Printf("dead letter: %q, priority %d, %v\n", msg, prio, err)
	// Output:
	// got a.png
	// got c.png
	// dead letter: "resize b.png", priority 7, <nil>
}

// End of stream carries close(tx.C) to every receiver: the sender queues
// a marker after its last value, and each of several competing receivers
// ends its range there (the one that meets the marker puts it back for the
// next). Each goroutine here stands for a worker process: it opens the
// queue by name.
func ExampleOpenReceiverOf_endOfStream() {
	q, err := chanmq.CreateTemp("/example-", chanmq.MaxMessages(4))
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()
	ctx := context.Background()

	var (
		mu    sync.Mutex
		done  []string
		ended int
		wg    sync.WaitGroup
	)
	for range 3 {
		wg.Go(func() {
			// Read-write: putting the marker back for the others is a send.
			rx, err := chanmq.OpenReceiverOf(ctx, q.Name(), chanmq.JSON[Job](), chanmq.EndOfStream())
			if err != nil {
				log.Fatal(err)
			}
			for job := range rx.C { // the worker's loop: ends at end of stream
				mu.Lock()
				done = append(done, job.Path)
				mu.Unlock()
			}
			if err := rx.Err(); err != nil {
				log.Fatal(err)
			}
			mu.Lock()
			ended++
			mu.Unlock()
		})
	}

	tx, err := chanmq.OpenSenderOf(ctx, q.Name(), chanmq.JSON[Job](), chanmq.EndOfStream())
	if err != nil {
		log.Fatal(err)
	}
	for i := range 8 {
		tx.C <- Job{Path: fmt.Sprintf("%d.png", i), Width: 640}
	}
	close(tx.C) // queues the end-of-stream marker after the last job
	if err := tx.Wait(); err != nil {
		log.Fatal(err)
	}
	wg.Wait()
	slices.Sort(done)
	fmt.Println(ended, "receivers ended their range after", done)

	// Like a closed channel, the queue stays ended for a later receiver.
	rx := chanmq.Of(q, chanmq.JSON[Job]()).Receiver(ctx, chanmq.EndOfStream())
	_, ok := <-rx.C
	fmt.Println("a later receiver gets a value:", ok)
	// Output:
	// 3 receivers ended their range after [0.png 1.png 2.png 3.png 4.png 5.png 6.png 7.png]
	// a later receiver gets a value: false
}

// A typed send pump gives back, as values, what it accepted but did not
// queue, with the reason; a value refused on its own (here, too large for
// the queue) does not stop it.
func ExampleUnsentError_typed() {
	q, err := chanmq.CreateTemp("/example-", chanmq.MessageSize(32))
	if err != nil {
		log.Fatal(err)
	}
	defer chanmq.Unlink(q.Name())
	defer q.Close()

	tx := chanmq.Of(q, chanmq.JSON[Job]()).Sender(context.Background())
	tx.C <- Job{Path: "a.png", Width: 640}
	tx.C <- Job{Path: "a-very-long-name-for-this-queue.png", Width: 640}
	tx.C <- Job{Path: "c.png", Width: 320}
	close(tx.C)
	err = tx.Wait()
	var ue *chanmq.UnsentError[Job]
	if errors.As(err, &ue) {
		fmt.Printf("not sent: %+v, %v\n", ue.Values, errors.Is(err, chanmq.ErrMessageTooLarge))
	}
	fmt.Println("queued:", q.Len())
	// Output:
	// not sent: [{Path:a-very-long-name-for-this-queue.png Width:640}], true
	// queued: 2
}
