//go:build linux

package chanmq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Tests of the core Queue: round trips, order, bad input, kernel limits,
// cancellation, isolation of callers, Close, threads, the fallback wait and
// the 32-bit layout. Helpers here are prefixed qt so they cannot collide with
// helpers of the other test files of this package.

// qtPatience bounds waits for events that should happen at once. It is
// generous because the machine is small and shared: a passing test waits
// microseconds to milliseconds, and only a hang (the bug) ever reaches it.
const qtPatience = 30 * time.Second

// qtCall is the outcome of a blocking call run in its own goroutine.
type qtCall struct {
	msg     []byte
	prio    uint
	err     error
	elapsed time.Duration // since the goroutine was started
	at      time.Time     // when the call returned
}

// qtGoReceive runs q.Receive(ctx) in a new goroutine, started by the
// calling goroutine (qtWaitParked relies on that), and delivers its outcome.
func qtGoReceive(ctx context.Context, q *Queue) <-chan qtCall {
	ch := make(chan qtCall, 1)
	start := time.Now()
	go func() {
		m, p, err := q.Receive(ctx)
		ch <- qtCall{msg: m, prio: p, err: err, elapsed: time.Since(start), at: time.Now()}
	}()
	return ch
}

// qtGoReceiveInto is qtGoReceive with ReceiveInto.
func qtGoReceiveInto(ctx context.Context, q *Queue) <-chan qtCall {
	ch := make(chan qtCall, 1)
	start := time.Now()
	go func() {
		buf := make([]byte, q.MessageSize())
		n, p, err := q.ReceiveInto(ctx, buf)
		ch <- qtCall{msg: buf[:n], prio: p, err: err, elapsed: time.Since(start), at: time.Now()}
	}()
	return ch
}

// qtGoSend runs q.Send(ctx, msg, prio) in a new goroutine.
func qtGoSend(ctx context.Context, q *Queue, msg []byte, prio uint) <-chan qtCall {
	ch := make(chan qtCall, 1)
	start := time.Now()
	go func() {
		err := q.Send(ctx, msg, prio)
		ch <- qtCall{err: err, elapsed: time.Since(start), at: time.Now()}
	}()
	return ch
}

// qtAwait returns the outcome of a call, failing t if the call hangs.
func qtAwait(t testing.TB, ch <-chan qtCall, what string) qtCall {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(qtPatience):
		t.Fatalf("%s did not return within %v", what, qtPatience)
		return qtCall{}
	}
}

// qtStillBlocked fails t if the call has returned.
func qtStillBlocked(t testing.TB, ch <-chan qtCall, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s returned while it should still wait: msg %q prio %d err %v", what, r.msg, r.prio, r.err)
	default:
	}
}

// qtGoroutineID returns the calling goroutine's id, as tracebacks print it.
func qtGoroutineID() string {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	f := strings.Fields(string(buf[:n])) // "goroutine 23 [running]:"
	return f[1]
}

// qtParked counts goroutines created by goroutine gid that are parked in a
// Queue wait: waiting for their direction's turn ([select]), parked on the
// netpoller ([IO wait]) or, in the fallback mode, inside the blocking
// syscall ([syscall]).
func qtParked(gid string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, " in goroutine "+gid+"\n") || !strings.Contains(g, "chanmq.(*waiter).park") {
			continue
		}
		header, _, _ := strings.Cut(g, "\n")
		_, state, _ := strings.Cut(header, "[")
		state = strings.TrimSuffix(state, "]:")
		state, _, _ = strings.Cut(state, ",")
		switch state {
		case "select", "IO wait":
			count++
		case "syscall":
			if strings.Contains(g, "chanmq.(*waiter).waitBlocking") {
				count++
			}
		}
	}
	return count
}

// qtWaitParked waits until n goroutines started by the calling goroutine are
// parked in a Queue wait. This is the event "the call is blocked" that the
// cancellation and isolation tests synchronise on, instead of sleeping.
func qtWaitParked(t testing.TB, n int) {
	t.Helper()
	gid := qtGoroutineID()
	deadline := time.Now().Add(qtPatience)
	for {
		got := qtParked(gid)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines parked in a Queue wait after %v, want %d", got, qtPatience, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// qtFill fills q with TrySend until ErrFull and returns what it sent.
func qtFill(t testing.TB, q *Queue) [][]byte {
	t.Helper()
	var sent [][]byte
	for i := 0; ; i++ {
		m := []byte(fmt.Sprintf("fill-%d", i))
		err := q.TrySend(m, 0)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatalf("TrySend(%q): %v", m, err)
		}
		sent = append(sent, m)
	}
	if len(sent) != q.Cap() {
		t.Fatalf("queue took %d messages before ErrFull, Cap() is %d", len(sent), q.Cap())
	}
	return sent
}

// qtDrain takes every message out of q with TryReceive.
func qtDrain(t testing.TB, q *Queue) [][]byte {
	t.Helper()
	var got [][]byte
	for {
		m, _, err := q.TryReceive()
		if errors.Is(err, ErrEmpty) {
			return got
		}
		if err != nil {
			t.Fatalf("TryReceive: %v", err)
		}
		got = append(got, m)
	}
}

// qtUniqueName returns an unused queue name with the test prefix, so that
// the start-of-run sweep removes it if a crash leaves it behind.
func qtUniqueName(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("%s%d-%d", testPrefix, os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() { _ = Unlink(name) })
	return name
}

// --- 1. Round trips ---------------------------------------------------------

func TestSendReceiveRoundTripReturnsExactLengthNewSlice(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	ctx := context.Background()
	in := [][]byte{[]byte("hello"), []byte("wörld\x00\xff")}
	for i, m := range in {
		if err := q.Send(ctx, m, uint(i)); err != nil {
			t.Fatalf("Send(%q): %v", m, err)
		}
	}
	// Priority 1 comes first.
	for _, want := range []struct {
		msg  []byte
		prio uint
	}{{in[1], 1}, {in[0], 0}} {
		got, prio, err := q.Receive(ctx)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if !bytes.Equal(got, want.msg) || prio != want.prio {
			t.Fatalf("Receive = %q prio %d, want %q prio %d", got, prio, want.msg, want.prio)
		}
		if len(got) != len(want.msg) || cap(got) != len(want.msg) {
			t.Fatalf("Receive returned len %d cap %d, want exactly %d", len(got), cap(got), len(want.msg))
		}
	}
	// Each Receive returns its own array: changing one leaves the next alone.
	_ = q.Send(ctx, []byte("aaaa"), 0)
	_ = q.Send(ctx, []byte("bbbb"), 0)
	a, _, _ := q.Receive(ctx)
	b, _, _ := q.Receive(ctx)
	a[0] = 'X'
	if string(b) != "bbbb" || string(a) != "Xaaa" {
		t.Fatalf("received slices share memory: a %q b %q", a, b)
	}
}

func TestReceiveIntoRoundTrip(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	ctx := context.Background()
	if err := q.Send(ctx, []byte("into"), 9); err != nil {
		t.Fatal(err)
	}
	buf := bytes.Repeat([]byte{'#'}, q.MessageSize())
	n, prio, err := q.ReceiveInto(ctx, buf)
	if err != nil || n != 4 || prio != 9 || string(buf[:n]) != "into" {
		t.Fatalf("ReceiveInto = %d %q prio %d %v, want 4 \"into\" prio 9", n, buf[:n], prio, err)
	}
}

func TestTrySendTryReceiveRoundTrip(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	if err := q.TrySend([]byte("try"), 3); err != nil {
		t.Fatal(err)
	}
	if q.Len() != 1 {
		t.Fatalf("Len = %d after one TrySend, want 1", q.Len())
	}
	m, prio, err := q.TryReceive()
	if err != nil || string(m) != "try" || prio != 3 || cap(m) != 3 {
		t.Fatalf("TryReceive = %q (cap %d) prio %d %v, want \"try\" prio 3", m, cap(m), prio, err)
	}
}

func TestTryReceiveIntoRoundTrip(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	if err := q.TrySend([]byte("try-into"), 11); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, q.MessageSize()+10) // longer than needed is fine
	n, prio, err := q.TryReceiveInto(buf)
	if err != nil || string(buf[:n]) != "try-into" || prio != 11 {
		t.Fatalf("TryReceiveInto = %q prio %d %v", buf[:n], prio, err)
	}
}

