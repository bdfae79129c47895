package chanmq

import (
	"fmt"
	"io/fs"
	"strings"
)

// MaxPriority is the highest message priority Linux accepts (MQ_PRIO_MAX-1).
// Higher priorities are received first; equal priorities in FIFO order.
const MaxPriority = 32767

// maxNameLen is NAME_MAX: the longest queue name after its slash.
const maxNameLen = 255

// Option is what every option is. Each entry point takes its own kind of
// option, so that an option given where it would do nothing does not
// compile (Create passed to a pump, Priority to a receiver):
//
//	Open, CreateTemp                                       OpenOption
//	Queue.Receiver, Queue.MessageReceiver, Of(…).Receiver  ReceiverOption
//	Queue.Sender, Queue.MessageSender, Of(…).Sender        SenderOption
//	OpenReceiver, OpenReceiverOf                           OpenReceiverOption (an OpenOption or a ReceiverOption)
//	OpenSender, OpenSenderOf                               OpenSenderOption (an OpenOption or a SenderOption)
//
// The compiler's message names the kind and a marker method that says
// where the option would be accepted: for q.Receiver(ctx, Priority(1)) it
// reads "chanmq.SenderOption does not implement chanmq.ReceiverOption
// (missing method acceptedByReceivers)": Priority is not accepted by
// receivers.
//
// A nil Option is ignored. Out-of-range values and conflicting options are
// refused at run time with an error matching ErrInvalidOption.
type Option interface {
	apply(*config) error
}

// OpenOption configures how a queue is opened: Create, Exclusive,
// MaxMessages, MessageSize, ReadOnly, WriteOnly.
type OpenOption interface {
	Option
	acceptedByOpen()
	alsoAcceptedByOpenReceiver()
	alsoAcceptedByOpenSender()
}

// ReceiverOption configures a receive pump: Buffer, EndOfStream,
// OnDecodeError, DeadLetter.
type ReceiverOption interface {
	Option
	acceptedByReceivers()
	alsoAcceptedByOpenReceiver()
}

// SenderOption configures a send pump: Buffer, Priority, EndOfStream.
type SenderOption interface {
	Option
	acceptedBySenders()
	alsoAcceptedByOpenSender()
}

// PumpOption configures receive and send pumps alike: Buffer, EndOfStream.
type PumpOption interface {
	ReceiverOption
	SenderOption
}

// OpenReceiverOption is an OpenOption or a ReceiverOption, for
// OpenReceiver and OpenReceiverOf.
type OpenReceiverOption interface {
	Option
	alsoAcceptedByOpenReceiver()
}

// OpenSenderOption is an OpenOption or a SenderOption, for OpenSender and
// OpenSenderOf.
type OpenSenderOption interface {
	Option
	alsoAcceptedByOpenSender()
}

// optionFunc is the one implementation of every option; the kinds differ
// only in their marker methods.
type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type openOpt struct{ optionFunc }

func (openOpt) acceptedByOpen()             {}
func (openOpt) alsoAcceptedByOpenReceiver() {}
func (openOpt) alsoAcceptedByOpenSender()   {}

type receiverOpt struct{ optionFunc }

func (receiverOpt) acceptedByReceivers()        {}
func (receiverOpt) alsoAcceptedByOpenReceiver() {}

type senderOpt struct{ optionFunc }

func (senderOpt) acceptedBySenders()        {}
func (senderOpt) alsoAcceptedByOpenSender() {}

type pumpOpt struct{ optionFunc }

func (pumpOpt) acceptedByReceivers()        {}
func (pumpOpt) acceptedBySenders()          {}
func (pumpOpt) alsoAcceptedByOpenReceiver() {}
func (pumpOpt) alsoAcceptedByOpenSender()   {}

// config holds what the options chose; newConfig builds it with defaults.
type config struct {
	create    bool
	perm      fs.FileMode
	exclusive bool
	maxMsgs   int // 0: the system default
	msgSize   int // 0: the system default
	readOnly  bool
	writeOnly bool

	buffer        int  // pump channel capacity
	priority      uint // send pump priority
	endOfStream   bool
	onDecodeError func(*DecodeError)
	deadLetter    *Queue
}

// newConfig applies opts over the defaults (read-write, no create, owner
// only) and rejects invalid values and combinations.
func newConfig[O Option](opts []O) (*config, error) {
	c := &config{perm: 0o600}
	for _, o := range opts {
		if Option(o) == nil {
			continue
		}
		if err := o.apply(c); err != nil {
			return nil, err
		}
	}
	switch {
	case c.readOnly && c.writeOnly:
		return nil, fmt.Errorf("%w: ReadOnly and WriteOnly together; omit both for read-write", ErrInvalidOption)
	case c.exclusive && !c.create:
		return nil, fmt.Errorf("%w: Exclusive needs Create(perm)", ErrInvalidOption)
	case (c.maxMsgs != 0 || c.msgSize != 0) && !c.create:
		return nil, fmt.Errorf("%w: MaxMessages and MessageSize apply when creating a queue; add Create(perm)", ErrInvalidOption)
	case c.onDecodeError != nil && c.deadLetter != nil:
		return nil, fmt.Errorf("%w: OnDecodeError and DeadLetter together; choose one way to handle a message that fails to decode", ErrInvalidOption)
	}
	return c, nil
}

