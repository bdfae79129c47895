// Package chanmq makes Linux POSIX message queues feel like Go channels:
// processes on one host, or containers of one Kubernetes pod (they share an
// IPC namespace), talk through a kernel queue as goroutines talk through a
// chan []byte, or a chan Job. It is pure Go (no cgo), every blocking call
// takes a context, and a blocked call holds no OS thread.
//
// # The names to learn first
//
//   - [OpenSender] / [OpenSenderOf]: open a queue and get a send-only
//     channel, tx.C, for []byte or (with a [Codec] such as [JSON]) for any T.
//   - [OpenReceiver] / [OpenReceiverOf]: open a queue and get a receive-only
//     channel, rx.C, to range over.
//   - [EndOfStream]: makes close(tx.C) end the range of receivers in other
//     processes.
//   - [Queue.All]: range over messages in the caller's goroutine, with no
//     pump and nothing held.
//   - [Open], [Queue.Send], [Queue.Receive], [Queue.Close], [Unlink]: the
//     raw queue, when you need control ([Queue.TrySend],
//     [Queue.TryReceive], [Queue.ReceiveInto] for no allocation,
//     [CreateTemp], [NewQueue] for an inherited descriptor).
//
// Options are grouped by where they go, and the compiler checks it:
//
//	Open, CreateTemp                   Create, Exclusive, MaxMessages, MessageSize, ReadOnly, WriteOnly
//	receivers (Queue.Receiver...)      Buffer, EndOfStream, OnDecodeError, DeadLetter
//	senders (Queue.Sender...)          Buffer, Priority, EndOfStream
//	OpenReceiver(Of), OpenSender(Of)   any of Open's, plus the receiver's or sender's
//
// # The one rule for pumps
//
// A pump (a Receiver or a Sender) is a goroutine of this process that
// holds messages on their way: stop it and wait for it before the process
// exits. For a Sender: close(tx.C), then tx.Wait(). For a Receiver: cancel
// its context (after leaving a range early; Ctrl-C through
// signal.NotifyContext does it), then rx.Wait(). Go runs nothing when main
// returns, so a process that skips this can lose what its pumps held: the
// values not yet queued, the end-of-stream marker, the messages a receiver
// read ahead. The plain loops are safe: `for v := range rx.C` ends when the
// context is done, and `tx.C <- v` in a loop keeps returning after the
// pump stopped (Wait then reports the values it did not queue).
//
// # Nothing lost silently
//
// A message taken out of the kernel queue is delivered, kept for the next
// receive on the same Queue, put back into the kernel queue by Close, or
// returned inside an *UndeliveredError (or, if it did not decode, a
// *DecodeError); a value a send pump accepted but did not queue comes back
// from Wait inside an *UnsentError.
//
// See the examples: a program converted from goroutines, leaving a range
// early, Ctrl-C, and each of the raw calls.
package chanmq