func TestZeroLengthAndFullSizeMessagesRoundTrip(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	ctx := context.Background()
	full := make([]byte, q.MessageSize())
	for i := range full {
		full[i] = byte(i * 7)
	}
	for _, m := range [][]byte{nil, {}, full} {
		if err := q.Send(ctx, m, 0); err != nil {
			t.Fatalf("Send(len %d): %v", len(m), err)
		}
	}
	for i, want := range [][]byte{{}, {}, full} {
		got, _, err := q.Receive(ctx)
		if err != nil || !bytes.Equal(got, want) || got == nil {
			t.Fatalf("Receive #%d = len %d (nil %v) %v, want len %d non-nil", i, len(got), got == nil, err, len(want))
		}
	}
	// The same through the Try and Into forms.
	if err := q.TrySend(nil, 1); err != nil {
		t.Fatal(err)
	}
	if err := q.TrySend(full, 1); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, q.MessageSize())
	if n, _, err := q.TryReceiveInto(buf); err != nil || n != 0 {
		t.Fatalf("TryReceiveInto zero-length = %d %v", n, err)
	}
	if n, _, err := q.ReceiveInto(ctx, buf); err != nil || !bytes.Equal(buf[:n], full) {
		t.Fatalf("ReceiveInto full-size = %d %v", n, err)
	}
}

func TestTrySendOnFullQueueReturnsErrFull(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	qtFill(t, q)
	err := q.TrySend([]byte("one too many"), 0)
	if !errors.Is(err, ErrFull) {
		t.Fatalf("TrySend on full queue = %v, want ErrFull", err)
	}
	if want := "chanmq: send " + q.Name() + ": queue full"; err.Error() != want {
		t.Fatalf("error text %q, want %q", err, want)
	}
	if q.Len() != q.Cap() {
		t.Fatalf("Len = %d, want %d", q.Len(), q.Cap())
	}
}

func TestTryReceiveOnEmptyQueueReturnsErrEmpty(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	if _, _, err := q.TryReceive(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("TryReceive on empty queue = %v, want ErrEmpty", err)
	}
	if _, _, err := q.TryReceiveInto(make([]byte, q.MessageSize())); !errors.Is(err, ErrEmpty) {
		t.Fatalf("TryReceiveInto on empty queue = %v, want ErrEmpty", err)
	}
}

// --- 2. Order and priorities ------------------------------------------------

func TestReceiveOrderIsHighestPriorityFirstFIFOWithinPriority(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(10), MessageSize(32))
	prios := []uint{1, 5, 1, 0, 5, MaxPriority, 0, 1, 5, 0}
	if len(prios) > q.Cap() {
		t.Fatalf("queue holds %d, test needs %d", q.Cap(), len(prios))
	}
	type rec struct {
		msg  string
		prio uint
	}
	var want []rec
	for i, p := range prios {
		m := fmt.Sprintf("m%d-p%d", i, p)
		if err := q.TrySend([]byte(m), p); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec{m, p})
	}
	slices.SortStableFunc(want, func(a, b rec) int { return int(b.prio) - int(a.prio) })
	for i, w := range want {
		m, p, err := q.Receive(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if string(m) != w.msg || p != w.prio {
			t.Fatalf("message %d = %q prio %d, want %q prio %d", i, m, p, w.msg, w.prio)
		}
	}
}

func TestSendPriorityAboveMaxIsRejectedBeforeAnySyscall(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	for _, send := range []struct {
		name string
		fn   func(uint) error
	}{
		{"Send", func(p uint) error { return q.Send(context.Background(), []byte("x"), p) }},
		{"TrySend", func(p uint) error { return q.TrySend([]byte("x"), p) }},
	} {
		err := send.fn(MaxPriority + 1)
		if !errors.Is(err, ErrPriority) {
			t.Fatalf("%s(prio %d) = %v, want ErrPriority", send.name, MaxPriority+1, err)
		}
		if !strings.Contains(err.Error(), "32768") || !strings.Contains(err.Error(), "32767") {
			t.Errorf("%s error %q does not give the priority and the range", send.name, err)
		}
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("Len = %d after rejected sends, want 0", n)
	}
	// The check needs no descriptor: on a closed Queue it still says
	// ErrPriority, not ErrClosed.
	_ = q.Close()
	if err := q.TrySend([]byte("x"), MaxPriority+1); !errors.Is(err, ErrPriority) {
		t.Fatalf("TrySend(prio %d) on closed queue = %v, want ErrPriority first", MaxPriority+1, err)
	}
}

