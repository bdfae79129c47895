//go:build linux

package chanmq

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// This file feeds hostile input to the library: fuzzed names and
// messages, and every option, buffer and priority out of range. Bad input
// gets an error matching a sentinel, never a panic and never a syscall with
// bad arguments.

// ipcThread runs functions on one OS thread that has an IPC namespace of
// its own, so that FuzzName can create queues with arbitrary names without
// touching (or colliding with) the machine's queues. The Go runtime never
// clones new threads from a locked one, so the namespace stays on this
// thread.
type ipcThread struct {
	work chan func()
	done chan struct{}
}

// newIPCThread starts the thread, or returns nil when the kernel or our
// privileges do not allow a new IPC namespace.
func newIPCThread() *ipcThread {
	th := &ipcThread{work: make(chan func()), done: make(chan struct{})}
	ok := make(chan bool)
	go func() {
		defer close(th.done)
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWIPC); err != nil {
			ok <- false
			return
		}
		ok <- true
		for fn := range th.work {
			fn()
		}
	}()
	if !<-ok {
		<-th.done
		return nil
	}
	return th
}

// do runs fn on the thread, or on the caller's thread if th is nil.
func (th *ipcThread) do(fn func()) {
	if th == nil {
		fn()
		return
	}
	ran := make(chan struct{})
	th.work <- func() { defer close(ran); fn() }
	<-ran
}

func (th *ipcThread) stop() {
	if th != nil {
		close(th.work)
		<-th.done
	}
}

// noErrno reports whether err carries no errno, which means the library
// refused the request itself, before any syscall.
func noErrno(err error) bool {
	var errno unix.Errno
	return !errors.As(err, &errno)
}

// FuzzName checks validateName against the kernel. It never panics; a name
// it accepts is one the kernel takes (mq_open with O_CREAT does not fail
// with EINVAL or ENAMETOOLONG); a name it rejects gets ErrInvalidName from
// Open and Unlink without a syscall. Each queue created is unlinked at
// once, inside a private IPC namespace when one can be made.
func FuzzName(f *testing.F) {
	for _, s := range []string{"/jobs", "", "/", "jobs", "/a/b", "/.", "/..", "/...", "/a\x00b",
		"/" + strings.Repeat("n", maxNameLen), "/" + strings.Repeat("n", maxNameLen+1), "//", "/\xff\xfe", "/a b\n"} {
		f.Add(s)
	}
	th := newIPCThread()
	f.Cleanup(th.stop)
	if th == nil {
		f.Log("no private IPC namespace: names the library accepts are created in the machine's, exclusively, and unlinked at once")
	}
	f.Fuzz(func(t *testing.T, name string) {
		verr := validateName(name)
		if verr != nil {
			if !errors.Is(verr, ErrInvalidName) {
				t.Fatalf("validateName(%q) = %v, not ErrInvalidName", name, verr)
			}
			want := opError("open", name, verr).Error()
			_, err := Open(name, Create(0o600), MaxMessages(1), MessageSize(16))
			if !errors.Is(err, ErrInvalidName) || !noErrno(err) || err.Error() != want {
				t.Fatalf("Open(%q) = %v, want the validation error %q with no syscall", name, err, want)
			}
			if err := Unlink(name); !errors.Is(err, ErrInvalidName) || !noErrno(err) {
				t.Fatalf("Unlink(%q) = %v, want ErrInvalidName with no syscall", name, err)
			}
			return
		}
		var q *Queue
		var err, uerr error
		th.do(func() {
			q, err = Open(name, Create(0o600), Exclusive(), MaxMessages(1), MessageSize(16))
			if err == nil {
				uerr = Unlink(name)
			}
		})
		switch {
		case err == nil:
			_ = q.Close()
			if uerr != nil {
				t.Fatalf("Unlink(%q) of a queue just created: %v", name, uerr)
			}
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENAMETOOLONG), errors.Is(err, ErrInvalidName):
			t.Fatalf("validateName accepted %q but the kernel refused it: %v", name, err)
		case errors.Is(err, fs.ErrExist) && th == nil:
			t.Skipf("%q exists in the machine's namespace; not touching it", name)
		case errors.Is(err, ErrLimit):
			t.Skipf("kernel limit: %v", err)
		default:
			t.Fatalf("Open(%q, Create): %v", name, err)
		}
	})
}

