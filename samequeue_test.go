//go:build linux

package chanmq

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/testutil"
	"golang.org/x/sys/unix"
)

// Two handles on one kernel queue are told apart from two queues by the
// kernel's identity of their descriptors (issue 15: DeadLetter accepted
// another handle on the pump's own queue).

func TestSameKernelQueue(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	other := newTestQueue(t)
	again, err := Open(q.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = again.Close() })

	// A NewQueue-adopted duplicate of q's descriptor.
	dup, err := unix.FcntlInt(uintptr(q.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(dup), "inherited")
	adopted, err := NewQueue(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adopted.Close() })

	for _, c := range []struct {
		label string
		a, b  *Queue
		want  bool
	}{
		{"a Queue and itself", q, q, true},
		{"two Opens of one name", q, again, true},
		{"the other way round", again, q, true},
		{"a Queue and its NewQueue duplicate", q, adopted, true},
		{"two queues", q, other, false},
		{"a Queue and nil", q, nil, false},
		{"nil and a Queue", nil, q, false},
	} {
		if got := c.a.SameQueue(c.b); got != c.want {
			t.Errorf("%s: SameQueue = %v, want %v", c.label, got, c.want)
		}
		if got := c.a.SameQueue(c.b); got != c.want {
			t.Errorf("%s: SameQueue = %v, want %v", c.label, got, c.want)
		}
	}

	// A queue unlinked and created again under the same name is another
	// queue, although the name is the same.
	name := other.Name()
	if err := Unlink(name); err != nil {
		t.Fatal(err)
	}
	recreated, err := Open(name, Create(0o600), MaxMessages(4), MessageSize(128))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = recreated.Close() })
	if other.SameQueue(recreated) || recreated.SameQueue(other) {
		t.Error("a queue unlinked and created again under its name is the same as the old one")
	}

	// A closed Queue is the same only as itself.
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	if q.SameQueue(again) || !again.SameQueue(again) {
		t.Error("a closed Queue: want the same only as itself")
	}
}

// TestDeadLetterOnAnotherHandleOfTheSameQueueIsRefused: a dead-letter
// queue that is the pump's own queue, opened again by name, would take
// each bad message back into the queue it came from, for ever. A typed
// receiver, on a Queue or opened by name, refuses it at start.
func TestDeadLetterOnAnotherHandleOfTheSameQueueIsRefused(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	dlq, err := Open(q.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dlq.Close() })
	if err := q.Send(t.Context(), []byte("not json"), 0); err != nil {
		t.Fatal(err)
	}

	check := func(label string, rx *ReceiverOf[typedJob], cancel context.CancelFunc) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- rx.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(testutil.Patience):
			cancel()
			<-done
			t.Fatalf("%s: DeadLetter(another handle on the same queue) was accepted: the pump ran", label)
		}
		if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "DeadLetter") {
			t.Fatalf("%s: Wait = %v, want ErrInvalidOption naming DeadLetter", label, err)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	check("Of(q).Receiver", Of(q, JSON[typedJob]()).Receiver(ctx, DeadLetter(dlq)), cancel)

	rx, err := OpenReceiverOf(ctx, q.Name(), JSON[typedJob](), DeadLetter(dlq))
	if err == nil {
		check("OpenReceiverOf", rx, cancel)
	} else if !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("OpenReceiverOf = %v, want ErrInvalidOption", err)
	}

	// The bad message was never taken.
	if m, _, err := q.TryReceive(); err != nil || string(m) != "not json" {
		t.Fatalf("queue after the refusals: %q, %v; want the message untouched", m, err)
	}
}
