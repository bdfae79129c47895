//go:build linux

package chanmq

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/testutil"
)

// A stopped receive pump gives back exactly the messages it did not
// deliver, as their own bytes and priority, in take order: values that
// decode equal, identical bytes at different priorities, NaNs and empty
// messages included. "Stop" is cancel, then Wait.

// eqA decodes {"a":1,"x":1} and {"a":1,"x":2} to the same value.
type eqA struct {
	A int `json:"a"`
}

// sendMessages queues each message of ms with its priority.
func sendMessages(t *testing.T, q *Queue, ms ...Message) {
	t.Helper()
	for _, m := range ms {
		if err := q.Send(context.Background(), m.Data, m.Priority); err != nil {
			t.Fatal(err)
		}
	}
}

// msg is a Message of s at priority p.
func msg(s string, p uint) Message { return Message{Data: []byte(s), Priority: p} }

// wantMessages fails t unless got is want: the same bytes and priorities,
// in order.
func wantMessages(t *testing.T, what string, got []Message, want ...Message) {
	t.Helper()
	if fmt.Sprint(describe(got)) != fmt.Sprint(describe(want)) {
		t.Fatalf("%s: %v, want %v", what, describe(got), describe(want))
	}
}

func describe(ms []Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprintf("%q@%d", m.Data, m.Priority)
	}
	return out
}

// stopReceiver cancels rx's context and waits for it; the pump must stop
// with no fault.
func stopReceiver[T any](t *testing.T, cancel context.CancelFunc, rx *ReceiverOf[T]) {
	t.Helper()
	cancel()
	if err := rx.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

func TestStoppedReceiverGivesBackTheUnreadOneOfTwoValuesThatDecodeEqual(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sendMessages(t, q, msg(`{"a":1,"x":1}`, 0), msg(`{"a":1,"x":2}`, 0))
	ctx, cancel := context.WithCancel(context.Background())
	rx := Of(q, JSON[eqA]()).Receiver(ctx, Buffer(2))
	testutil.WaitFor(t, "the pump to take both", func() bool { return q.Len() == 0 })
	if v := <-rx.C; v.A != 1 {
		t.Fatalf("got %+v", v)
	}
	stopReceiver(t, cancel, rx)
	wantMessages(t, "left after one was read", drainQueue(t, q), msg(`{"a":1,"x":2}`, 0))
}

// recordingCodec is JSON[eqA] that records the bytes of every message it
// decodes. A pump delivers values in the order it decodes them, so the
// first n records of a pump's codec are the bytes of the n values it
// delivered: which messages those were, whatever they decode to.
type recordingCodec struct {
	Codec[eqA]
	decoded [][]byte
}

func (c *recordingCodec) Decode(data []byte) (eqA, error) {
	c.decoded = append(c.decoded, append([]byte(nil), data...))
	return c.Codec.Decode(data)
}

func TestPumpsInTurnGiveBackExactlyWhatTheyDidNotDeliver(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	var delivered, sent []Message
	for round := range 2 {
		batch := []Message{msg(fmt.Sprintf(`{"a":1,"x":%d}`, 2*round+1), 0), msg(fmt.Sprintf(`{"a":1,"x":%d}`, 2*round+2), 0)}
		sendMessages(t, q, batch...)
		sent = append(sent, batch...)
		codec := &recordingCodec{Codec: JSON[eqA]()}
		ctx, cancel := context.WithCancel(context.Background())
		rx := Of(q, Codec[eqA](codec)).Receiver(ctx, Buffer(2))
		testutil.WaitFor(t, "the pump to take everything", func() bool { return q.Len() == 0 && !q.held.has() })
		<-rx.C
		stopReceiver(t, cancel, rx)
		delivered = append(delivered, Message{Data: codec.decoded[0]})
	}
	wantMessages(t, "delivered, then left in the queue", append(delivered, drainQueue(t, q)...), sent...)
}

func TestStoppedReceiverKeepsThePriorityOfIdenticalBytes(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sendMessages(t, q, msg("job", 5), msg("job", 1))
	ctx, cancel := context.WithCancel(context.Background())
	rx := Of(q, String()).Receiver(ctx, Buffer(2))
	testutil.WaitFor(t, "the pump to take both", func() bool { return q.Len() == 0 })
	<-rx.C
	stopReceiver(t, cancel, rx)
	wantMessages(t, "left after one was read", drainQueue(t, q), msg("job", 1))
}

// nanBits are two NaNs with different payload bits: never equal, not even
// to themselves.
var nanBits = [2]uint64{0x7ff8000000000001, 0x7ff8000000000002}

func float64Codec() Codec[float64] {
	return Funcs(
		func(buf []byte, v float64) ([]byte, error) {
			return binary.BigEndian.AppendUint64(buf, math.Float64bits(v)), nil
		},
		func(data []byte) (float64, error) {
			if len(data) != 8 {
				return 0, fmt.Errorf("%d bytes, want 8", len(data))
			}
			return math.Float64frombits(binary.BigEndian.Uint64(data)), nil
		})
}

func TestStoppedReceiverGivesBackTheUnreadNaN(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	nans := Of(q, float64Codec())
	for _, b := range nanBits {
		if err := nans.Send(context.Background(), math.Float64frombits(b), 0); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	rx := nans.Receiver(ctx, Buffer(2))
	testutil.WaitFor(t, "the pump to take both", func() bool { return q.Len() == 0 })
	if v := <-rx.C; math.Float64bits(v) != nanBits[0] {
		t.Fatalf("first value has bits %x, want %x", math.Float64bits(v), nanBits[0])
	}
	stopReceiver(t, cancel, rx)
	want := binary.BigEndian.AppendUint64(nil, nanBits[1])
	wantMessages(t, "left after one was read", drainQueue(t, q), Message{Data: want})
}

func TestStoppedReceiverKeepsThePriorityOfEmptyMessages(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"Receiver", "Of(q, Bytes()).Receiver"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t)
			sendMessages(t, q, msg("", 5), msg("", 1))
			ctx, cancel := context.WithCancel(context.Background())
			var rx *Receiver
			if kind == "Receiver" {
				rx = q.Receiver(ctx, Buffer(2))
			} else {
				rx = Of(q, Bytes()).Receiver(ctx, Buffer(2))
			}
			testutil.WaitFor(t, "the pump to take both", func() bool { return q.Len() == 0 })
			<-rx.C
			stopReceiver(t, cancel, rx)
			wantMessages(t, "left after one was read", drainQueue(t, q), msg("", 1))
		})
	}
}