// FuzzRoundTrip sends any bytes with any priority and checks they come back
// exactly, through the raw Queue (Send/Receive, TrySend/TryReceiveInto) and
// through pumps (MessageSender to Receive, Send to MessageReceiver), on a
// small queue (where the fuzzer reaches MessageSize) and on one of the
// largest size the kernel allows without privileges. A priority above
// MaxPriority or a message above MessageSize is refused with its sentinel
// and queues nothing.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), uint(0))
	f.Add([]byte{}, uint(MaxPriority))
	f.Add(bytes.Repeat([]byte{0xff}, 64), uint(1))
	f.Add([]byte("\x00\x00\x00"), uint(MaxPriority+1))
	f.Add(bytes.Repeat([]byte("ab"), 33), uint(math.MaxUint32))
	queues := []*Queue{newTestQueue(f, MaxMessages(2), MessageSize(64)), newTestQueue(f, MaxMessages(1), MessageSize(8192))}
	f.Fuzz(func(t *testing.T, data []byte, prio uint) {
		for _, q := range queues {
			roundTrip(t, q, data, prio)
			if n := q.Len(); n != 0 {
				t.Fatalf("%d messages left in the queue", n)
			}
		}
	})
}

func roundTrip(t *testing.T, q *Queue, data []byte, prio uint) {
	ctx := t.Context()
	if len(data) > q.MessageSize() {
		// Both the size and the priority may be wrong; either error will do.
		if err := q.Send(ctx, data, prio); !errors.Is(err, ErrMessageTooLarge) && !(prio > MaxPriority && errors.Is(err, ErrPriority)) {
			t.Fatalf("Send of %d bytes to a queue of %d: %v, want ErrMessageTooLarge", len(data), q.MessageSize(), err)
		}
		data = data[:q.MessageSize()]
	}
	if prio > MaxPriority {
		if err := q.Send(ctx, data, prio); !errors.Is(err, ErrPriority) {
			t.Fatalf("Send with priority %d: %v, want ErrPriority", prio, err)
		}
		if err := q.TrySend(data, prio); !errors.Is(err, ErrPriority) {
			t.Fatalf("TrySend with priority %d: %v, want ErrPriority", prio, err)
		}
		if err := closeAndWait(q.Sender(ctx, Priority(prio))); !errors.Is(err, ErrPriority) || !errors.Is(err, ErrInvalidOption) {
			t.Fatalf("Sender with Priority(%d): %v, want ErrInvalidOption and ErrPriority", prio, err)
		}
		s := q.MessageSender(ctx)
		s.C <- Message{Data: data, Priority: prio}
		close(s.C)
		var u *UnsentError[Message]
		if err := s.Wait(); !errors.As(err, &u) || !errors.Is(err, ErrPriority) || len(u.Values) != 1 || !bytes.Equal(u.Values[0].Data, data) {
			t.Fatalf("MessageSender with priority %d: %v, want the message back with ErrPriority", prio, err)
		}
		return
	}
	check := func(how string, got []byte, gotPrio uint) {
		t.Helper()
		if !bytes.Equal(got, data) || gotPrio != prio {
			t.Fatalf("%s: got %d bytes priority %d, want %d bytes priority %d\ngot  %x\nwant %x", how, len(got), gotPrio, len(data), prio, got, data)
		}
	}

	if err := q.Send(ctx, data, prio); err != nil {
		t.Fatal(err)
	}
	got, gotPrio, err := q.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("Send/Receive", got, gotPrio)

	if err := q.TrySend(data, prio); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, q.MessageSize())
	n, gotPrio, err := q.TryReceiveInto(buf)
	if err != nil {
		t.Fatal(err)
	}
	check("TrySend/TryReceiveInto", buf[:n], gotPrio)

	s := q.MessageSender(ctx)
	s.C <- Message{Data: data, Priority: prio}
	close(s.C)
	if err := s.Wait(); err != nil {
		t.Fatalf("MessageSender: %v", err)
	}
	got, gotPrio, err = q.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("MessageSender/Receive", got, gotPrio)

	if err := q.Send(ctx, data, prio); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	r := q.MessageReceiver(rctx)
	m := <-r.C
	cancel()
	for extra := range r.C {
		t.Fatalf("receiver delivered a message never sent: %x", extra.Data)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("MessageReceiver: %v", err)
	}
	check("Send/MessageReceiver", m.Data, m.Priority)
}