func TestSendMaxPriorityWorks(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	if err := q.TrySend([]byte("low"), 0); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(context.Background(), []byte("top"), MaxPriority); err != nil {
		t.Fatalf("Send with MaxPriority: %v", err)
	}
	m, p, err := q.TryReceive()
	if err != nil || string(m) != "top" || p != MaxPriority {
		t.Fatalf("TryReceive = %q prio %d %v, want \"top\" prio %d", m, p, err, MaxPriority)
	}
}

// --- 3. Bad input -------------------------------------------------------------

func TestOpenRejectsInvalidNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, label string
		wantText    string
	}{
		{"", "empty", `use a name such as "/jobs"`},
		{"jobs", "no slash", `did you mean "/jobs"?`},
		{"/", "slash only", `needs a name after the slash`},
		{"/a/b", "inner slash", `queue names are flat`},
		{"/a\x00b", "NUL", `NUL`},
		{"/" + strings.Repeat("n", 256), "256 bytes", `256 bytes after the slash; at most 255`},
		{"/.", "dot", `reserved`},
		{"/..", "dotdot", `reserved`},
	} {
		t.Run(tc.label, func(t *testing.T) {
			t.Parallel()
			q, err := Open(tc.name, Create(0o600))
			if q != nil {
				_ = q.Close()
				_ = Unlink(tc.name)
				t.Fatalf("Open(%q) succeeded", tc.name)
			}
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("Open(%q) = %v, want ErrInvalidName", tc.name, err)
			}
			if !strings.HasPrefix(err.Error(), strings.TrimSpace("chanmq: open "+tc.name)+": ") || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("Open(%q) error %q, want \"chanmq: open <name>: ...\" containing %q", tc.name, err, tc.wantText)
			}
			if err := Unlink(tc.name); !errors.Is(err, ErrInvalidName) {
				t.Fatalf("Unlink(%q) = %v, want ErrInvalidName", tc.name, err)
			}
		})
	}
}

func TestOpenAccepts255ByteName(t *testing.T) {
	t.Parallel()
	base := qtUniqueName(t)
	name := base + strings.Repeat("x", 256-len(base))
	if len(name)-1 != 255 {
		t.Fatalf("test name is %d bytes after the slash", len(name)-1)
	}
	t.Cleanup(func() { _ = Unlink(name) })
	q, err := Open(name, Create(0o600), Exclusive(), MaxMessages(1), MessageSize(16))
	if err != nil {
		t.Fatalf("Open(255-byte name): %v", err)
	}
	defer q.Close()
	if q.Name() != name {
		t.Fatalf("Name() = %q, want %q", q.Name(), name)
	}
	if err := q.TrySend([]byte("long name"), 0); err != nil {
		t.Fatal(err)
	}
	if m, _, err := q.TryReceive(); err != nil || string(m) != "long name" {
		t.Fatalf("TryReceive = %q %v", m, err)
	}
}

func TestSendLargerThanMessageSizeIsErrMessageTooLarge(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t) // MessageSize 128
	big := make([]byte, q.MessageSize()+1)
	want := fmt.Sprintf("chanmq: send %s: message too large (129 > 128 bytes)", q.Name())
	for _, send := range []struct {
		name string
		fn   func() error
	}{
		{"Send", func() error { return q.Send(context.Background(), big, 0) }},
		{"TrySend", func() error { return q.TrySend(big, 0) }},
	} {
		err := send.fn()
		if !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("%s(%d bytes) = %v, want ErrMessageTooLarge", send.name, len(big), err)
		}
		if err.Error() != want {
			t.Fatalf("%s error %q, want %q", send.name, err, want)
		}
	}
	if q.Len() != 0 {
		t.Fatalf("Len = %d, want 0", q.Len())
	}
}

func TestReceiveIntoShortBufferIsErrBufferTooSmallAndKeepsMessage(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	if err := q.TrySend([]byte("stay"), 2); err != nil {
		t.Fatal(err)
	}
	short := make([]byte, q.MessageSize()-1)
	_, _, err := q.ReceiveInto(context.Background(), short)
	if !errors.Is(err, ErrBufferTooSmall) {
		t.Fatalf("ReceiveInto(short) = %v, want ErrBufferTooSmall", err)
	}
	if !strings.HasPrefix(err.Error(), "chanmq: receive "+q.Name()+": buffer too small") ||
		!strings.Contains(err.Error(), "127") || !strings.Contains(err.Error(), "128") {
		t.Fatalf("error text %q should give both sizes", err)
	}
	if _, _, err := q.TryReceiveInto(short); !errors.Is(err, ErrBufferTooSmall) {
		t.Fatalf("TryReceiveInto(short) = %v, want ErrBufferTooSmall", err)
	}
	if q.Len() != 1 {
		t.Fatalf("Len = %d after refused receives, want the message still queued", q.Len())
	}
	if m, p, err := q.TryReceive(); err != nil || string(m) != "stay" || p != 2 {
		t.Fatalf("TryReceive = %q prio %d %v, want \"stay\" prio 2", m, p, err)
	}
}