// attrMismatch returns an error matching ErrAttrMismatch when c asked for
// a capacity or message size that the opened queue, with maxMsgs and
// msgSize, does not have: the queue existed already (mq_open ignores the
// sizes of an existing queue), or nil.
func (c *config) attrMismatch(maxMsgs, msgSize int) error {
	var asked []string
	if c.maxMsgs != 0 && c.maxMsgs != maxMsgs {
		asked = append(asked, fmt.Sprintf("MaxMessages(%d)", c.maxMsgs))
	}
	if c.msgSize != 0 && c.msgSize != msgSize {
		asked = append(asked, fmt.Sprintf("MessageSize(%d)", c.msgSize))
	}
	if asked == nil {
		return nil
	}
	return fmt.Errorf("%w: MaxMessages %d and MessageSize %d, not the %s asked "+
		"(a queue keeps its sizes for its life): open it without MaxMessages and MessageSize to use it as it is, "+
		"or Unlink it (`chanmq rm`) and create it again", ErrAttrMismatch, maxMsgs, msgSize, strings.Join(asked, " and "))
}

// flags returns the mq_open flags for c. Every descriptor is close-on-exec
// and nonblocking (waiting happens on the runtime's netpoller instead).
func (c *config) flags() int {
	f := oRdwr
	switch {
	case c.readOnly:
		f = oRdonly
	case c.writeOnly:
		f = oWronly
	}
	if c.create {
		f |= oCreat
	}
	if c.exclusive {
		f |= oExcl
	}
	return f | oNonblock | oCloexec
}

// Create makes Open create the queue when it does not exist, with the
// permission bits perm (0600 is a good default: owner only). The process
// umask applies, as for files. perm must hold only permission bits.
func Create(perm fs.FileMode) OpenOption {
	return openOpt{func(c *config) error {
		if perm&^fs.ModePerm != 0 {
			return fmt.Errorf("%w: Create(%v): only permission bits (0 to 0777) are allowed", ErrInvalidOption, perm)
		}
		c.create, c.perm = true, perm
		return nil
	}}
}

// Exclusive makes Open fail with an error matching fs.ErrExist when the
// queue already exists. It needs Create.
func Exclusive() OpenOption {
	return openOpt{func(c *config) error { c.exclusive = true; return nil }}
}

// MaxMessages sets the capacity of a queue that Open creates. Without
// CAP_SYS_RESOURCE the kernel caps it at /proc/sys/fs/mqueue/msg_max (10
// by default). It needs Create. When the queue already exists, Open checks
// it instead: a queue of another capacity is refused with an error
// matching ErrAttrMismatch (the kernel keeps a queue's sizes for its life).
//
// A queue counts MaxMessages × (MessageSize + 96) bytes against its
// owner's RLIMIT_MSGQUEUE (on 64-bit Linux, up to 32768 messages), which is
// 819200 bytes by default: 9 queues of the default 10 × 8192, or 232 of
// 10 × 256. See CreateTemp.
func MaxMessages(n int) OpenOption {
	return openOpt{func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: MaxMessages(%d): must be at least 1", ErrInvalidOption, n)
		}
		c.maxMsgs = n
		return nil
	}}
}

// MessageSize sets the largest message, in bytes, of a queue that Open
// creates. Without CAP_SYS_RESOURCE the kernel caps it at
// /proc/sys/fs/mqueue/msgsize_max (8192 by default). It needs Create.
// When the queue already exists, Open checks it instead: a queue of
// another message size is refused with an error matching ErrAttrMismatch.
// See MaxMessages for what a queue's size costs.
func MessageSize(n int) OpenOption {
	return openOpt{func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: MessageSize(%d): must be at least 1", ErrInvalidOption, n)
		}
		c.msgSize = n
		return nil
	}}
}

// ReadOnly opens the queue for receiving only; Send then fails with ErrReadOnly.
func ReadOnly() OpenOption {
	return openOpt{func(c *config) error { c.readOnly = true; return nil }}
}

// WriteOnly opens the queue for sending only; Receive then fails with ErrWriteOnly.
func WriteOnly() OpenOption {
	return openOpt{func(c *config) error { c.writeOnly = true; return nil }}
}

