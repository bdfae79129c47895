package chanmq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Queue is an open POSIX message queue. It is safe for concurrent use by
// many goroutines: each Send, Receive and their variants may carry its own
// context, and one caller's cancellation never ends another caller's wait.
//
// Blocking calls wait on the Go runtime's netpoller, so a blocked Receive
// holds no OS thread.
type Queue struct {
	name    string
	fd      int // the descriptor; used directly only while life is read-locked
	file    *os.File
	raw     syscall.RawConn
	maxMsgs int // capacity, read at open
	msgSize int // largest message, read at open
	canRecv bool
	canSend bool

	// polled is false only in the fallback mode for a descriptor the
	// netpoller cannot watch; tryTimeout is then a past timeout that makes
	// the (blocking) descriptor's calls return at once.
	polled     bool
	tryTimeout *timespec

	// life is read-locked by every direct syscall on fd and write-locked by
	// Close, so fd is never closed (and its number reused) under a syscall.
	life   sync.RWMutex
	closed atomic.Bool
	done   chan struct{} // closed when Close begins

	closeOnce sync.Once

	rx, tx *waiter

	bufs    sync.Pool // *[]byte of msgSize, scratch space for Receive
	pending pendingList

	pumpMu sync.Mutex     // orders pump registration against Close
	pumps  sync.WaitGroup // running pumps; Close waits for them
}

// Attr describes a queue: its capacity, its largest message and how many
// messages it holds now.
type Attr struct {
	MaxMessages int // capacity in messages (mq_maxmsg)
	MessageSize int // largest message in bytes (mq_msgsize)
	Messages    int // messages queued in the kernel now (mq_curmsgs)
}

// Open opens the queue called name, which looks like "/jobs". With
// Create(perm) it creates the queue when it is missing. The descriptor is
// close-on-exec.
//
// A missing queue gives an error matching fs.ErrNotExist; with Exclusive
// an existing one matches fs.ErrExist; a queue this user may not open
// matches fs.ErrPermission. Kernel limits (msg_max, msgsize_max,
// queues_max, RLIMIT_MSGQUEUE) give an error matching ErrLimit that names
// the limit, its value and how to raise it.
func Open(name string, opts ...Option) (*Queue, error) {
	if err := validateName(name); err != nil {
		return nil, opError("open", name, err)
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, opError("open", name, err)
	}
	return openWith(name, c)
}

// openWith opens name as c says; name is valid.
func openWith(name string, c *config) (*Queue, error) {
	var attr *mqAttr
	if c.create && (c.maxMsgs != 0 || c.msgSize != 0) {
		maxMsgs, msgSize := defaultAttr()
		if c.maxMsgs != 0 {
			maxMsgs = c.maxMsgs
		}
		if c.msgSize != 0 {
			msgSize = c.msgSize
		}
		attr = &mqAttr{maxMsg: maxMsgs, msgSize: msgSize}
	}
	fd, err := sysOpen(name, c.flags(), uint32(c.perm), attr)
	if err != nil {
		return nil, opError("open", name, explainErrno("open", name, err, c))
	}
	q, err := newQueue(fd, name, c.flags()&(oRdonly|oWronly|oRdwr))
	if err != nil {
		return nil, opError("open", name, err)
	}
	return q, nil
}

// CreateTemp creates a new queue with a unique name that starts with prefix
// ("/myapp-" gives "/myapp-1b2c3d..."), like os.CreateTemp. The queue is
// created exclusively with mode 0600 unless opts say otherwise; the caller
// should Unlink it (q.Name()) when done.
func CreateTemp(prefix string, opts ...Option) (*Queue, error) {
	if prefix == "" {
		prefix = "/chanmq-"
	}
	if !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	all := append([]Option{Create(0o600)}, opts...)
	all = append(all, Exclusive())
	var err error
	for range 100 {
		name := fmt.Sprintf("%s%016x", prefix, rand.Uint64())
		var q *Queue
		q, err = Open(name, all...)
		if !errors.Is(err, os.ErrExist) {
			return q, err
		}
	}
	return nil, err
}