func TestSendOnReadOnlyIsErrReadOnlyAndReceiveOnWriteOnlyIsErrWriteOnly(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	ro, err := Open(q.Name(), ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	wo, err := Open(q.Name(), WriteOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer wo.Close()

	if err := ro.Send(context.Background(), []byte("x"), 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Send on ReadOnly = %v, want ErrReadOnly", err)
	}
	if err := ro.TrySend([]byte("x"), 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("TrySend on ReadOnly = %v, want ErrReadOnly", err)
	}
	if _, _, err := wo.Receive(context.Background()); !errors.Is(err, ErrWriteOnly) {
		t.Fatalf("Receive on WriteOnly = %v, want ErrWriteOnly", err)
	}
	if _, _, err := wo.TryReceive(); !errors.Is(err, ErrWriteOnly) {
		t.Fatalf("TryReceive on WriteOnly = %v, want ErrWriteOnly", err)
	}
	if _, _, err := wo.ReceiveInto(context.Background(), make([]byte, 128)); !errors.Is(err, ErrWriteOnly) {
		t.Fatalf("ReceiveInto on WriteOnly = %v, want ErrWriteOnly", err)
	}
	// Each direction still works where it is allowed.
	if err := wo.TrySend([]byte("w"), 0); err != nil {
		t.Fatal(err)
	}
	if m, _, err := ro.TryReceive(); err != nil || string(m) != "w" {
		t.Fatalf("ReadOnly TryReceive = %q %v", m, err)
	}
}

func TestOpenMissingQueueIsNotExist(t *testing.T) {
	t.Parallel()
	name := qtUniqueName(t)
	q, err := Open(name)
	if q != nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open(missing) = %v, %v; want fs.ErrNotExist", q, err)
	}
	if !strings.HasPrefix(err.Error(), "chanmq: open "+name+": ") {
		t.Fatalf("error text %q", err)
	}
	if err := Unlink(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Unlink(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestOpenExclusiveOnExistingQueueIsExist(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	q2, err := Open(q.Name(), Create(0o600), Exclusive())
	if q2 != nil || !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Open(existing, Exclusive) = %v, %v; want fs.ErrExist", q2, err)
	}
	// Without Exclusive, Create opens the existing queue.
	q3, err := Open(q.Name(), Create(0o600))
	if err != nil {
		t.Fatalf("Open(existing, Create) = %v", err)
	}
	_ = q3.Close()
}

func TestOpenRejectsInvalidOptions(t *testing.T) {
	t.Parallel()
	name := qtUniqueName(t) // never created: options are checked first
	for _, tc := range []struct {
		label string
		opts  []OpenOption
	}{
		{"MaxMessages(0)", []OpenOption{Create(0o600), MaxMessages(0)}},
		{"MessageSize(-1)", []OpenOption{Create(0o600), MessageSize(-1)}},
		{"ReadOnly+WriteOnly", []OpenOption{ReadOnly(), WriteOnly()}},
		{"Exclusive without Create", []OpenOption{Exclusive()}},
		{"MaxMessages without Create", []OpenOption{MaxMessages(2)}},
		{"Create with non-permission bits", []OpenOption{Create(fs.ModeDir | 0o600)}},
	} {
		q, err := Open(name, tc.opts...)
		if q != nil {
			_ = q.Close()
			t.Fatalf("%s: Open succeeded", tc.label)
		}
		if !errors.Is(err, ErrInvalidOption) {
			t.Fatalf("%s: Open = %v, want ErrInvalidOption", tc.label, err)
		}
		if !strings.HasPrefix(err.Error(), "chanmq: open "+name+": invalid option") {
			t.Fatalf("%s: error text %q", tc.label, err)
		}
	}
	if _, err := Open(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a rejected Open created the queue: %v", err)
	}
}

func TestErrorsAreOpNameErr(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	_, _, err := q.TryReceive()
	var e *Error
	if !errors.As(err, &e) || e.Op != "receive" || e.Name != q.Name() || !errors.Is(e.Err, ErrEmpty) {
		t.Fatalf("TryReceive error = %#v, want *Error{receive, %s, ErrEmpty}", err, q.Name())
	}
	if want := "chanmq: receive " + q.Name() + ": queue empty"; err.Error() != want {
		t.Fatalf("error text %q, want %q", err, want)
	}
	if e.Timeout() {
		t.Fatal("ErrEmpty reports Timeout")
	}
}

// --- 4. Kernel limits ---------------------------------------------------------

// qtReadSysctl reads a /proc/sys/fs/mqueue value or skips t.
func qtReadSysctl(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/fs/mqueue/" + name)
	if err != nil {
		t.Skipf("cannot read fs.mqueue.%s: %v", name, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Skipf("fs.mqueue.%s: %v", name, err)
	}
	return n
}

// qtOpenOverLimit opens a new queue with opts, which ask for more than a
// sysctl allows, and returns the error. It skips t when the create
// succeeds: the process is privileged (CAP_SYS_RESOURCE) and not bound.
func qtOpenOverLimit(t *testing.T, opts ...OpenOption) error {
	t.Helper()
	name := qtUniqueName(t)
	q, err := Open(name, append([]OpenOption{Create(0o600), Exclusive()}, opts...)...)
	if err == nil {
		_ = q.Close()
		t.Skip("the kernel allowed a queue above the sysctl limit: this process has CAP_SYS_RESOURCE")
	}
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EMFILE) {
		t.Skipf("another limit was hit first: %v", err)
	}
	return err
}

func TestMaxMessagesAboveMsgMaxIsErrLimitNamingSysctl(t *testing.T) {
	t.Parallel()
	msgMax := qtReadSysctl(t, "msg_max")
	err := qtOpenOverLimit(t, MaxMessages(msgMax+1), MessageSize(16))
	if !errors.Is(err, ErrLimit) || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("Open(MaxMessages(%d)) = %v, want ErrLimit wrapping EINVAL", msgMax+1, err)
	}
	want := fmt.Sprintf("fs.mqueue.msg_max, which is %d", msgMax)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "sysctl -w fs.mqueue.msg_max=") {
		t.Fatalf("error %q should contain %q and how to raise it", err, want)
	}
}

func TestMessageSizeAboveMsgsizeMaxIsErrLimitNamingSysctl(t *testing.T) {
	t.Parallel()
	msgsizeMax := qtReadSysctl(t, "msgsize_max")
	err := qtOpenOverLimit(t, MaxMessages(1), MessageSize(msgsizeMax+1))
	if !errors.Is(err, ErrLimit) || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("Open(MessageSize(%d)) = %v, want ErrLimit wrapping EINVAL", msgsizeMax+1, err)
	}
	want := fmt.Sprintf("fs.mqueue.msgsize_max, which is %d", msgsizeMax)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "sysctl -w fs.mqueue.msgsize_max=") {
		t.Fatalf("error %q should contain %q and how to raise it", err, want)
	}
}

// --- 5. Cancellation ------------------------------------------------------------

// qtBlockingOp is a call that blocks on a prepared queue: Receive or
// ReceiveInto on an empty queue, Send on a full one.
type qtBlockingOp struct {
	name    string
	prepare func(t *testing.T, q *Queue)                      // make the call block
	start   func(ctx context.Context, q *Queue) <-chan qtCall // run it
	check   func(t *testing.T, q *Queue)                      // nothing lost or added
}