// TestHostileInputsFailCleanly passes every argument out of range to every
// entry point: each call fails with an error matching its sentinel, none
// panics, none reaches the kernel (no errno in the error, nothing created
// or queued).
func TestHostileInputsFailCleanly(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(4), MessageSize(32))
	ctx := t.Context()
	fresh := q.Name() + "-never-created"
	t.Cleanup(func() { _ = Unlink(fresh) })

	type call struct {
		name string
		err  error
	}
	var calls []call
	add := func(name string, err error) { calls = append(calls, call{name, err}) }
	sentinelOf := map[string]error{}
	expect := func(name string, sentinel error, err error) {
		add(name, err)
		sentinelOf[name] = sentinel
	}

	// Options out of range or in conflict.
	for _, c := range []struct {
		name string
		opts []OpenOption
	}{
		{"MaxMessages(0)", []OpenOption{Create(0o600), MaxMessages(0)}},
		{"MaxMessages(-1)", []OpenOption{Create(0o600), MaxMessages(-1)}},
		{"MaxMessages(MinInt)", []OpenOption{Create(0o600), MaxMessages(math.MinInt)}},
		{"MessageSize(0)", []OpenOption{Create(0o600), MessageSize(0)}},
		{"MessageSize(-8192)", []OpenOption{Create(0o600), MessageSize(-8192)}},
		{"Create(0o1600)", []OpenOption{Create(0o1600)}},
		{"Create(ModeDir|0600)", []OpenOption{Create(fs.ModeDir | 0o600)}},
		{"Create(ModeSetuid|0600)", []OpenOption{Create(fs.ModeSetuid | 0o600)}},
		{"ReadOnly+WriteOnly", []OpenOption{Create(0o600), ReadOnly(), WriteOnly()}},
		{"Exclusive without Create", []OpenOption{Exclusive()}},
		{"MaxMessages without Create", []OpenOption{MaxMessages(1)}},
	} {
		_, err := Open(fresh, c.opts...)
		expect("Open "+c.name, ErrInvalidOption, err)
		_, err = OpenReceiver(ctx, fresh, asOptions[OpenReceiverOption](c.opts)...)
		expect("OpenReceiver "+c.name, ErrInvalidOption, err)
		_, err = OpenSender(ctx, fresh, asOptions[OpenSenderOption](c.opts)...)
		expect("OpenSender "+c.name, ErrInvalidOption, err)
	}
	if _, err := Open(fresh); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused Open created the queue, or it exists: %v", err)
	}

	// Pump options out of range, or Open options given to a pump.
	expect("Receiver(Buffer(-1))", ErrInvalidOption, q.Receiver(ctx, Buffer(-1)).Err())
	expect("MessageReceiver(Buffer(MinInt))", ErrInvalidOption, q.MessageReceiver(ctx, Buffer(math.MinInt)).Err())
	expect("Sender(Buffer(-1))", ErrInvalidOption, closeAndWait(q.Sender(ctx, Buffer(-1))))
	expect("Sender(Priority(32768))", ErrPriority, closeAndWait(q.Sender(ctx, Priority(MaxPriority+1))))
	expect("Sender(Priority(MaxUint))", ErrPriority, closeAndWait(q.Sender(ctx, Priority(math.MaxUint))))
	expect("Receiver(OnDecodeError+DeadLetter)", ErrInvalidOption, q.Receiver(ctx, OnDecodeError(func(*DecodeError) {}), DeadLetter(q)).Err())
	expect("Receiver(DeadLetter(nil))", ErrInvalidOption, q.Receiver(ctx, DeadLetter(nil)).Err())
	expect("Receiver(DeadLetter(itself))", ErrInvalidOption, q.Receiver(ctx, DeadLetter(q)).Err())
	expect("Receiver(OnDecodeError(nil))", ErrInvalidOption, q.Receiver(ctx, OnDecodeError(nil)).Err())

	// Priorities, messages and buffers out of range.
	for _, p := range []uint{MaxPriority + 1, 1 << 16, math.MaxUint32, math.MaxUint} {
		expect("Send priority", ErrPriority, q.Send(ctx, []byte("x"), p))
		expect("TrySend priority", ErrPriority, q.TrySend([]byte("x"), p))
	}
	big := make([]byte, q.MessageSize()+1)
	expect("Send oversized", ErrMessageTooLarge, q.Send(ctx, big, 0))
	expect("TrySend oversized", ErrMessageTooLarge, q.TrySend(big, 0))
	expect("Send 1 MiB", ErrMessageTooLarge, q.Send(ctx, make([]byte, 1<<20), 0))
	if n := q.Len(); n != 0 {
		t.Fatalf("refused sends queued %d messages", n)
	}
	if err := q.Send(ctx, []byte("keep me"), 3); err != nil {
		t.Fatal(err)
	}
	for _, buf := range [][]byte{nil, {}, make([]byte, q.MessageSize()-1), make([]byte, 1)} {
		_, _, err := q.ReceiveInto(ctx, buf)
		expect("ReceiveInto short buffer", ErrBufferTooSmall, err)
		_, _, err = q.TryReceiveInto(buf)
		expect("TryReceiveInto short buffer", ErrBufferTooSmall, err)
	}
	if n := q.Len(); n != 1 {
		t.Fatalf("refused receives took the message: %d left, want 1", n)
	}
	buf := make([]byte, 2*q.MessageSize()) // longer than needed is fine
	if n, prio, err := q.ReceiveInto(ctx, buf); err != nil || string(buf[:n]) != "keep me" || prio != 3 {
		t.Fatalf("ReceiveInto an oversized buffer: %q %d %v", buf[:n], prio, err)
	}
	if err := q.Send(ctx, nil, 0); err != nil { // a nil message is an empty one
		t.Fatalf("Send(nil): %v", err)
	}
	if got, _, err := q.Receive(ctx); err != nil || len(got) != 0 {
		t.Fatalf("receiving an empty message: %q %v", got, err)
	}

	// Names.
	for _, name := range []string{"", "jobs", "/", "//", "/a/b", "/a/", "//a", "/.", "/..",
		"/a\x00b", "\x00", "/\x00", "/" + strings.Repeat("n", maxNameLen+1), "/" + strings.Repeat("n", 4096), "jobs/"} {
		_, err := Open(name, Create(0o600))
		expect("Open "+name, ErrInvalidName, err)
		expect("Unlink "+name, ErrInvalidName, Unlink(name))
		_, err = OpenReceiver(ctx, name, Create(0o600))
		expect("OpenReceiver "+name, ErrInvalidName, err)
		_, err = OpenSender(ctx, name, Create(0o600))
		expect("OpenSender "+name, ErrInvalidName, err)
	}
	for _, prefix := range []string{"/a/b-", "/x\x00", "/" + strings.Repeat("n", maxNameLen)} {
		_, err := CreateTemp(prefix)
		expect("CreateTemp "+prefix, ErrInvalidName, err)
	}

	for _, c := range calls {
		switch {
		case c.err == nil:
			t.Errorf("%q: no error", c.name)
		case !errors.Is(c.err, sentinelOf[c.name]):
			t.Errorf("%q: %v, want an error matching %v", c.name, c.err, sentinelOf[c.name])
		case !noErrno(c.err):
			t.Errorf("%q: the bad argument reached the kernel: %v", c.name, c.err)
		case !strings.HasPrefix(c.err.Error(), "chanmq: "):
			t.Errorf("%q: error is not the package's: %v", c.name, c.err)
		}
	}
}

