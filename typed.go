package chanmq

import (
	"context"
	"fmt"
	"iter"
	"reflect"
)

// This file is typed channels: a Queue that carries values of T through a
// Codec. A typed pump is the []byte pump of chanmq.go with the codec at
// its edge, not a second engine; a message is exactly the codec's bytes.

// QueueOf is a Queue that carries values of T, each message being the
// Codec's encoding of one value (no header, no framing, so a C or Python
// peer reads and writes the same bytes). Make one with Of. It is safe for
// concurrent use, like the Queue.
type QueueOf[T any] struct {
	q     *Queue
	codec Codec[T]
	// Why codec cannot encode or decode any T (codecRefusal), or nil:
	// checked once, by Of, and reported before the kernel queue is touched.
	encodeRefused, decodeRefused error
}

// Of returns q as a queue of T values encoded with codec:
//
//	jobs := chanmq.Of(q, chanmq.JSON[Job]())
//	err := jobs.Send(ctx, Job{Path: "a.png"}, 0)
//
// Closing q closes it. Of panics, in the caller's goroutine, if q or codec
// is nil: a programming error, caught where it is made rather than in a
// pump later.
func Of[T any](q *Queue, codec Codec[T]) *QueueOf[T] {
	if q == nil {
		panic("chanmq.Of: nil *Queue: pass the Queue that Open returned")
	}
	if err := checkCodec(codec); err != nil {
		panic("chanmq.Of: " + err.Error())
	}
	return &QueueOf[T]{q: q, codec: codec, encodeRefused: codecRefusal(codec, "encode"), decodeRefused: codecRefusal(codec, "decode")}
}

// codecProblem is why codec cannot be used to op ("encode" or "decode")
// values of T: it is nil (checkCodec), or it refuses T (codecRefusal).
func codecProblem[T any](codec Codec[T], op string) error {
	if err := checkCodec(codec); err != nil {
		return err
	}
	return codecRefusal(codec, op)
}

// checkCodec refuses a nil codec (an untyped nil, or a nil pointer, map,
// func... in the interface), saying what to pass.
func checkCodec[T any](codec Codec[T]) error {
	if codec == nil {
		return fmt.Errorf("%w: nil Codec: pass one, such as chanmq.JSON[%v]()", ErrInvalidOption, reflect.TypeFor[T]())
	}
	switch v := reflect.ValueOf(codec); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Interface, reflect.Slice, reflect.Chan:
		if v.IsNil() {
			return fmt.Errorf("%w: the Codec is a nil %v: pass a usable one, such as chanmq.JSON[%v]()", ErrInvalidOption, v.Type(), reflect.TypeFor[T]())
		}
	}
	return nil
}

// Queue returns the underlying Queue.
func (t *QueueOf[T]) Queue() *Queue { return t.q }

// Send encodes v and queues it with the given priority, as Queue.Send
// does: it waits while the queue is full, and on cancellation nothing was
// queued. An encoding longer than the queue's MessageSize is refused
// before any syscall with ErrMessageTooLarge; a codec failure matches
// ErrEncode and unwraps to the codec's error.
func (t *QueueOf[T]) Send(ctx context.Context, v T, priority uint) error {
	return t.send(ctx, v, priority, true)
}

// TrySend is Send that fails with ErrFull instead of waiting.
func (t *QueueOf[T]) TrySend(v T, priority uint) error {
	return t.send(context.Background(), v, priority, false)
}

func (t *QueueOf[T]) send(ctx context.Context, v T, priority uint, block bool) error {
	switch {
	case !t.q.opened():
		return opError("send", t.q.name, errNotOpen)
	case t.encodeRefused != nil:
		return opError("send", t.q.name, fmt.Errorf("%w: %w", ErrEncode, t.encodeRefused))
	}
	bp := t.q.bufs.Get().(*[]byte)
	defer t.q.bufs.Put(bp)
	data, err := appendSafely(t.codec, (*bp)[:0], v)
	if err != nil {
		return opError("send", t.q.name, fmt.Errorf("%w: %w", ErrEncode, err))
	}
	return t.q.send(ctx, data, priority, block)
}

// Receive takes the next message, as Queue.Receive does, and decodes it
// into a new T. A message that does not decode has left the kernel queue:
// it is returned inside the error, a *DecodeError with its bytes and
// priority (errors.As finds it), never dropped and never a zero value
// passed off as a real one.
func (t *QueueOf[T]) Receive(ctx context.Context) (v T, priority uint, err error) {
	return t.receive(ctx, true)
}

// TryReceive is Receive that fails with ErrEmpty instead of waiting.
func (t *QueueOf[T]) TryReceive() (v T, priority uint, err error) {
	return t.receive(context.Background(), false)
}

func (t *QueueOf[T]) receive(ctx context.Context, block bool) (v T, priority uint, err error) {
	switch {
	case !t.q.opened():
		return v, 0, opError("receive", t.q.name, errNotOpen)
	case t.decodeRefused != nil:
		return v, 0, opError("receive", t.q.name, t.decodeRefused) // before taking a message it could not decode
	}
	bp := t.q.bufs.Get().(*[]byte)
	defer t.q.bufs.Put(bp)
	m, _, err := t.q.receive(ctx, *bp, block)
	if err != nil {
		return v, 0, t.q.emptyError(err)
	}
	v, err = decodeSafely(t.codec, m.Data)
	if err != nil {
		de := &DecodeError{Message: Message{Data: append([]byte{}, m.Data...), Priority: m.Priority}, Err: err}
		return v, m.Priority, opError("receive", t.q.name, de)
	}
	return v, m.Priority, nil
}