func qtBlockingOps() []qtBlockingOp {
	emptyStill := func(t *testing.T, q *Queue) {
		t.Helper()
		if n := q.Len(); n != 0 {
			t.Fatalf("Len = %d after a cancelled receive, want 0", n)
		}
	}
	return []qtBlockingOp{
		{"Receive", func(*testing.T, *Queue) {}, qtGoReceive, emptyStill},
		{"ReceiveInto", func(*testing.T, *Queue) {}, qtGoReceiveInto, emptyStill},
		{"Send",
			func(t *testing.T, q *Queue) { qtFill(t, q) },
			func(ctx context.Context, q *Queue) <-chan qtCall {
				return qtGoSend(ctx, q, []byte("cancelled send"), 7)
			},
			func(t *testing.T, q *Queue) {
				t.Helper()
				for _, m := range qtDrain(t, q) {
					if string(m) == "cancelled send" {
						t.Fatal("a cancelled Send queued its message")
					}
				}
			}},
	}
}

func TestCancelBeforeCallReturnsCtxErr(t *testing.T) {
	t.Parallel()
	for _, op := range qtBlockingOps() {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t)
			op.prepare(t, q)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			r := qtAwait(t, op.start(ctx, q), op.name)
			if !errors.Is(r.err, context.Canceled) || !errors.Is(r.err, ctx.Err()) {
				t.Fatalf("%s with a cancelled ctx = %v, want context.Canceled", op.name, r.err)
			}
			var e *Error
			if !errors.As(r.err, &e) || e.Name != q.Name() {
				t.Fatalf("%s error %#v is not an *Error naming the queue", op.name, r.err)
			}
			op.check(t, q)
		})
	}
}

func TestCancelDuringWaitReturnsCtxErr(t *testing.T) {
	t.Parallel()
	for _, op := range qtBlockingOps() {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t)
			op.prepare(t, q)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch := op.start(ctx, q)
			qtWaitParked(t, 1)
			cancel()
			r := qtAwait(t, ch, op.name)
			if !errors.Is(r.err, context.Canceled) || !errors.Is(r.err, ctx.Err()) {
				t.Fatalf("%s cancelled while blocked = %v, want context.Canceled", op.name, r.err)
			}
			op.check(t, q)
		})
	}
}

func TestDeadlineExceededAfterTimeout(t *testing.T) {
	t.Parallel()
	// 150ms: long enough that returning early would be visible, short
	// enough to keep the test quick; there is no upper bound but qtPatience.
	const timeout = 150 * time.Millisecond
	for _, op := range qtBlockingOps() {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t)
			op.prepare(t, q)
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			r := qtAwait(t, op.start(ctx, q), op.name)
			elapsed := time.Since(start)
			if !errors.Is(r.err, context.DeadlineExceeded) || !errors.Is(r.err, ctx.Err()) {
				t.Fatalf("%s past its deadline = %v, want context.DeadlineExceeded", op.name, r.err)
			}
			if elapsed < timeout {
				t.Fatalf("%s gave up after %v, before its %v timeout", op.name, elapsed, timeout)
			}
			var e *Error
			if !errors.As(r.err, &e) || !e.Timeout() {
				t.Fatalf("%s error %v: Timeout() should be true", op.name, r.err)
			}
			op.check(t, q)
		})
	}
}

func TestCancelCauseIsReachableWithErrorsIs(t *testing.T) {
	t.Parallel()
	for _, op := range qtBlockingOps() {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t)
			op.prepare(t, q)
			cause := errors.New("shutting down for maintenance")
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			ch := op.start(ctx, q)
			qtWaitParked(t, 1)
			cancel(cause)
			r := qtAwait(t, ch, op.name)
			if !errors.Is(r.err, cause) || !errors.Is(r.err, context.Canceled) {
				t.Fatalf("%s = %v, want both the cause and context.Canceled", op.name, r.err)
			}
			if !strings.Contains(r.err.Error(), cause.Error()) {
				t.Fatalf("error text %q does not give the cause", r.err)
			}
			op.check(t, q)
		})
	}
}

// --- 6. Isolation of callers -----------------------------------------------------

func TestCancelOneReceiverLeavesOthersWaiting(t *testing.T) {
	t.Parallel()
	// victim 0 is the turn holder, parked on the netpoller (it started
	// first and was seen parked before the others started); victim 1 and 2
	// wait for the turn.
	for victim := range 3 {
		t.Run(fmt.Sprintf("cancel-receiver-%d", victim), func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t)
			var chans [3]<-chan qtCall
			var cancels [3]context.CancelFunc
			for i := range 3 {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				cancels[i] = cancel
				chans[i] = qtGoReceive(ctx, q)
				qtWaitParked(t, i+1)
			}
			cancels[victim]()
			r := qtAwait(t, chans[victim], "the cancelled Receive")
			if !errors.Is(r.err, context.Canceled) {
				t.Fatalf("cancelled Receive = %q %v, want context.Canceled", r.msg, r.err)
			}
			// The others are still parked: cancelling one ended no other wait.
			qtWaitParked(t, 2)
			for i := range 3 {
				if i != victim {
					qtStillBlocked(t, chans[i], fmt.Sprintf("Receive %d", i))
				}
			}
			// And they still receive what is sent afterwards.
			want := map[string]bool{"after-1": true, "after-2": true}
			for m := range want {
				if err := q.TrySend([]byte(m), 0); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 3 {
				if i == victim {
					continue
				}
				r := qtAwait(t, chans[i], fmt.Sprintf("Receive %d", i))
				if r.err != nil || !want[string(r.msg)] {
					t.Fatalf("Receive %d = %q %v, want one of the messages sent after the cancel", i, r.msg, r.err)
				}
				delete(want, string(r.msg))
			}
		})
	}
}

func TestCancelOneSenderLeavesOthersWaiting(t *testing.T) {
	t.Parallel()
	for victim := range 3 {
		t.Run(fmt.Sprintf("cancel-sender-%d", victim), func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t)
			fill := qtFill(t, q)
			var chans [3]<-chan qtCall
			var cancels [3]context.CancelFunc
			for i := range 3 {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				cancels[i] = cancel
				chans[i] = qtGoSend(ctx, q, []byte(fmt.Sprintf("sender-%d", i)), 0)
				qtWaitParked(t, i+1)
			}
			cancels[victim]()
			if r := qtAwait(t, chans[victim], "the cancelled Send"); !errors.Is(r.err, context.Canceled) {
				t.Fatalf("cancelled Send = %v, want context.Canceled", r.err)
			}
			qtWaitParked(t, 2)
			for i := range 3 {
				if i != victim {
					qtStillBlocked(t, chans[i], fmt.Sprintf("Send %d", i))
				}
			}
			// Make room for the two survivors, one message at a time.
			var got []string
			for range 2 {
				m, _, err := q.Receive(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(m))
			}
			for i := range 3 {
				if i == victim {
					continue
				}
				if r := qtAwait(t, chans[i], fmt.Sprintf("Send %d", i)); r.err != nil {
					t.Fatalf("Send %d = %v, want nil once there was room", i, r.err)
				}
			}
			for _, m := range qtDrain(t, q) {
				got = append(got, string(m))
			}
			var want []string
			for _, m := range fill {
				want = append(want, string(m))
			}
			for i := range 3 {
				if i != victim {
					want = append(want, fmt.Sprintf("sender-%d", i))
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("queue held %q, want %q", got, want)
			}
		})
	}
}