// A message handled in place (OnDecodeError) must not let a later message
// take the place of one still held.
func TestDecodeFailureHandledInPlaceLeavesEveryOtherMessageOnce(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sent := []Message{msg(`{"a":1,"pad":"aaaa"}`, 0), msg(`not json`, 0), msg(`{"a":3,"pad":"cccc"}`, 0)}
	sendMessages(t, q, sent...)
	var handled []Message
	ctx, cancel := context.WithCancel(context.Background())
	rx := Of(q, JSON[eqA]()).Receiver(ctx, Buffer(1), OnDecodeError(func(de *DecodeError) { handled = append(handled, de.Message) }))
	testutil.WaitFor(t, "the pump to take what it may", func() bool { return q.Len() <= 1 })
	stopReceiver(t, cancel, rx) // nobody read C
	wantMessages(t, "handled in place, then left in the queue", append(handled, drainQueue(t, q)...), sent...)
}

// Values read ahead when the end-of-stream marker is met stay with the
// pump: a stop gives them back, ahead of the marker.
func TestValuesReadAheadOfTheMarkerAreKeptOnStop(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(4))
	tx := Of(q, String()).Sender(context.Background(), EndOfStream())
	for _, v := range []string{"v1", "v2", "v3"} {
		tx.C <- v
	}
	close(tx.C)
	if err := tx.Wait(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rx := Of(q, String()).Receiver(ctx, Buffer(4), EndOfStream())
	testutil.WaitFor(t, "the pump to read the values ahead", func() bool { return q.Len() <= 1 })
	if v := <-rx.C; v != "v1" {
		t.Fatalf("first value %q, want v1", v)
	}
	stopReceiver(t, cancel, rx)
	wantMessages(t, "left after one was read", drainQueue(t, q), msg("v2", 0), msg("v3", 0), msg("", 0))
}