// TestLimitsAboveKernelMaximaAreExplained asks for queues beyond what the
// kernel allows: it refuses them (the library cannot know every ceiling),
// and the error names the limit instead of a bare EINVAL. Nothing is
// created.
func TestLimitsAboveKernelMaximaAreExplained(t *testing.T) {
	t.Parallel()
	name := newTestQueue(t).Name() + "-too-big"
	t.Cleanup(func() { _ = Unlink(name) })
	for _, c := range []struct {
		opts []OpenOption
		says string
	}{
		{[]OpenOption{MaxMessages(readLimit("msg_max") + 1)}, "fs.mqueue.msg_max"},
		{[]OpenOption{MaxMessages(math.MaxInt32)}, "fs.mqueue.msg_max"},
		{[]OpenOption{MaxMessages(math.MaxInt)}, "fs.mqueue.msg_max"},
		{[]OpenOption{MessageSize(readLimit("msgsize_max") + 1)}, "fs.mqueue.msgsize_max"},
		{[]OpenOption{MessageSize(math.MaxInt)}, "fs.mqueue.msgsize_max"},
		{[]OpenOption{MaxMessages(math.MaxInt), MessageSize(math.MaxInt)}, "fs.mqueue.msg_max"},
	} {
		_, err := Open(name, append([]OpenOption{Create(0o600), Exclusive()}, c.opts...)...)
		if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%v: got %v, want ErrLimit naming %s", c.opts, err, c.says)
		}
	}
	if _, err := Open(name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused create left a queue behind: %v", err)
	}
}