func TestDeadlineOfOneReceiverDoesNotCutAnothersWait(t *testing.T) {
	t.Parallel()
	// 200ms: visible if returned early; the test never waits on it
	// otherwise (only qtPatience bounds a hang).
	const timeout = 200 * time.Millisecond
	for _, deadlineFirst := range []bool{true, false} {
		label := "deadline-waiter-holds-turn"
		if !deadlineFirst {
			label = "deadline-waiter-queued-for-turn"
		}
		t.Run(label, func(t *testing.T) {
			t.Parallel()
			q := newTestQueue(t)
			var deadline time.Time
			start := func(withDeadline bool) (<-chan qtCall, context.CancelFunc) {
				if withDeadline {
					ctx, cancel := context.WithTimeout(context.Background(), timeout)
					deadline, _ = ctx.Deadline()
					return qtGoReceive(ctx, q), cancel
				}
				ctx, cancel := context.WithCancel(context.Background())
				return qtGoReceive(ctx, q), cancel
			}
			first, cancel1 := start(deadlineFirst)
			defer cancel1()
			qtWaitParked(t, 1)
			second, cancel2 := start(!deadlineFirst)
			defer cancel2()
			timed, patient := first, second
			if !deadlineFirst {
				timed, patient = second, first
			}
			r := qtAwait(t, timed, "the Receive with a deadline")
			// Measured against the ctx's own deadline: the goroutine starts a
			// moment after the ctx, so its elapsed time may be a hair short.
			if !errors.Is(r.err, context.DeadlineExceeded) || r.at.Before(deadline) {
				t.Fatalf("Receive with deadline = %v, %v before its deadline; want DeadlineExceeded at or after the deadline", r.err, deadline.Sub(r.at))
			}
			qtWaitParked(t, 1)
			qtStillBlocked(t, patient, "the Receive without a deadline")
			if err := q.TrySend([]byte("late"), 0); err != nil {
				t.Fatal(err)
			}
			if r := qtAwait(t, patient, "the Receive without a deadline"); r.err != nil || string(r.msg) != "late" {
				t.Fatalf("Receive without a deadline = %q %v, want \"late\"", r.msg, r.err)
			}
		})
	}
}

// --- 7. Concurrency ------------------------------------------------------------------

func TestConcurrentSendReceiveDeliversEachMessageOnce(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t) // 4 slots: senders and receivers block often
	const senders, receivers, perSender = 8, 8, 200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var sendWG, recvWG sync.WaitGroup
	sendErrs := make(chan error, senders)
	for s := range senders {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			for i := range perSender {
				m := []byte(fmt.Sprintf("s%d-m%d", s, i))
				var err error
				if i%4 == 3 {
					for err = q.TrySend(m, uint(i%3)); errors.Is(err, ErrFull); err = q.TrySend(m, uint(i%3)) {
						runtime.Gosched()
					}
				} else {
					err = q.Send(ctx, m, uint(i%3))
				}
				if err != nil {
					sendErrs <- err
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	got := map[string]int{}
	total := 0
	recvErrs := make(chan error, receivers)
	for r := range receivers {
		recvWG.Add(1)
		go func() {
			defer recvWG.Done()
			buf := make([]byte, q.MessageSize())
			for {
				var m []byte
				var err error
				if r%2 == 0 {
					m, _, err = q.Receive(ctx)
				} else {
					var n int
					n, _, err = q.ReceiveInto(ctx, buf)
					m = buf[:n]
				}
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						recvErrs <- err
					}
					return
				}
				mu.Lock()
				got[string(m)]++
				total++
				if total == senders*perSender {
					cancel() // everything arrived: stop the receivers
				}
				mu.Unlock()
			}
		}()
	}
	sendWG.Wait()
	close(sendErrs)
	for err := range sendErrs {
		t.Errorf("send: %v", err)
	}
	done := make(chan struct{})
	go func() { recvWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(qtPatience):
		cancel()
		<-done
		t.Fatalf("receivers got %d of %d messages within %v", total, senders*perSender, qtPatience)
	}
	close(recvErrs)
	for err := range recvErrs {
		t.Errorf("receive: %v", err)
	}
	for s := range senders {
		for i := range perSender {
			m := fmt.Sprintf("s%d-m%d", s, i)
			if got[m] != 1 {
				t.Errorf("message %s received %d times, want 1", m, got[m])
			}
		}
	}
	if len(got) != senders*perSender {
		t.Errorf("received %d distinct messages, want %d", len(got), senders*perSender)
	}
}

// --- 8. Close ----------------------------------------------------------------------

