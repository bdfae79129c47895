//go:build linux

package chanmq

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// Open with Create and sizes on a queue that exists with other sizes is
// refused (issue 16, item 7): mq_open ignores the sizes of an existing
// queue, and a queue of other sizes must not come back without a word.

func init() { registerChild("attr-mismatch-fds", childAttrMismatchFDs) }

func TestOpenExistingQueueWithOtherSizesIsErrAttrMismatch(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(4), MessageSize(128))
	name := q.Name()
	for _, tc := range []struct {
		label string
		opts  []OpenOption
		asked string // the options the error must name as asked
	}{
		{"MessageSize", []OpenOption{MessageSize(100)}, "not the MessageSize(100) asked"},
		{"MaxMessages", []OpenOption{MaxMessages(3)}, "not the MaxMessages(3) asked"},
		{"both", []OpenOption{MaxMessages(3), MessageSize(100)}, "not the MaxMessages(3) and MessageSize(100) asked"},
		{"one matches", []OpenOption{MaxMessages(4), MessageSize(100)}, "not the MessageSize(100) asked"},
		{"above the kernel limit", []OpenOption{MessageSize(1 << 30)}, fmt.Sprintf("not the MessageSize(%d) asked", 1<<30)},
	} {
		t.Run(tc.label, func(t *testing.T) {
			q2, err := Open(name, append([]OpenOption{Create(0o600)}, tc.opts...)...)
			if q2 != nil {
				_ = q2.Close()
			}
			if q2 != nil || !errors.Is(err, ErrAttrMismatch) {
				t.Fatalf("Open(existing 4 x 128, %s) = %v, %v; want ErrAttrMismatch", tc.label, q2, err)
			}
			for _, want := range []string{
				"chanmq: open " + name + ": ",
				"queue exists with other sizes: MaxMessages 4 and MessageSize 128",
				tc.asked,
				"open it without MaxMessages and MessageSize",
				"Unlink it",
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if errors.Is(err, ErrLimit) || errors.Is(err, os.ErrExist) {
				t.Errorf("error %q also matches ErrLimit or fs.ErrExist", err)
			}
		})
	}
	// The same sizes, or none, open the existing queue.
	for _, opts := range [][]OpenOption{
		{Create(0o600)},
		{Create(0o600), MaxMessages(4), MessageSize(128)},
		{Create(0o600), MessageSize(128)},
	} {
		q2, err := Open(name, opts...)
		if err != nil {
			t.Fatalf("Open(existing, same sizes) = %v", err)
		}
		if q2.Cap() != 4 || q2.MessageSize() != 128 {
			t.Errorf("opened %d x %d, want 4 x 128", q2.Cap(), q2.MessageSize())
		}
		_ = q2.Close()
	}
	if err := q.TrySend([]byte("still here"), 0); err != nil {
		t.Fatalf("the existing queue after the refused opens: %v", err)
	}
}

// childAttrMismatchFDs opens CHANMQ_T_NAME with other sizes many times and
// reports how many descriptors of that queue it holds after (the kernel
// shows an mq descriptor in /proc/self/fd as the queue's name). It runs in
// a child, where no other test opens the queue meanwhile.
func childAttrMismatchFDs() int {
	name := os.Getenv("CHANMQ_T_NAME")
	var err error
	for range 50 {
		var q *Queue
		q, err = Open(name, Create(0o600), MessageSize(100))
		if q != nil {
			_ = q.Close()
		}
	}
	open := 0
	fds, rerr := os.ReadDir("/proc/self/fd")
	if rerr != nil {
		printChildReport(childReport{Case: "mismatch", Skipped: rerr.Error()})
		return 0
	}
	for _, f := range fds {
		if target, _ := os.Readlink("/proc/self/fd/" + f.Name()); target == name {
			open++
		}
	}
	printChildErr("mismatch", err, open)
	return 0
}

// TestOpenRefusedForOtherSizesClosesItsDescriptor: each refused Open
// closes the descriptor it opened.
func TestOpenRefusedForOtherSizesClosesItsDescriptor(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(4), MessageSize(128))
	r := reportsByCase(runChildAs(t, childProcSpec{}, "attr-mismatch-fds", "CHANMQ_T_NAME="+q.Name()))["mismatch"]
	if r.Skipped != "" {
		t.Skip(r.Skipped)
	}
	if !strings.Contains(r.Err, ErrAttrMismatch.Error()) {
		t.Fatalf("child's Open = %q, want ErrAttrMismatch", r.Err)
	}
	if r.Value != 0 {
		t.Fatalf("50 refused opens left %d descriptors of the queue open, want 0", r.Value)
	}
}
