//go:build linux

package chanmq

import (
	"context"
	"fmt"
	"testing"
)

// Microbenchmarks of the raw Queue. Each one is a pair on one queue: the
// call named in the benchmark, and the cheapest counterpart that keeps the
// queue from filling or emptying (TryReceiveInto or TrySend, neither of
// which allocates). allocs/op is therefore the named call's own: 0 for
// Send, ReceiveInto, TrySend and TryReceiveInto, 1 (the message) for
// Receive and TryReceive. The two-process figures against C are in
// ./bench (go run ./bench). The pump benchmarks report allocations per
// message, the pump goroutine included.

// benchSizes are the message sizes the benchmarks run at.
var benchSizes = []int{16, 256, 8192}

// newBenchQueue creates a queue of 10 messages of size bytes (the
// unprivileged default msg_max), unlinked when b ends.
func newBenchQueue(b *testing.B, size int) *Queue {
	b.Helper()
	return newTestQueue(b, MaxMessages(10), MessageSize(size))
}

// forSizes runs fn as one sub-benchmark per message size, with SetBytes.
func forSizes(b *testing.B, fn func(b *testing.B, q *Queue, msg, buf []byte)) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			q := newBenchQueue(b, size)
			msg, buf := make([]byte, size), make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			fn(b, q, msg, buf)
		})
	}
}