func TestCloseWakesBlockedReceiveWithErrClosed(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	a := qtGoReceive(context.Background(), q) // turn holder, on the netpoller
	qtWaitParked(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := qtGoReceiveInto(ctx, q) // waiting for the turn
	qtWaitParked(t, 2)
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, ch := range []<-chan qtCall{a, b} {
		if r := qtAwait(t, ch, "Receive blocked at Close"); !errors.Is(r.err, ErrClosed) {
			t.Fatalf("Receive blocked at Close = %q %v, want ErrClosed", r.msg, r.err)
		}
	}
}

func TestCloseWakesBlockedSendWithErrClosed(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	qtFill(t, q)
	a := qtGoSend(context.Background(), q, []byte("a"), 0)
	qtWaitParked(t, 1)
	b := qtGoSend(context.Background(), q, []byte("b"), 0)
	qtWaitParked(t, 2)
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, ch := range []<-chan qtCall{a, b} {
		if r := qtAwait(t, ch, "Send blocked at Close"); !errors.Is(r.err, ErrClosed) {
			t.Fatalf("Send blocked at Close = %v, want ErrClosed", r.err)
		}
	}
	// The kernel queue lives on with exactly the messages sent before.
	q2, err := Open(q.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if n := q2.Len(); n != q2.Cap() {
		t.Fatalf("reopened queue holds %d, want %d", n, q2.Cap())
	}
}

func TestCallsAfterCloseReturnErrClosed(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	if err := q.TrySend([]byte("left in kernel"), 0); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	buf := make([]byte, q.MessageSize())
	for name, fn := range map[string]func() error{
		"Send":           func() error { return q.Send(ctx, []byte("x"), 0) },
		"TrySend":        func() error { return q.TrySend([]byte("x"), 0) },
		"Receive":        func() error { _, _, err := q.Receive(ctx); return err },
		"ReceiveInto":    func() error { _, _, err := q.ReceiveInto(ctx, buf); return err },
		"TryReceive":     func() error { _, _, err := q.TryReceive(); return err },
		"TryReceiveInto": func() error { _, _, err := q.TryReceiveInto(buf); return err },
		"Attr":           func() error { _, err := q.Attr(); return err },
	} {
		err := fn()
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		} else if !strings.HasPrefix(err.Error(), "chanmq: ") || !strings.Contains(err.Error(), q.Name()+": queue closed") {
			t.Errorf("%s after Close: error text %q", name, err)
		}
	}
	if q.Len() != 0 {
		t.Errorf("Len after Close = %d, want 0", q.Len())
	}
}

func TestCloseTwiceAndConcurrentCloseAreSafe(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	blocked := qtGoReceive(context.Background(), q)
	qtWaitParked(t, 1)
	const closers = 8
	errs := make(chan error, closers)
	var start sync.WaitGroup
	start.Add(1)
	for range closers {
		go func() { start.Wait(); errs <- q.Close() }()
	}
	start.Done()
	for range closers {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Close = %v, want nil", err)
		}
	}
	if err := q.Close(); err != nil {
		t.Errorf("Close after Close = %v, want nil", err)
	}
	if r := qtAwait(t, blocked, "Receive blocked at Close"); !errors.Is(r.err, ErrClosed) {
		t.Fatalf("Receive blocked at Close = %v, want ErrClosed", r.err)
	}
}

// --- 9. No thread per waiter ---------------------------------------------------

// qtThreads returns the number of OS threads of this process.
func qtThreads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("cannot read /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("Threads line %q: %v", line, err)
			}
			return n
		}
	}
	t.Skip("/proc/self/status has no Threads line")
	return 0
}

// Not parallel: it opens 200 of the machine's 256 queues (queues_max), so it
// must not run alongside other tests of this package that open queues.
func TestBlockedReceiversDoNotHoldThreads(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 200 queues; skipped in -short mode")
	}
	const nQueues, perQueue, maxThreads = 200, 5, 20
	queues := make([]*Queue, 0, nQueues)
	defer func() {
		for _, q := range queues {
			_ = q.Close()
			_ = Unlink(q.Name())
		}
	}()
	for i := range nQueues {
		q, err := CreateTemp(testPrefix, MaxMessages(1), MessageSize(16))
		if err != nil {
			if errors.Is(err, ErrLimit) || errors.Is(err, unix.ENOSPC) {
				t.Skipf("the machine ran out of queues after %d of %d (queues_max is shared by everyone here): %v", i, nQueues, err)
			}
			t.Fatalf("CreateTemp #%d: %v", i, err)
		}
		queues = append(queues, q)
	}
	results := make(chan error, nQueues*perQueue)
	var wg sync.WaitGroup
	for _, q := range queues {
		for range perQueue {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := q.Receive(context.Background())
				results <- err
			}()
		}
	}
	qtWaitParked(t, nQueues*perQueue)
	if n := qtThreads(t); n >= maxThreads {
		t.Errorf("%d goroutines blocked in Receive on %d queues: the process has %d OS threads, want < %d", nQueues*perQueue, nQueues, n, maxThreads)
	} else {
		t.Logf("%d blocked receivers, %d OS threads", nQueues*perQueue, n)
	}
	for _, q := range queues {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(qtPatience):
		t.Fatalf("receivers still running %v after Close", qtPatience)
	}
	close(results)
	for err := range results {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Receive ended with %v, want ErrClosed", err)
		}
	}
	if n := qtParked(qtGoroutineID()); n != 0 {
		t.Fatalf("%d goroutines still parked after Close", n)
	}
}

// --- 10. The fallback wait ---------------------------------------------------------

// qtFallbackQueue opens a test queue in the blocking fallback mode. The
// Queue takes the mode from the global forceFallback at Open, which is
// reset at once (callers are serial tests, so no parallel test opens a
// queue meanwhile), and switches to it when a caller first waits.
func qtFallbackQueue(t *testing.T) *Queue {
	t.Helper()
	forceFallback.Store(true)
	q := func() *Queue {
		defer forceFallback.Store(false)
		return newTestQueue(t)
	}()
	if !q.fallback {
		t.Fatal("forceFallback did not select the fallback wait")
	}
	return q
}

