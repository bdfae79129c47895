package chanmq

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error returned by this package is an *Error that
// wraps one of these, a context error, or an errno that matches
// fs.ErrNotExist, fs.ErrExist or fs.ErrPermission through errors.Is. A
// Queue that no Open, CreateTemp or NewQueue made (a zero Queue{}), and a
// nil file given to NewQueue, give errors matching fs.ErrInvalid.
var (
	// ErrClosed means the Queue was closed, before or during the call.
	ErrClosed = errors.New("queue closed")
	// ErrFull means TrySend found no room in the queue.
	ErrFull = errors.New("queue full")
	// ErrEmpty means TryReceive found no message in the queue.
	ErrEmpty = errors.New("queue empty")
	// ErrInvalidName means a queue name is not "/" followed by 1 to 255
	// bytes with no other "/" and no NUL (and not "/." or "/..").
	ErrInvalidName = errors.New("invalid queue name")
	// ErrMessageTooLarge means a message is longer than the queue's
	// MessageSize.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrBufferTooSmall means a ReceiveInto buffer is shorter than the
	// queue's MessageSize; the message stays queued.
	ErrBufferTooSmall = errors.New("buffer too small")
	// ErrPriority means a priority is not in 0..MaxPriority.
	ErrPriority = errors.New("priority out of range")
	// ErrReadOnly means Send on a Queue opened with ReadOnly.
	ErrReadOnly = errors.New("queue opened read-only")
	// ErrWriteOnly means Receive on a Queue opened with WriteOnly.
	ErrWriteOnly = errors.New("queue opened write-only")
	// ErrInvalidOption means an option is out of range or conflicts with
	// another option.
	ErrInvalidOption = errors.New("invalid option")
	// ErrAttrMismatch means Open was given Create with MaxMessages or
	// MessageSize, and the queue already existed with other sizes. The
	// kernel keeps a queue's sizes for its life, so the error names both:
	// open it without those options to take it as it is, or Unlink it and
	// create it again.
	ErrAttrMismatch = errors.New("queue exists with other sizes")
	// ErrLimit means a kernel limit refused the request; the error text
	// names the limit, its value and how to raise it.
	ErrLimit = errors.New("kernel limit reached")
	// ErrEmptyMessage means a send pump with EndOfStream was given a value
	// that is a zero-length message, which would read as the end-of-stream
	// marker; the pump reports it and goes on.
	ErrEmptyMessage = errors.New("zero-length message")
	// ErrEncode means a codec could not encode a value; the send pump
	// reports the value and goes on.
	ErrEncode = errors.New("cannot encode value")
)

// Error records a failed operation on a named queue. Op is "open", "send",
// "receive", "close", "unlink", "attr" or a pump's name; Err is the cause.
type Error struct {
	Op   string
	Name string
	Err  error
}

var _ interface {
	error
	Unwrap() error
	Timeout() bool
} = (*Error)(nil)

// Error reads like "chanmq: send /jobs: message too large (9000 > 8192 bytes)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("chanmq: ")
	b.WriteString(e.Op)
	if e.Name != "" {
		b.WriteByte(' ')
		b.WriteString(e.Name)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the operation ended because a deadline passed.
func (e *Error) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// opError wraps err with the operation and queue name; it returns nil for nil.
func opError(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Name: name, Err: err}
}

// failure explains err (an errno from op on name gets a sentence that says
// what to do; see explainErrno) and wraps it with op and name. c is the
// Open config, or nil. It returns nil for nil.
func failure(op, name string, err error, c *config) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Name: name, Err: explainErrno(op, name, err, c)}
}

// explained is an errno with a sentence that says what to do about it.
// errors.Is still matches the errno and what it matches (fs.ErrNotExist...).
type explained struct {
	msg   string
	errno error
	also  error // an extra sentinel, such as ErrLimit, or nil
}

func (e *explained) Error() string { return e.msg }

func (e *explained) Unwrap() []error {
	if e.also != nil {
		return []error{e.errno, e.also}
	}
	return []error{e.errno}
}

func explain(errno error, format string, args ...any) error {
	return &explained{msg: fmt.Sprintf(format, args...), errno: errno}
}

// Message is one queued message and its priority.
type Message struct {
	Data     []byte
	Priority uint
}

// UndeliveredError carries messages that were taken out of the kernel queue
// (or accepted by a send pump) but could be neither delivered nor put back.
// Nothing is dropped silently: the bytes are here, in order.
type UndeliveredError struct {
	Messages []Message
	Err      error // why they could not be delivered or put back
}

// Error says how many messages are carried and why.
func (e *UndeliveredError) Error() string {
	return fmt.Sprintf("%d message(s) not delivered, returned in this error: %v", len(e.Messages), e.Err)
}

// Unwrap returns why the messages were not delivered.
func (e *UndeliveredError) Unwrap() error { return e.Err }

// DecodeError carries a message that left the kernel queue but did not
// decode into a value: its bytes and priority, exactly as they came, and
// the codec's error. A typed receive pump stops with it (as its Err)
// unless OnDecodeError or DeadLetter handle it; Of(…).Receive returns it.
type DecodeError struct {
	Message
	Err error
}

// Error says how long the message was and why it did not decode. For an
// empty message at priority 0 it also says that this is what an
// end-of-stream marker looks like, and which option reads it as one.
func (e *DecodeError) Error() string {
	if len(e.Data) == 0 && e.Priority == 0 {
		return fmt.Sprintf("empty message (priority 0) did not decode, returned in this error: %v; "+
			"an empty message at priority 0 is the end-of-stream marker of a sender with EndOfStream: "+
			"give this receiver EndOfStream() too, so that the marker ends its range", e.Err)
	}
	return fmt.Sprintf("message of %d bytes (priority %d) did not decode, returned in this error: %v", len(e.Data), e.Priority, e.Err)
}

// Unwrap returns the codec's error.
func (e *DecodeError) Unwrap() error { return e.Err }

// UnsentError carries the values a send pump accepted from its channel
// but did not queue, in order, with why: nothing accepted is dropped
// silently. For a Sender the values are the messages' bytes; for a
// MessageSender, messages with their priorities; for a typed sender, the
// values as they were sent (a value that failed to encode included).
type UnsentError[T any] struct {
	Values []T
	Err    error // why they were not queued
}

// Error says how many values are carried and why.
func (e *UnsentError[T]) Error() string {
	return fmt.Sprintf("%d value(s) accepted but not queued, returned in this error: %v", len(e.Values), e.Err)
}

// Unwrap returns why the values were not queued.
func (e *UnsentError[T]) Unwrap() error { return e.Err }