// Close may be called from inside the OnDecodeError callback (the program
// decides the queue is compromised) and from inside a codec, which run in
// the pump's goroutine: it neither deadlocks nor loses what the pump held.
func TestCloseFromInsideTheCallerCodeOfAPump(t *testing.T) {
	t.Parallel()
	t.Run("OnDecodeError", func(t *testing.T) {
		t.Parallel()
		q := newTestQueue(t)
		sendMessages(t, q, msg("bad", 0), msg(`{"a":2}`, 0), msg(`{"a":3}`, 0))
		closed := make(chan error, 1)
		rx := Of(q, JSON[eqA]()).Receiver(context.Background(), Buffer(2), OnDecodeError(func(*DecodeError) { closed <- q.Close() }))
		got := checkCloseFromInside(t, q, closed, rx, 1, msg("bad", 0), msg(`{"a":2}`, 0), msg(`{"a":3}`, 0))
		if len(got) != 0 {
			t.Fatalf("C delivered %v after Close", got)
		}
	})
	t.Run("codec Decode", func(t *testing.T) {
		t.Parallel()
		q := newTestQueue(t)
		sendMessages(t, q, msg("close", 0), msg("kept", 0))
		closed := make(chan error, 1)
		codec := Funcs(func(buf []byte, v string) ([]byte, error) { return append(buf, v...), nil },
			func(data []byte) (string, error) {
				if string(data) == "close" {
					closed <- q.Close()
				}
				return string(data), nil
			})
		rx := Of(q, codec).Receiver(context.Background(), Buffer(1))
		got := checkCloseFromInside(t, q, closed, rx, 0, msg("close", 0), msg("kept", 0))
		if len(got) > 1 {
			t.Fatalf("C delivered %q after Close", got)
		}
	})
	t.Run("codec Append", func(t *testing.T) {
		t.Parallel()
		q := newTestQueue(t)
		closed := make(chan error, 1)
		codec := Funcs(func(buf []byte, v string) ([]byte, error) {
			if v == "close" {
				closed <- q.Close()
			}
			return append(buf, v...), nil
		}, func(data []byte) (string, error) { return string(data), nil })
		tx := Of(q, codec).Sender(context.Background())
		tx.C <- "close"
		waitCloseFromInside(t, closed)
		tx.C <- "after"
		err := closeAndWait(tx)
		var ue *UnsentError[string]
		if !errors.As(err, &ue) || len(ue.Values) != 2 || !errors.Is(err, ErrClosed) {
			t.Fatalf("Wait = %v, want both values back with ErrClosed", err)
		}
	})
}

// checkCloseFromInside waits for the Close made inside rx's pump, then
// for the pump, and checks that what it held went back into the kernel
// queue: the messages of sent after the handled ones (given to a callback)
// and those C delivered, in order. It returns what C delivered.
func checkCloseFromInside[T any](t *testing.T, q *Queue, closed <-chan error, rx *ReceiverOf[T], handled int, sent ...Message) []T {
	t.Helper()
	waitCloseFromInside(t, closed)
	got := waitClosed(t, rx.C)
	if err := rx.Wait(); err != nil {
		t.Fatalf("Wait after Close: %v", err)
	}
	again, err := Open(q.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	wantMessages(t, "put back by the pump that finished the Close", drainQueue(t, again), sent[handled+len(got):]...)
	return got
}

// waitCloseFromInside waits for the result of a Close called inside a
// pump's goroutine; it fails t if that Close fails or never returns.
func waitCloseFromInside(t *testing.T, closed <-chan error) {
	t.Helper()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from inside the pump: %v", err)
		}
	case <-timeAfterPatience():
		t.Fatal("Close from inside the pump did not return: deadlock")
	}
}

// timeAfterPatience fires when a wait that should end at once has lasted
// testutil.Patience.
func timeAfterPatience() <-chan time.Time { return time.After(testutil.Patience) }