// NewQueue adopts an mq descriptor that someone else opened, such as one
// inherited from a parent process or passed by systemd's
// ListenMessageQueue=. The Queue works on a duplicate of f's descriptor, so
// closing one does not affect the other; the caller should close f.
//
// NewQueue sets O_NONBLOCK on the open file description, which f's
// descriptor and any other duplicate share. If f is not a message queue,
// NewQueue fails and says so.
func NewQueue(f *os.File) (*Queue, error) {
	if f == nil {
		return nil, opError("adopt", "", fmt.Errorf("nil *os.File: %w", os.ErrInvalid))
	}
	name := f.Name()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, opError("adopt", name, err)
	}
	fd, dupErr := -1, error(nil)
	if err := rc.Control(func(orig uintptr) { fd, dupErr = sysDup(int(orig)) }); err != nil {
		return nil, opError("adopt", name, err)
	}
	if dupErr != nil {
		return nil, opError("adopt", name, explainErrno("adopt", name, dupErr, nil))
	}
	mode, err := sysAccessMode(fd)
	if err != nil {
		_ = sysClose(fd)
		return nil, opError("adopt", name, explainErrno("adopt", name, err, nil))
	}
	if n := sysFdName(fd); n != "" {
		name = n
	}
	q, err := newQueue(fd, name, mode)
	if err != nil {
		return nil, opError("adopt", name, err)
	}
	return q, nil
}

// forceFallback makes newQueue use the blocking fallback wait; tests set it.
var forceFallback atomic.Bool

// newQueue wraps an open mq descriptor. It closes fd on failure.
func newQueue(fd int, name string, accessMode int) (*Queue, error) {
	attr, err := sysGetAttr(fd)
	if err != nil {
		_ = sysClose(fd)
		return nil, fmt.Errorf("not a POSIX message queue descriptor: %w", explainErrno("attr", name, err, nil))
	}
	// Nonblocking first: os.NewFile registers a nonblocking descriptor with
	// the netpoller, which is what lets goroutines wait without a thread.
	if attr.flags&oNonblock == 0 {
		if err := sysSetFlags(fd, oNonblock); err != nil {
			_ = sysClose(fd)
			return nil, explainErrno("attr", name, err, nil)
		}
	}
	file := os.NewFile(uintptr(fd), name)
	// SyscallConn gives the parking Read/Write; never call file.Fd(), which
	// would make the descriptor blocking again and stop Close waking waiters.
	raw, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		return nil, err
	}
	q := &Queue{
		name:    name,
		fd:      fd,
		file:    file,
		raw:     raw,
		maxMsgs: attr.maxMsg,
		msgSize: attr.msgSize,
		canRecv: accessMode != oWronly,
		canSend: accessMode != oRdonly,
		polled:  true,
		done:    make(chan struct{}),
	}
	// A descriptor the netpoller refused has no deadlines: fall back to
	// bounded blocking calls on a blocking descriptor.
	if errors.Is(file.SetReadDeadline(time.Time{}), os.ErrNoDeadline) || forceFallback.Load() {
		if err := sysSetFlags(fd, 0); err != nil {
			_ = file.Close()
			return nil, explainErrno("attr", name, err, nil)
		}
		q.polled, q.tryTimeout = false, &timespec{}
	}
	size := q.msgSize
	q.bufs.New = func() any { b := make([]byte, size); return &b }
	q.rx, q.tx = newWaiter(q, true), newWaiter(q, false)
	return q, nil
}

// Name returns the queue's name, such as "/jobs".
func (q *Queue) Name() string { return q.name }

// Cap returns the queue's capacity in messages, read when it was opened.
func (q *Queue) Cap() int { return q.maxMsgs }

// MessageSize returns the largest message the queue takes, in bytes, read
// when it was opened. ReceiveInto needs a buffer at least this long.
func (q *Queue) MessageSize() int { return q.msgSize }

// Len returns how many messages the kernel queue holds now, or 0 if that
// cannot be read (for example after Close).
func (q *Queue) Len() int {
	a, err := q.Attr()
	if err != nil {
		return 0
	}
	return a.Messages
}

// Attr reads the queue's attributes; Messages is the current count in the
// kernel (messages a pump holds for the next Receive are not counted).
func (q *Queue) Attr() (Attr, error) {
	if !q.acquireFD() {
		return Attr{}, opError("attr", q.name, ErrClosed)
	}
	a, err := sysGetAttr(q.fd)
	q.releaseFD()
	if err != nil {
		return Attr{}, opError("attr", q.name, explainErrno("attr", q.name, err, nil))
	}
	return Attr{MaxMessages: a.maxMsg, MessageSize: a.msgSize, Messages: a.curMsgs}, nil
}

// acquireFD read-locks the descriptor for a direct syscall; it reports
// false (and holds nothing) once the Queue is closing.
func (q *Queue) acquireFD() bool {
	q.life.RLock()
	if q.closed.Load() {
		q.life.RUnlock()
		return false
	}
	return true
}

func (q *Queue) releaseFD() { q.life.RUnlock() }

