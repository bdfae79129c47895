//go:build linux

package chanmq

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chanmq/chanmq/internal/testutil"
)

// Any process allowed to write to a queue can send bytes that make a
// third-party decoder panic, and a value's own MarshalJSON may panic: the
// process never dies of a message. A nil codec is refused where it is given.

// panickyCodec is a string codec whose Decode panics on "boom" and whose
// Append panics on "bang".
func panickyCodec() Codec[string] {
	return Funcs(
		func(buf []byte, v string) ([]byte, error) {
			if v == "bang" {
				panic("append exploded")
			}
			return append(buf, v...), nil
		},
		func(data []byte) (string, error) {
			if string(data) == "boom" {
				panic("decode exploded")
			}
			return string(data), nil
		})
}

// wantCodecPanic fails t unless err carries a *CodecError of op holding
// the panic value want.
func wantCodecPanic(t *testing.T, err error, op string, want any) {
	t.Helper()
	var ce *CodecError
	if !errors.As(err, &ce) || ce.Op != op || ce.Panic != want || !strings.Contains(ce.Error(), "panicked") {
		t.Fatalf("err = %v, want a *CodecError of %s carrying the panic %q", err, op, want)
	}
}

func TestDecodePanicStopsTheReceiverWithTheMessage(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sendMessages(t, q, msg("boom", 3), msg("after", 0))
	rx := Of(q, panickyCodec()).Receiver(context.Background())
	if got := waitClosed(t, rx.C); len(got) != 0 {
		t.Fatalf("C delivered %q", got)
	}
	err := rx.Err()
	var de *DecodeError
	if !errors.As(err, &de) || string(de.Data) != "boom" || de.Priority != 3 {
		t.Fatalf("Err = %v, want a *DecodeError holding boom at priority 3", err)
	}
	wantCodecPanic(t, err, "decode", "decode exploded")
	wantMessages(t, "left in the queue", drainQueue(t, q), msg("after", 0))
}

func TestDecodePanicGoesToOnDecodeErrorAndTheReceiverGoesOn(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sendMessages(t, q, msg("boom", 0), msg("after", 0))
	handled := make(chan *DecodeError, 1)
	ctx, cancel := context.WithCancel(context.Background())
	rx := Of(q, panickyCodec()).Receiver(ctx, OnDecodeError(func(de *DecodeError) { handled <- de }))
	if v := <-rx.C; v != "after" {
		t.Fatalf("got %q, want after", v)
	}
	stopReceiver(t, cancel, rx)
	de := <-handled
	if string(de.Data) != "boom" {
		t.Fatalf("OnDecodeError got %q", de.Data)
	}
	wantCodecPanic(t, de, "decode", "decode exploded")
}

func TestDecodePanicGoesToTheDeadLetterQueue(t *testing.T) {
	t.Parallel()
	q, dlq := newTestQueue(t), newTestQueue(t)
	sendMessages(t, q, msg("boom", 2), msg("after", 0))
	ctx, cancel := context.WithCancel(context.Background())
	rx := Of(q, panickyCodec()).Receiver(ctx, DeadLetter(dlq))
	if v := <-rx.C; v != "after" {
		t.Fatalf("got %q, want after", v)
	}
	stopReceiver(t, cancel, rx)
	wantMessages(t, "dead letters", drainQueue(t, dlq), msg("boom", 2))
}

// panicPoint's UnmarshalBinary panics on anything but 2 bytes.
type panicPoint struct{ X, Y byte }

func (p panicPoint) MarshalBinary() ([]byte, error) { return []byte{p.X, p.Y}, nil }
func (p *panicPoint) UnmarshalBinary(b []byte) error {
	p.X, p.Y = b[0], b[1] // index out of range on a short message
	return nil
}

func TestBinaryUnmarshalPanicIsADecodeError(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sendMessages(t, q, msg("x", 0))
	_, _, err := Of(q, Binary[panicPoint]()).Receive(context.Background())
	var de *DecodeError
	var ce *CodecError
	if !errors.As(err, &de) || string(de.Data) != "x" || !errors.As(err, &ce) || ce.Panic == nil {
		t.Fatalf("Receive = %v, want a *DecodeError holding x, from a *CodecError with the panic", err)
	}
}

func TestQueueOfSendAndReceiveReportCodecPanics(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	words := Of(q, panickyCodec())
	err := words.Send(context.Background(), "bang", 0)
	if !errors.Is(err, ErrEncode) {
		t.Fatalf("Send = %v, want ErrEncode", err)
	}
	wantCodecPanic(t, err, "encode", "append exploded")
	if n := q.Len(); n != 0 {
		t.Fatalf("%d messages queued after a panicking encode", n)
	}
	sendMessages(t, q, msg("boom", 0))
	_, _, err = words.Receive(context.Background())
	var de *DecodeError
	if !errors.As(err, &de) || string(de.Data) != "boom" {
		t.Fatalf("Receive = %v, want a *DecodeError holding boom", err)
	}
	wantCodecPanic(t, err, "decode", "decode exploded")
}

