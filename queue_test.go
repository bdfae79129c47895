//go:build linux

package chanmq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// Tests of the core Queue: round trips, order, bad input and the 32-bit
// layout. Cancellation is in cancel_test.go, many waiters and Close in
// waiters_test.go, kernel limits in limits_test.go.

// --- Round trips ---------------------------------------------------------

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
	fillQueue(t, q)
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

// --- Order and priorities ------------------------------------------------

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

// --- Bad input -------------------------------------------------------------

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
	base := uniqueName(t)
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
	name := uniqueName(t)
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
	name := uniqueName(t) // never created: options are checked first
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

// --- 32-bit layout --------------------------------------------------------------

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