// Buffer lets a pump run ahead of the program by n messages (default 0).
//
// On a receiver it is a read-ahead: the pump takes up to n messages out of
// the kernel queue beyond the one it offers on C, so that the next value
// is ready while the program works. C itself stays unbuffered (cap(rx.C)
// is 0): a value counts as delivered only when a receive from C took it,
// and a pump that stops gives back, exactly, every message it read ahead.
// Those messages wait in this process for the program, not in the kernel
// queue for any receiver: a worker that reads ahead takes them from its
// competitors, and a process that exits without stopping its pump (or
// crashes) loses them. With Buffer(0) it holds only the one it offers.
//
// On a sender it is the capacity of C: a send on C returns once the value
// is in C's buffer, before it is queued. With Buffer(0) a send on C
// returns when the pump has taken the value to queue it.
func Buffer(n int) PumpOption {
	return pumpOpt{func(c *config) error {
		if n < 0 {
			return fmt.Errorf("%w: Buffer(%d): must be 0 or more", ErrInvalidOption, n)
		}
		c.buffer = n
		return nil
	}}
}

// Priority sets the priority (0 to MaxPriority) with which a Sender queues
// its messages (default 0). A MessageSender takes each message's own
// priority instead.
func Priority(p uint) SenderOption {
	return senderOpt{func(c *config) error {
		if p > MaxPriority {
			return fmt.Errorf("%w: Priority(%d): %w (0 to %d)", ErrInvalidOption, p, ErrPriority, MaxPriority)
		}
		c.priority = p
		return nil
	}}
}

// EndOfStream carries close(C) across processes. On a Sender it makes
// closing C queue an end-of-stream marker after the last message; on a
// Receiver it makes the marker end the pump: C is closed, as if the
// sending side had closed its channel in this process, and Err is nil.
//
// The marker is a zero-length message at priority 0, so every message
// queued before it is received before it. A Sender with EndOfStream
// refuses zero-length messages (ErrEmptyMessage) so that no message can be
// taken for the marker; JSON never encodes to zero bytes.
//
// A Receiver that meets the marker first hands out every value it read
// ahead of it, then looks behind it without waiting: values there were put
// back by a receiver that stopped before the end (its Close puts them back
// behind the marker) and are still part of the stream, so it hands them
// out too. Only then does it put the marker back and end, so that every
// other receiver of the queue (N worker processes) ends too. A receiver
// that stops before the end gives back the marker with the values it read
// ahead, the marker last. What each case leaves:
//   - A worker stops while others run: its values go back into the queue,
//     and a running worker takes them, before or after the marker.
//   - Every worker stops (or the last one ends while another's Close is
//     still putting values back): the values stay queued, behind or ahead
//     of the marker, for the next receiver of the queue, which takes them
//     and then ends at the marker.
//
// The marker stays, like a closed channel: the queue stays closed for
// later receivers until someone takes the marker with a plain Receive (or
// unlinks the queue). So make a fresh queue per stream: create it with
// Create and Exclusive, and remove it when the stream's workers are done.
// A producer that finds an earlier stream's queue then fails at once
// (fs.ErrExist, saying that the queue may hold a stale marker and what to
// do) instead of starting a stream its receivers would end at once.
//
// Putting the marker back is a send, so a Receiver with EndOfStream on a
// queue opened ReadOnly is refused at start (Err matches ErrInvalidOption
// and ErrReadOnly) instead of taking the marker from the others. Receive,
// All and other plain receives do not know the marker: they take it like
// any message (a JSON QueueOf reports it as a *DecodeError with no Data,
// whose text says it is the marker). A C peer sees an empty message: end
// of stream.
func EndOfStream() PumpOption {
	return pumpOpt{func(c *config) error { c.endOfStream = true; return nil }}
}

// OnDecodeError makes a typed receive pump (Of, OpenReceiverOf) call f
// with each message that fails to decode, in the pump's goroutine, and go
// on with the next message. The message has left the kernel queue: f gets
// its bytes and priority and decides what to do with them. Without this
// option (or DeadLetter) the pump stops with the *DecodeError as its Err.
// A []byte or Message receiver never fails to decode.
func OnDecodeError(f func(*DecodeError)) ReceiverOption {
	return receiverOpt{func(c *config) error {
		if f == nil {
			return fmt.Errorf("%w: OnDecodeError(nil): give a func", ErrInvalidOption)
		}
		c.onDecodeError = f
		return nil
	}}
}

// DeadLetter makes a typed receive pump send each message that fails to
// decode, unchanged (bytes and priority), to dlq, and go on with the next.
// The send waits while dlq is full; if it fails (the pump's context ends,
// dlq is closed) the pump stops with a *DecodeError holding the message.
// dlq must be open for sending and must not be the queue the pump
// receives from, by any handle: a second Open of the same name is the same
// kernel queue, and a pump given it is refused at start with
// ErrInvalidOption (a bad message would otherwise go round for ever).
func DeadLetter(dlq *Queue) ReceiverOption {
	return receiverOpt{func(c *config) error {
		if dlq == nil {
			return fmt.Errorf("%w: DeadLetter(nil): give an open Queue", ErrInvalidOption)
		}
		if !dlq.canSend {
			return fmt.Errorf("%w: DeadLetter(%s): %w", ErrInvalidOption, dlq.name, dlq.cannot(ErrReadOnly))
		}
		c.deadLetter = dlq
		return nil
	}}
}