// All returns an iterator over the queue's values, as Queue.All: each step
// is a Receive in the caller's goroutine; it ends after yielding one error
// (a *DecodeError among them: the loop may go on past it with a new All).
// It does not stop at an end-of-stream marker (see EndOfStream): it takes
// the marker as a message, a zero-length one, which JSON fails to decode
// and Bytes and String decode to an empty value.
func (t *QueueOf[T]) All(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			v, _, err := t.Receive(ctx)
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

// Receiver starts a receive pump of T values; see ReceiverOf. Its options
// are Buffer, EndOfStream, and for messages that fail to decode
// OnDecodeError or DeadLetter (by default the pump stops with the
// *DecodeError as its Err). Values decoded but not taken when the pump
// stops go back as their original bytes, never re-encoded, so fields a
// newer peer added and this T does not know survive.
func (t *QueueOf[T]) Receiver(ctx context.Context, opts ...ReceiverOption) *ReceiverOf[T] {
	if t.decodeRefused != nil {
		opts = append(opts, receiverOpt{func(*config) error { return t.decodeRefused }})
	}
	return startReceiver(ctx, t.q, opts, decodeWith(t.codec))
}

// Sender starts a send pump of T values; see SenderOf. Its options are
// Buffer, Priority and EndOfStream. A value that fails to encode, or
// whose encoding is too large, is reported by Wait with the reason and
// the pump goes on with the next.
func (t *QueueOf[T]) Sender(ctx context.Context, opts ...SenderOption) *SenderOf[T] {
	if t.encodeRefused != nil {
		opts = append(opts, senderOpt{func(*config) error { return t.encodeRefused }})
	}
	return startSender(ctx, t.q, opts, encodeWith(t.codec), true)
}

// OpenReceiverOf opens the queue called name (with Open's options) and
// starts a typed Receiver on it (with receiver options); the Receiver owns
// the Queue, as for OpenReceiver.
func OpenReceiverOf[T any](ctx context.Context, name string, codec Codec[T], opts ...OpenReceiverOption) (*ReceiverOf[T], error) {
	if err := codecProblem(codec, "decode"); err != nil {
		return nil, opError("open", name, err)
	}
	return openReceiver(ctx, name, opts, decodeWith(codec))
}

// OpenSenderOf opens the queue called name (with Open's options) and
// starts a typed Sender on it (with sender options); the Sender owns the
// Queue, as for OpenSender.
//
//	tx, err := chanmq.OpenSenderOf(ctx, "/jobs", chanmq.JSON[Job](), chanmq.Create(0o600))
//	tx.C <- Job{Path: "a.png"}
//	close(tx.C)
//	err = tx.Wait() // nil once every value is queued
func OpenSenderOf[T any](ctx context.Context, name string, codec Codec[T], opts ...OpenSenderOption) (*SenderOf[T], error) {
	if err := codecProblem(codec, "encode"); err != nil {
		return nil, opError("open", name, err)
	}
	return openSender(ctx, name, opts, encodeWith(codec), true)
}

// decodeWith returns a typed receive pump's decoder.
func decodeWith[T any](codec Codec[T]) func(Message) (T, error) {
	return func(m Message) (T, error) { return decodeSafely(codec, m.Data) }
}

// decodeSafely is codec.Decode, with a panic in it (any process allowed
// to write to the queue can send bytes that make a decoder panic) turned
// into a *CodecError that carries the panic value: the process never dies
// of a message.
func decodeSafely[T any](codec Codec[T], data []byte) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = codecPanic(codec, "decode", r)
		}
	}()
	return codec.Decode(data)
}

// appendSafely is codec.Append, with a panic in it turned into a
// *CodecError that carries the panic value.
func appendSafely[T any](codec Codec[T], buf []byte, v T) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			data, err = nil, codecPanic(codec, "encode", r)
		}
	}()
	return codec.Append(buf, v)
}

// codecPanic describes a panic of codec's encode or decode.
func codecPanic[T any](codec Codec[T], op string, r any) error {
	cause := fmt.Errorf("the codec panicked: %v", r)
	if err, ok := r.(error); ok {
		cause = fmt.Errorf("the codec panicked: %w", err)
	}
	return &CodecError{Codec: codecName(codec), Op: op, Type: reflect.TypeFor[T](), Err: cause, Panic: r}
}

// maxKeptBuffer bounds the encoding buffer a typed send pump keeps
// between values, so one huge value (refused as too large anyway) does not
// pin its memory for the pump's life.
const maxKeptBuffer = 64 << 10

// encodeWith returns a typed send pump's encoder: codec.Append into a
// buffer the pump reuses, so encoding allocates only what the codec does.
func encodeWith[T any](codec Codec[T]) encodeFunc[T] {
	var buf []byte
	return func(v T, prio uint) ([]byte, uint, error) {
		data, err := appendSafely(codec, buf[:0], v)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %w", ErrEncode, err)
		}
		if cap(data) <= maxKeptBuffer {
			buf = data
		}
		return data, prio, nil
	}
}
