package chanmq

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"runtime"
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
	maxMsgs int // capacity, read at open
	msgSize int // largest message, read at open
	canRecv bool
	canSend bool

	// poll is nil until a caller first has to wait (register). Until then
	// fd is not in the netpoller's epoll set, so a queue that never waits
	// pays nothing for it: once registered, every message queued can wake
	// a runtime thread sleeping in epoll_pwait (see register).
	poll atomic.Pointer[poller]

	// owned is set once fd is no longer this Queue's to close on garbage
	// collection: the poller's file owns it, or Close closed it. A Queue
	// dropped unclosed before that has its fd closed by a cleanup, as the
	// file would close it after.
	owned *atomic.Bool

	// fallback makes register choose the blocking fallback wait; it is
	// forceFallback as it was at open (tests set it).
	fallback bool

	// tryTimeout is nil, or in the fallback mode a past timeout that makes
	// the (then blocking) descriptor's calls return at once. register
	// writes it with life write-locked; readers hold life.
	tryTimeout *timespec

	// life is read-locked by every direct syscall on fd and write-locked by
	// Close (and by register), so fd is never closed (and its number
	// reused) under a syscall.
	life   sync.RWMutex
	closed atomic.Bool
	done   chan struct{} // closed when Close begins

	closeOnce sync.Once

	rx, tx *waiter

	bufs  sync.Pool // *[]byte of msgSize, scratch space for Receive
	held  holder    // messages stopped pumps held (held.go)
	pumps pumpSet   // the running pumps, which Close waits for (pumps.go)
}

// poller is the os.File that registers a Queue's descriptor with the
// netpoller, made by register the first time a caller must wait. Both
// directions share it; it owns the descriptor from then on.
type poller struct {
	file   *os.File
	raw    syscall.RawConn
	polled bool  // false: the netpoller refused fd; wait with blocking calls
	err    error // why the fallback could not be set up; every wait fails with it
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
// an existing one matches fs.ErrExist; with MaxMessages or MessageSize, an
// existing one of other sizes matches ErrAttrMismatch; a queue this user
// may not open matches fs.ErrPermission. Kernel limits (msg_max, msgsize_max,
// queues_max, RLIMIT_MSGQUEUE) give an error matching ErrLimit that names
// the limit, its value and how to raise it.
func Open(name string, opts ...OpenOption) (*Queue, error) {
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
		return nil, failure("open", name, err, c)
	}
	q, err := newQueue(fd, name, c.flags()&(oRdonly|oWronly|oRdwr))
	if err != nil {
		return nil, opError("open", name, err)
	}
	// A queue that existed keeps its sizes whatever c asked: refuse it
	// rather than hand back a queue of other sizes without a word.
	if err := c.attrMismatch(q.maxMsgs, q.msgSize); err != nil {
		_ = q.Close()
		return nil, opError("open", name, err)
	}
	return q, nil
}