// Send queues msg with the given priority (0 to MaxPriority; higher is
// received first). While the queue is full it waits until there is room,
// ctx is done, or the Queue is closed. On cancellation the error matches
// ctx.Err() and msg was not queued. Send does not allocate.
func (q *Queue) Send(ctx context.Context, msg []byte, priority uint) error {
	if err := q.checkSend(msg, priority); err != nil {
		return err
	}
	err := q.trySend(msg, priority)
	if err == errAgain {
		err = q.spinSend(ctx, msg, priority)
	}
	if err == errAgain {
		_, _, err = q.tx.wait(ctx, msg, priority)
	}
	return q.sendError(msg, err)
}

// TrySend queues msg if there is room and fails with ErrFull if not, like a
// select with a default case. It never blocks and does not allocate.
func (q *Queue) TrySend(msg []byte, priority uint) error {
	if err := q.checkSend(msg, priority); err != nil {
		return err
	}
	err := q.trySend(msg, priority)
	if err == errAgain {
		err = ErrFull
	}
	return q.sendError(msg, err)
}

func (q *Queue) checkSend(msg []byte, priority uint) error {
	switch {
	case !q.canSend:
		return opError("send", q.name, ErrReadOnly)
	case len(msg) > q.msgSize:
		return opError("send", q.name, fmt.Errorf("%w (%d > %d bytes)", ErrMessageTooLarge, len(msg), q.msgSize))
	case priority > MaxPriority:
		return opError("send", q.name, fmt.Errorf("%w: %d (0 to %d)", ErrPriority, priority, MaxPriority))
	}
	return nil
}

func (q *Queue) trySend(msg []byte, priority uint) error {
	if !q.acquireFD() {
		return ErrClosed
	}
	err := sysTrySend(q.fd, msg, priority, q.tryTimeout)
	q.releaseFD()
	if err == errTimedOut {
		return errAgain
	}
	return err
}

func (q *Queue) sendError(msg []byte, err error) error {
	if err == nil {
		return nil
	}
	if err == errMsgSize {
		err = fmt.Errorf("%w (%d > %d bytes)", ErrMessageTooLarge, len(msg), q.msgSize)
	}
	return opError("send", q.name, explainErrno("send", q.name, err, nil))
}

// Receive takes the next message: the highest priority first, FIFO within
// a priority. While the queue is empty it waits until a message arrives,
// ctx is done, or the Queue is closed. The returned slice is new and
// exactly the message's length. On cancellation the error matches
// ctx.Err() and no message was taken: nothing is lost.
//
// Messages that a stopped receive pump of this Queue was holding come
// first, in the order the pump took them.
func (q *Queue) Receive(ctx context.Context) (msg []byte, priority uint, err error) {
	if err := q.checkReceive(); err != nil {
		return nil, 0, err
	}
	if m, ok := q.pending.pop(); ok {
		return m.Data, m.Priority, nil
	}
	bp := q.bufs.Get().(*[]byte)
	n, prio, err := q.tryReceive(*bp)
	if err == errAgain {
		n, prio, err = q.spinReceive(ctx, *bp)
	}
	if err == errAgain {
		n, prio, err = q.rx.wait(ctx, *bp, 0)
	}
	if err != nil {
		q.bufs.Put(bp)
		return nil, 0, q.receiveError(err)
	}
	msg = make([]byte, n)
	copy(msg, (*bp)[:n])
	q.bufs.Put(bp)
	return msg, prio, nil
}

// ReceiveInto is Receive into buf, which must be at least MessageSize bytes
// long (else ErrBufferTooSmall and the message stays queued). It returns
// the message's length and does not allocate.
func (q *Queue) ReceiveInto(ctx context.Context, buf []byte) (n int, priority uint, err error) {
	if err := q.checkReceiveInto(buf); err != nil {
		return 0, 0, err
	}
	if m, ok := q.pending.pop(); ok {
		return copy(buf, m.Data), m.Priority, nil
	}
	n, priority, err = q.tryReceive(buf)
	if err == errAgain {
		n, priority, err = q.spinReceive(ctx, buf)
	}
	if err == errAgain {
		n, priority, err = q.rx.wait(ctx, buf, 0)
	}
	if err != nil {
		return 0, 0, q.receiveError(err)
	}
	return n, priority, nil
}

// TryReceive takes the next message if there is one and fails with ErrEmpty
// if not, like a select with a default case. It never blocks; it allocates
// only the message it returns.
func (q *Queue) TryReceive() (msg []byte, priority uint, err error) {
	if err := q.checkReceive(); err != nil {
		return nil, 0, err
	}
	if m, ok := q.pending.pop(); ok {
		return m.Data, m.Priority, nil
	}
	bp := q.bufs.Get().(*[]byte)
	n, prio, err := q.tryReceive(*bp)
	if err != nil {
		q.bufs.Put(bp)
		if err == errAgain {
			err = ErrEmpty
		}
		return nil, 0, q.receiveError(err)
	}
	msg = make([]byte, n)
	copy(msg, (*bp)[:n])
	q.bufs.Put(bp)
	return msg, prio, nil
}