// Not parallel: it sets the package-global forceFallback around Open.
func TestFallbackWait(t *testing.T) {
	t.Run("round-trip", func(t *testing.T) {
		q := qtFallbackQueue(t)
		ctx := context.Background()
		recv := qtGoReceive(ctx, q)
		qtWaitParked(t, 1)
		if err := q.Send(ctx, []byte("fallback"), 4); err != nil {
			t.Fatal(err)
		}
		if r := qtAwait(t, recv, "fallback Receive"); r.err != nil || string(r.msg) != "fallback" || r.prio != 4 {
			t.Fatalf("fallback Receive = %q prio %d %v", r.msg, r.prio, r.err)
		}
		qtFill(t, q)
		if err := q.TrySend([]byte("x"), 0); !errors.Is(err, ErrFull) {
			t.Fatalf("fallback TrySend on full = %v, want ErrFull", err)
		}
		send := qtGoSend(ctx, q, []byte("waited"), 9)
		qtWaitParked(t, 1)
		if _, _, err := q.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		if r := qtAwait(t, send, "fallback Send"); r.err != nil {
			t.Fatalf("fallback Send = %v", r.err)
		}
		if m, p, err := q.TryReceive(); err != nil || string(m) != "waited" || p != 9 {
			t.Fatalf("TryReceive = %q prio %d %v, want \"waited\" prio 9", m, p, err)
		}
		qtDrain(t, q)
		if _, _, err := q.TryReceive(); !errors.Is(err, ErrEmpty) {
			t.Fatalf("fallback TryReceive on empty = %v, want ErrEmpty", err)
		}
	})
	t.Run("cancel-during-wait", func(t *testing.T) {
		q := qtFallbackQueue(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		recv := qtGoReceive(ctx, q)
		qtWaitParked(t, 1)
		cancel()
		if r := qtAwait(t, recv, "fallback Receive"); !errors.Is(r.err, context.Canceled) {
			t.Fatalf("fallback Receive cancelled = %v, want context.Canceled", r.err)
		}
	})
	t.Run("close-wakes-waiters", func(t *testing.T) {
		q := qtFallbackQueue(t)
		recv := qtGoReceive(context.Background(), q)
		qtWaitParked(t, 1)
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if r := qtAwait(t, recv, "fallback Receive"); !errors.Is(r.err, ErrClosed) {
			t.Fatalf("fallback Receive at Close = %v, want ErrClosed", r.err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		q := qtFallbackQueue(t)
		const timeout = 150 * time.Millisecond // see TestDeadlineExceededAfterTimeout
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, _, err := q.Receive(ctx)
		if elapsed := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || elapsed < timeout {
			t.Fatalf("fallback Receive = %v after %v, want DeadlineExceeded after >= %v", err, elapsed, timeout)
		}
	})
}

// --- 11. 32-bit layout --------------------------------------------------------------

func TestMqAttrIsEightCLongs(t *testing.T) {
	t.Parallel()
	// A C long on Linux is one machine word on every GOARCH Go supports.
	word := unsafe.Sizeof(uintptr(0))
	var a mqAttr
	if got := unsafe.Sizeof(a); got != 8*word {
		t.Fatalf("unsafe.Sizeof(mqAttr{}) = %d, want 8 words (%d) on %s", got, 8*word, runtime.GOARCH)
	}
	for _, f := range []struct {
		name string
		off  uintptr
		idx  uintptr
	}{
		{"flags", unsafe.Offsetof(a.flags), 0},
		{"maxMsg", unsafe.Offsetof(a.maxMsg), 1},
		{"msgSize", unsafe.Offsetof(a.msgSize), 2},
		{"curMsgs", unsafe.Offsetof(a.curMsgs), 3},
	} {
		if f.off != f.idx*word {
			t.Errorf("mqAttr.%s at offset %d, want %d", f.name, f.off, f.idx*word)
		}
	}
}

// TestAttrRoundTripsThroughKernel checks what the layout decides: the
// attributes asked for at create come back from mq_getsetattr unchanged, and
// so does the message count. Run it with GOARCH=386 too.
func TestAttrRoundTripsThroughKernel(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(3), MessageSize(77))
	if q.Cap() != 3 || q.MessageSize() != 77 {
		t.Fatalf("Cap %d MessageSize %d, want 3 and 77", q.Cap(), q.MessageSize())
	}
	for i := range 2 {
		if err := q.TrySend(bytes.Repeat([]byte{byte(i)}, 77), uint(i)); err != nil {
			t.Fatal(err)
		}
	}
	a, err := q.Attr()
	if err != nil {
		t.Fatal(err)
	}
	if a != (Attr{MaxMessages: 3, MessageSize: 77, Messages: 2}) {
		t.Fatalf("Attr = %+v, want {3 77 2}", a)
	}
	m, p, err := q.Receive(context.Background())
	if err != nil || !bytes.Equal(m, bytes.Repeat([]byte{1}, 77)) || p != 1 {
		t.Fatalf("Receive = len %d prio %d %v", len(m), p, err)
	}
	// The descriptor flags are ours: nonblocking, as Open asks.
	if !q.acquireFD() {
		t.Fatal("queue closed")
	}
	raw, err := sysGetAttr(q.fd)
	q.releaseFD()
	if err != nil || raw.flags&oNonblock == 0 || raw.curMsgs != 1 {
		t.Fatalf("raw attr %+v %v, want O_NONBLOCK set and 1 message", raw, err)
	}
}

// --- 16. Monotonic deadlines ---------------------------------------------------------

// TestDeadlineIgnoresWallClockJump steps CLOCK_REALTIME an hour forward
// while a Receive with a 300ms timeout is parked: the Receive must still end
// after about 300ms, neither at once (deadline cut) nor in an hour (stretched).
// It changes the machine's clock, so it runs only as root with
// CHANMQ_CLOCK_TESTS=1, and puts the clock back before it returns.
func TestDeadlineIgnoresWallClockJump(t *testing.T) {
	if os.Getenv("CHANMQ_CLOCK_TESTS") != "1" {
		t.Skip("steps the system clock; set CHANMQ_CLOCK_TESTS=1 (as root) to run it")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to set CLOCK_REALTIME")
	}
	const timeout, jump = 300 * time.Millisecond, time.Hour
	q := newTestQueue(t)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	recv := qtGoReceive(ctx, q)
	qtWaitParked(t, 1)

	var before unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &before); err != nil {
		t.Fatal(err)
	}
	jumpedAt := time.Now() // its monotonic reading measures the time since
	ahead := unix.NsecToTimespec(before.Nano() + int64(jump))
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ahead); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("setting CLOCK_REALTIME is not allowed here: %v", err)
		}
		t.Fatalf("ClockSettime: %v", err)
	}
	var restoreOnce sync.Once
	restore := func() {
		restoreOnce.Do(func() {
			back := unix.NsecToTimespec(before.Nano() + int64(time.Since(jumpedAt)))
			if err := unix.ClockSettime(unix.CLOCK_REALTIME, &back); err != nil {
				t.Errorf("restoring CLOCK_REALTIME: %v (the clock is an hour ahead; fix it by hand)", err)
			}
		})
	}
	defer restore()

	r := qtAwait(t, recv, "Receive across a clock jump")
	elapsed := time.Since(start)
	restore()
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("Receive = %q %v, want DeadlineExceeded", r.msg, r.err)
	}
	// The upper bound is generous for a noisy machine; a stretched deadline
	// would take an hour, and one measured on the wall clock would end at once.
	if elapsed < timeout || elapsed > timeout+5*time.Second {
		t.Fatalf("Receive ended after %v, want about %v", elapsed, timeout)
	}
	t.Logf("Receive with a %v timeout ended after %v across a %v clock step", timeout, elapsed, jump)
}