// explosive's MarshalJSON panics when Bad is set.
type explosive struct{ Bad bool }

func (e explosive) MarshalJSON() ([]byte, error) {
	if e.Bad {
		panic(errors.New("MarshalJSON exploded"))
	}
	return []byte(`{"Bad":false}`), nil
}

func TestEncodePanicInASendPumpReportsThatValueAndGoesOn(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	tx := Of(q, JSON[explosive]()).Sender(context.Background())
	tx.C <- explosive{}
	tx.C <- explosive{Bad: true}
	tx.C <- explosive{}
	err := closeAndWait(tx)
	var ue *UnsentError[explosive]
	if !errors.As(err, &ue) || len(ue.Values) != 1 || !ue.Values[0].Bad || !errors.Is(err, ErrEncode) {
		t.Fatalf("Wait = %v, want the bad value back with ErrEncode", err)
	}
	var ce *CodecError
	if !errors.As(err, &ce) || ce.Panic == nil || !strings.Contains(err.Error(), "MarshalJSON exploded") {
		t.Fatalf("Wait = %v, want the panic described", err)
	}
	if n := q.Len(); n != 2 {
		t.Fatalf("queued %d, want 2: the pump goes on past the value that panicked", n)
	}
}

func TestOnDecodeErrorPanicStopsTheReceiverWithTheMessage(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sendMessages(t, q, msg("not json", 0))
	rx := Of(q, JSON[eqA]()).Receiver(context.Background(), OnDecodeError(func(*DecodeError) { panic("callback exploded") }))
	waitClosed(t, rx.C)
	err := rx.Err()
	var de *DecodeError
	if !errors.As(err, &de) || string(de.Data) != "not json" || !strings.Contains(err.Error(), "callback exploded") {
		t.Fatalf("Err = %v, want a *DecodeError holding the message and saying the callback panicked", err)
	}
}

// nilCodec is a Codec whose pointer may be nil.
type nilCodec struct{ Codec[string] }

func TestNilCodecIsRefusedWhereItIsGiven(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	name := uniqueName(t)
	if _, err := OpenSenderOf(ctx, name, Codec[string](nil), Create(0o600)); !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "JSON") {
		t.Fatalf("OpenSenderOf(nil codec) = %v, want ErrInvalidOption saying what to pass", err)
	}
	if _, err := OpenReceiverOf(ctx, name, (*nilCodec)(nil), Create(0o600)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("OpenReceiverOf(nil *nilCodec) = %v, want ErrInvalidOption", err)
	}
	if _, err := Open(name); err == nil {
		t.Fatal("a refused OpenSenderOf/OpenReceiverOf created the queue")
	}
	q := newTestQueue(t)
	wantPanic(t, "Of(q, nil)", "nil Codec", func() { Of(q, Codec[string](nil)) })
	wantPanic(t, "Of(q, (*nilCodec)(nil))", "nil", func() { Of[string](q, (*nilCodec)(nil)) })
	wantPanic(t, "Of(nil, String())", "nil *Queue", func() { Of(nil, String()) })
}

// wantPanic fails t unless fn panics, at once, with a message containing want.
func wantPanic(t *testing.T, what, want string, fn func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if s, ok := r.(string); !ok || !strings.Contains(s, want) {
			t.Errorf("%s: panic %v, want a panic saying %q", what, r, want)
		}
	}()
	fn()
}

// Owned receivers that stop on a fault put what they held back behind
// the messages already queued, as the docs say (Close puts back each
// message behind the messages of its priority already in the queue).
func TestOwnedReceiverFaultPutsHeldValuesBehindQueuedOnes(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(8))
	sendMessages(t, q, msg(`{"a":1}`, 0), msg("bad", 0), msg(`{"a":3}`, 0), msg(`{"a":4}`, 0), msg(`{"a":5}`, 0))
	rx, err := OpenReceiverOf(context.Background(), q.Name(), JSON[eqA](), Buffer(2))
	if err != nil {
		t.Fatal(err)
	}
	if v := <-rx.C; v.A != 1 {
		t.Fatalf("got %+v", v)
	}
	testutil.WaitFor(t, "the pump to stop on bad", func() bool { return rx.Err() != nil })
	var de *DecodeError
	if !errors.As(rx.Wait(), &de) {
		t.Fatalf("Err = %v, want a *DecodeError", rx.Err())
	}
	// The pump held bad, 3 and 4 (read ahead) when it met bad; 5 was queued.
	wantMessages(t, "queue after the fault", drainQueue(t, q), msg(`{"a":5}`, 0), msg(`{"a":3}`, 0), msg(`{"a":4}`, 0))
}