// TryReceiveInto is TryReceive into buf, with ReceiveInto's rules for buf.
// It never blocks and does not allocate.
func (q *Queue) TryReceiveInto(buf []byte) (n int, priority uint, err error) {
	if err := q.checkReceiveInto(buf); err != nil {
		return 0, 0, err
	}
	if m, ok := q.pending.pop(); ok {
		return copy(buf, m.Data), m.Priority, nil
	}
	n, priority, err = q.tryReceive(buf)
	if err != nil {
		if err == errAgain {
			err = ErrEmpty
		}
		return 0, 0, q.receiveError(err)
	}
	return n, priority, nil
}

func (q *Queue) checkReceive() error {
	if !q.canRecv {
		return opError("receive", q.name, ErrWriteOnly)
	}
	if q.closed.Load() {
		return opError("receive", q.name, ErrClosed)
	}
	return nil
}

func (q *Queue) checkReceiveInto(buf []byte) error {
	if err := q.checkReceive(); err != nil {
		return err
	}
	if len(buf) < q.msgSize {
		return opError("receive", q.name, fmt.Errorf("%w: %d bytes, the queue's MessageSize is %d (use a buffer of q.MessageSize() bytes)", ErrBufferTooSmall, len(buf), q.msgSize))
	}
	return nil
}

func (q *Queue) tryReceive(buf []byte) (int, uint, error) {
	if !q.acquireFD() {
		return 0, 0, ErrClosed
	}
	n, prio, err := sysTryReceive(q.fd, buf, q.tryTimeout)
	q.releaseFD()
	if err == errTimedOut {
		err = errAgain
	}
	return n, prio, err
}

func (q *Queue) receiveError(err error) error {
	if err == errMsgSize {
		err = fmt.Errorf("%w: the queue's MessageSize is %d", ErrBufferTooSmall, q.msgSize)
	}
	return opError("receive", q.name, explainErrno("receive", q.name, err, nil))
}

// Close closes the Queue; the kernel queue itself lives on until Unlink.
// Every blocked call on this Queue returns ErrClosed, and so do later
// calls. Close waits for the Queue's pumps to stop, then puts the messages
// they were holding back into the kernel queue; any it cannot put back are
// returned inside an *UndeliveredError, bytes included. Close is safe to
// call at any time and more than once; calls after the first return nil.
func (q *Queue) Close() error {
	var err error
	q.closeOnce.Do(func() { err = q.close() })
	return err
}

func (q *Queue) close() error {
	q.pumpMu.Lock()
	q.closed.Store(true)
	q.pumpMu.Unlock()
	close(q.done)
	// Wake parked waiters without closing the descriptor: pumps still
	// need it to put back what they hold.
	q.rx.interrupt()
	q.tx.interrupt()
	q.pumps.Wait()

	q.life.Lock() // no direct syscall is in flight from here on
	defer q.life.Unlock()
	var errs []error
	if left := q.putBack(); left != nil {
		errs = append(errs, left)
	}
	if err := q.file.Close(); err != nil {
		errs = append(errs, err)
	}
	return opError("close", q.name, errors.Join(errs...))
}

// putBack returns the pending messages to the kernel queue, in order, and
// reports those that did not fit.
func (q *Queue) putBack() error {
	msgs := q.pending.takeAll()
	var left []Message
	var why error
	for i, m := range msgs {
		err := sysTrySend(q.fd, m.Data, m.Priority, q.tryTimeout)
		if err == nil {
			continue
		}
		switch {
		case err == errAgain || err == errTimedOut:
			why = fmt.Errorf("putting messages back: %w", ErrFull)
		case !q.canSend:
			why = fmt.Errorf("putting messages back: %w (open the queue read-write to let Close put them back)", ErrReadOnly)
		default:
			why = fmt.Errorf("putting messages back: %w", explainErrno("send", q.name, err, nil))
		}
		left = append(left, msgs[i])
	}
	if left == nil {
		return nil
	}
	return &UndeliveredError{Messages: left, Err: why}
}

// Unlink removes the queue called name. Processes that have it open keep
// using it; it is freed when the last one closes it. A missing queue gives
// an error matching fs.ErrNotExist.
func Unlink(name string) error {
	if err := validateName(name); err != nil {
		return opError("unlink", name, err)
	}
	if err := sysUnlink(name); err != nil {
		return opError("unlink", name, explainErrno("unlink", name, err, nil))
	}
	return nil
}