// CreateTemp creates a new queue with a unique name that starts with prefix
// ("/myapp-" gives "/myapp-1b2c3d..."), like os.CreateTemp; "" means
// "/chanmq-". The prefix starts with "/", as every queue name does (Open's
// rule: "myapp-" is refused with ErrInvalidName). The queue is created
// exclusively with mode 0600 unless opts say otherwise; the caller should
// Unlink it (q.Name()) when done.
//
// Every queue counts against its owner's RLIMIT_MSGQUEUE (819200 bytes by
// default, shared by all of the user's queues) from its creation until it
// is unlinked and closed: MaxMessages × (MessageSize + 96) bytes on 64-bit
// Linux (up to 32768 messages). A queue of the default 10 × 8192 takes
// 82880 bytes, so a user has room for 9 of them; for many small queues
// (one per client of a request/reply server, say) ask for small messages:
// MaxMessages(10), MessageSize(256) takes 3520 bytes, and 232 fit. Past
// the limit, CreateTemp fails with an error matching ErrLimit.
func CreateTemp(prefix string, opts ...OpenOption) (*Queue, error) {
	if prefix == "" {
		prefix = "/chanmq-"
	}
	if prefix[0] != '/' {
		return nil, opError("open", prefix, validateName(prefix))
	}
	all := append([]OpenOption{Create(0o600)}, opts...)
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
		return nil, failure("adopt", name, dupErr, nil)
	}
	mode, err := sysAccessMode(fd)
	if err != nil {
		_ = sysClose(fd)
		return nil, failure("adopt", name, err, nil)
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

// forceFallback makes register use the blocking fallback wait for queues
// opened while it is set; tests set it.
var forceFallback atomic.Bool

// newQueue adopts an open mq descriptor. It closes fd on failure. The
// descriptor is made nonblocking, so that the fast path never blocks and
// so that register can later hand it to the netpoller.
func newQueue(fd int, name string, accessMode int) (*Queue, error) {
	attr, err := sysGetAttr(fd)
	if err != nil {
		_ = sysClose(fd)
		// The descriptor is open (the caller just opened or duplicated
		// it): mq_getsetattr refuses it because it is another kind of file.
		return nil, fmt.Errorf("the descriptor is open but is not a POSIX message queue (mq_getsetattr: %w); pass one that mq_open returned", err)
	}
	if attr.flags&oNonblock == 0 {
		if err := sysSetFlags(fd, oNonblock); err != nil {
			_ = sysClose(fd)
			return nil, explainErrno("attr", name, err, nil)
		}
	}
	q := &Queue{
		name:     name,
		fd:       fd,
		maxMsgs:  attr.maxMsg,
		msgSize:  attr.msgSize,
		canRecv:  accessMode != oWronly,
		canSend:  accessMode != oRdonly,
		fallback: forceFallback.Load(),
		done:     make(chan struct{}),
		owned:    new(atomic.Bool),
	}
	runtime.AddCleanup(q, func(owned *atomic.Bool) {
		if !owned.Load() {
			_ = sysClose(fd)
		}
	}, q.owned)
	size := q.msgSize
	q.bufs.New = func() any { b := make([]byte, size); return &b }
	q.rx, q.tx = newWaiter(q, true, q.held.has), newWaiter(q, false, nil)
	return q, nil
}

// register returns the Queue's poller, making it the first time a caller
// must wait: os.NewFile registers the nonblocking descriptor with the
// netpoller (epoll, edge-triggered), and the file's RawConn and deadlines
// are how waiters park and are woken. It is lazy because registration
// costs the fast path: the kernel signals the queue's wait queue on every
// message queued, and each signal wakes a runtime thread that sleeps in
// epoll_pwait (there is one whenever the process has a timer pending or a
// goroutine parked on any file). A Queue that never waits never pays.
//
// It fails with ErrClosed once Close has begun, so Close, which wakes
// waiters through the poller it finds, never misses one.
func (q *Queue) register() (*poller, error) {
	if p := q.poll.Load(); p != nil {
		return p, p.err
	}
	q.life.Lock() // no direct syscall in flight while the mode may change
	defer q.life.Unlock()
	if p := q.poll.Load(); p != nil {
		return p, p.err
	}
	if q.closed.Load() {
		return nil, ErrClosed
	}
	// The file owns fd from here on (and would close it if dropped), so
	// it is stored whatever happens next. Never call file.Fd(), which
	// would make the descriptor blocking and stop Close waking waiters.
	file := os.NewFile(uintptr(q.fd), q.name)
	p := &poller{file: file, polled: true}
	raw, err := file.SyscallConn()
	p.raw = raw
	// A descriptor the netpoller refused has no deadlines: fall back to
	// bounded blocking calls on a blocking descriptor.
	if err != nil || q.fallback || errors.Is(file.SetReadDeadline(time.Time{}), os.ErrNoDeadline) {
		p.polled = false
		if err := sysSetFlags(q.fd, 0); err != nil {
			p.err = explainErrno("attr", q.name, err, nil)
		} else {
			q.tryTimeout = &timespec{}
		}
	}
	q.poll.Store(p)
	q.owned.Store(true)
	return p, p.err
}

// SameQueue reports whether q and o are handles on one kernel queue: two
// Opens of one name, or a Queue and a NewQueue of its descriptor, are; a
// queue unlinked and created again under the same name is another queue.
// A closed Queue is the same only as itself, and nil is no queue. A
// program that holds a queue open for long can tell with it whether the
// name still leads to that queue: Open the name again and compare.
//
// It compares the device and inode of the two descriptors (fstat), each
// read under its Queue's life lock, so Close cannot pull a descriptor from
// under it. It reads them when asked rather than at open, so that Open
// does not pay an fstat for a check few callers make.
func (q *Queue) SameQueue(o *Queue) bool {
	switch {
	case q == nil || o == nil:
		return false
	case q == o:
		return true
	}
	dq, iq, ok := q.identity()
	if !ok {
		return false
	}
	do, io, ok := o.identity()
	return ok && dq == do && iq == io
}

// identity returns the device and inode of q's kernel queue; ok is false
// once q is closing, or if fstat fails.
func (q *Queue) identity() (dev, ino uint64, ok bool) {
	if !q.opened() || !q.acquireFD() {
		return 0, 0, false
	}
	defer q.releaseFD()
	dev, ino, err := sysIdentity(q.fd)
	return dev, ino, err == nil
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
	if !q.opened() {
		return Attr{}, opError("attr", q.name, errNotOpen)
	}
	if !q.acquireFD() {
		return Attr{}, opError("attr", q.name, ErrClosed)
	}
	a, err := sysGetAttr(q.fd)
	q.releaseFD()
	if err != nil {
		return Attr{}, failure("attr", q.name, err, nil)
	}
	return Attr{MaxMessages: a.maxMsg, MessageSize: a.msgSize, Messages: a.curMsgs}, nil
}

// errNotOpen is what a Queue that Open, CreateTemp or NewQueue did not
// make (a zero Queue{}) reports from every method: it has no descriptor.
var errNotOpen = fmt.Errorf("%w: not an open Queue (a zero chanmq.Queue{}); get one from Open, CreateTemp or NewQueue", fs.ErrInvalid)

// opened reports whether newQueue made q; a zero Queue{} it did not.
func (q *Queue) opened() bool { return q.done != nil }

// cannot returns why q cannot send or receive: dirErr (ErrReadOnly or
// ErrWriteOnly) for an open Queue, errNotOpen for a zero one.
func (q *Queue) cannot(dirErr error) error {
	if !q.opened() {
		return errNotOpen
	}
	return dirErr
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

// Close closes the Queue; the kernel queue itself lives on until Unlink.
// Every blocked call on this Queue returns ErrClosed, and so do later
// calls. Close waits for the Queue's pumps to stop, then puts the messages
// they were holding back into the kernel queue; any it cannot put back are
// returned inside an *UndeliveredError, bytes included. Close is safe to
// call at any time and more than once; calls after the first return nil.
func (q *Queue) Close() error {
	if !q.opened() {
		return opError("close", q.name, errNotOpen)
	}
	var err error
	q.closeOnce.Do(func() { err = q.close() })
	return err
}

func (q *Queue) close() error {
	q.pumps.close(func() { q.closed.Store(true) })
	close(q.done)
	// Wake parked waiters without closing the descriptor: pumps still
	// need it to put back what they hold.
	q.rx.wake()
	q.tx.wake()
	q.pumps.wait()
	q.life.Lock() // no direct syscall (nor register) is in flight from here on
	err := q.putBack()
	q.life.Unlock()
	if q.pumps.closeDone() {
		err = errors.Join(err, q.finishClose())
	} // else a pump running the caller's code (which may be this very call) finishes the Close when it stops; see pumps.go
	return opError("close", q.name, err)
}

// finishClose puts back what is held and closes the descriptor; the last
// finisher of a Close calls it, once (see pumps.go).
func (q *Queue) finishClose() error {
	q.life.Lock()
	defer q.life.Unlock()
	err := q.putBack()
	// The descriptor is closed exactly once: by its file if a waiter
	// registered it, else directly.
	var cerr error
	if p := q.poll.Load(); p != nil {
		cerr = p.file.Close()
	} else {
		q.owned.Store(true)
		if e := sysClose(q.fd); e != nil {
			cerr = explainErrno("close", q.name, e, nil)
		}
	}
	return errors.Join(err, cerr)
}

// Unlink removes the queue called name. Processes that have it open keep
// using it; it is freed when the last one closes it. A missing queue gives
// an error matching fs.ErrNotExist.
func Unlink(name string) error {
	if err := validateName(name); err != nil {
		return opError("unlink", name, err)
	}
	return failure("unlink", name, sysUnlink(name), nil)
}