func BenchmarkSend(b *testing.B) {
	forSizes(b, func(b *testing.B, q *Queue, msg, buf []byte) {
		ctx := context.Background()
		for b.Loop() {
			if err := q.Send(ctx, msg, 0); err != nil {
				b.Fatal(err)
			}
			if _, _, err := q.TryReceiveInto(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSendCancelable is Send with a context that can be cancelled;
// the fast path must not arm anything for it either.
func BenchmarkSendCancelable(b *testing.B) {
	forSizes(b, func(b *testing.B, q *Queue, msg, buf []byte) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for b.Loop() {
			if err := q.Send(ctx, msg, 0); err != nil {
				b.Fatal(err)
			}
			if _, _, err := q.TryReceiveInto(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkReceive(b *testing.B) {
	forSizes(b, func(b *testing.B, q *Queue, msg, _ []byte) {
		ctx := context.Background()
		for b.Loop() {
			if err := q.TrySend(msg, 0); err != nil {
				b.Fatal(err)
			}
			if _, _, err := q.Receive(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkReceiveInto(b *testing.B) {
	forSizes(b, func(b *testing.B, q *Queue, msg, buf []byte) {
		ctx := context.Background()
		for b.Loop() {
			if err := q.TrySend(msg, 0); err != nil {
				b.Fatal(err)
			}
			if _, _, err := q.ReceiveInto(ctx, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTrySendTryReceive is the nonblocking pair that allocates the
// received message (1 alloc/op).
func BenchmarkTrySendTryReceive(b *testing.B) {
	forSizes(b, func(b *testing.B, q *Queue, msg, _ []byte) {
		for b.Loop() {
			if err := q.TrySend(msg, 0); err != nil {
				b.Fatal(err)
			}
			if _, _, err := q.TryReceive(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTrySendTryReceiveInto is the nonblocking pair that allocates
// nothing (0 allocs/op).
func BenchmarkTrySendTryReceiveInto(b *testing.B) {
	forSizes(b, func(b *testing.B, q *Queue, msg, buf []byte) {
		for b.Loop() {
			if err := q.TrySend(msg, 0); err != nil {
				b.Fatal(err)
			}
			if _, _, err := q.TryReceiveInto(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPingPongGoroutines bounces one message between two goroutines
// over two queues, so every Receive parks on the netpoller: it measures
// the slow path (one round trip per op) and its allocations.
func BenchmarkPingPongGoroutines(b *testing.B) {
	for _, cancelable := range []bool{false, true} {
		b.Run(fmt.Sprintf("cancelable=%v", cancelable), func(b *testing.B) {
			ping, pong := newBenchQueue(b, 256), newBenchQueue(b, 256)
			ctx := context.Background()
			if cancelable {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
			}
			done := make(chan error, 1)
			go func() {
				buf := make([]byte, 256)
				for {
					n, _, err := ping.ReceiveInto(ctx, buf)
					if err != nil {
						done <- err
						return
					}
					if n == 0 { // the stop message
						done <- nil
						return
					}
					if err := pong.Send(ctx, buf[:n], 0); err != nil {
						done <- err
						return
					}
				}
			}()
			msg, buf := make([]byte, 256), make([]byte, 256)
			b.ReportAllocs()
			for b.Loop() {
				if err := ping.Send(ctx, msg, 0); err != nil {
					b.Fatal(err)
				}
				if _, _, err := pong.ReceiveInto(ctx, buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := ping.Send(ctx, nil, 0); err != nil {
				b.Fatal(err)
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkReceiverPump streams messages through a Receiver: a goroutine
// Sends, the benchmark takes each message from r.C. allocs/op is per
// message, pump included (the message Receive allocates).
func BenchmarkReceiverPump(b *testing.B) {
	forSizes(b, func(b *testing.B, q *Queue, msg, _ []byte) {
		benchRecvPump(b, q, msg, func(ctx context.Context, q *Queue) *Receiver { return q.Receiver(ctx) })
	})
}

// BenchmarkSenderPump streams messages through a Sender: the benchmark
// sends on s.C, a goroutine ReceiveInto's them. allocs/op is per message.
func BenchmarkSenderPump(b *testing.B) {
	forSizes(b, func(b *testing.B, q *Queue, msg, _ []byte) {
		// msg is never modified, so it may be sent again.
		benchSendPump(b, q, msg, func(ctx context.Context, q *Queue) *Sender { return q.Sender(ctx) })
	})
}

// BenchmarkTypedPump streams sampleJob values through typed pumps (Binary
// and JSON codecs) and, as the counterpart, the same bytes through the
// []byte pumps, in one process. Like BenchmarkReceiverPump and
// BenchmarkSenderPump, allocs/op is per message, pump goroutine included;
// compare it with the codec's own (BenchmarkCodec, encode and decode):
// a typed receive pump should allocate what Decode allocates and nothing
// for the message itself (it receives into reused slots), and a typed send
// pump what Append allocates (it encodes into a reused buffer).
//
//	go test -run '^$' -bench 'TypedPump|Codec$' -benchmem
func BenchmarkTypedPump(b *testing.B) {
	job := sampleJob()
	jc, bc := JSON[codecJob](), Binary[codecJob]()
	jsonMsg, err := jc.Append(nil, job)
	if err != nil {
		b.Fatal(err)
	}
	binMsg, err := bc.Append(nil, job)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("recv/bytes", func(b *testing.B) {
		benchRecvPump(b, newBenchQueue(b, 256), jsonMsg, func(ctx context.Context, q *Queue) *Receiver { return q.Receiver(ctx) })
	})
	b.Run("recv/binary", func(b *testing.B) {
		benchRecvPump(b, newBenchQueue(b, 256), binMsg, func(ctx context.Context, q *Queue) *ReceiverOf[codecJob] { return Of(q, bc).Receiver(ctx) })
	})
	b.Run("recv/json", func(b *testing.B) {
		benchRecvPump(b, newBenchQueue(b, 256), jsonMsg, func(ctx context.Context, q *Queue) *ReceiverOf[codecJob] { return Of(q, jc).Receiver(ctx) })
	})
	b.Run("send/bytes", func(b *testing.B) {
		benchSendPump(b, newBenchQueue(b, 256), jsonMsg, func(ctx context.Context, q *Queue) *SenderOf[[]byte] { return q.Sender(ctx) })
	})
	b.Run("send/binary", func(b *testing.B) {
		benchSendPump(b, newBenchQueue(b, 256), job, func(ctx context.Context, q *Queue) *SenderOf[codecJob] { return Of(q, bc).Sender(ctx) })
	})
	b.Run("send/json", func(b *testing.B) {
		benchSendPump(b, newBenchQueue(b, 256), job, func(ctx context.Context, q *Queue) *SenderOf[codecJob] { return Of(q, jc).Sender(ctx) })
	})
}

// benchRecvPump sends msg b.N times on q from a goroutine and takes each
// value from the receive pump that start returns; allocs/op is per
// message, pump included.
func benchRecvPump[T any](b *testing.B, q *Queue, msg []byte, start func(context.Context, *Queue) *ReceiverOf[T]) {
	ctx, cancel := context.WithCancel(context.Background())
	r := start(ctx, q)
	n := b.N
	sent := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range n {
			if err := q.Send(ctx, msg, 0); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for range n {
		if _, ok := <-r.C; !ok {
			b.Fatalf("receive pump stopped: %v", r.Err())
		}
	}
	b.StopTimer()
	if err := <-sent; err != nil {
		b.Fatal(err)
	}
	cancel()
	for range r.C {
	}
	if err := r.Err(); err != nil {
		b.Fatal(err)
	}
}

// benchSendPump sends v b.N times on the send pump that start returns, and
// a goroutine ReceiveInto's the messages from q.
func benchSendPump[T any](b *testing.B, q *Queue, v T, start func(context.Context, *Queue) *SenderOf[T]) {
	ctx := context.Background()
	s := start(ctx, q)
	n := b.N
	got := make(chan error, 1)
	buf := make([]byte, q.MessageSize())
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range n {
			if _, _, err := q.ReceiveInto(ctx, buf); err != nil {
				got <- err
				return
			}
		}
		got <- nil
	}()
	for range n {
		s.C <- v
	}
	close(s.C)
	if err := s.Wait(); err != nil {
		b.Fatal(err)
	}
	if err := <-got; err != nil {
		b.Fatal(err)
	}
}
