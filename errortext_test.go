//go:build linux

package chanmq

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// Error texts that must say what happened and what to do about it, for
// the case at hand (issue 16, item 10).

func TestUnlinkMissingQueueSaysNothingToRemove(t *testing.T) {
	t.Parallel()
	name := uniqueName(t)
	err := Unlink(name)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Unlink(missing) = %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), "nothing to remove") || strings.Contains(err.Error(), "Create(") {
		t.Fatalf("Unlink(missing) says %q; want \"nothing to remove\", and no advice to create it", err)
	}
	// Open keeps its own advice.
	if _, err := Open(name); !strings.Contains(fmt.Sprint(err), "chanmq.Create(0o600)") {
		t.Fatalf("Open(missing) says %q; want the advice to Create it", err)
	}
}

func TestNewQueueOnRegularFileSaysItIsNotAQueue(t *testing.T) {
	t.Parallel()
	f, err := os.CreateTemp(t.TempDir(), "not-a-queue")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	q, err := NewQueue(f)
	if err == nil {
		_ = q.Close()
		t.Fatal("NewQueue(regular file) succeeded")
	}
	if !strings.Contains(err.Error(), "open but is not a POSIX message queue") || strings.Contains(err.Error(), "closed") {
		t.Fatalf("NewQueue(regular file) says %q; want that it is open but not a message queue, and nothing about it being closed", err)
	}
}

// TestZeroQueueSaysItIsNotOpen: every method of a zero Queue{} fails with
// an error matching fs.ErrInvalid that says to use Open; none panics, none
// touches descriptor 0, none blames a direction the Queue was never opened
// for.
func TestZeroQueueSaysItIsNotOpen(t *testing.T) {
	t.Parallel()
	var z Queue
	calls := map[string]func() error{
		"Send":           func() error { return z.Send(context.Background(), []byte("x"), 0) },
		"TrySend":        func() error { return z.TrySend([]byte("x"), 0) },
		"Receive":        func() error { _, _, err := z.Receive(context.Background()); return err },
		"TryReceive":     func() error { _, _, err := z.TryReceive(); return err },
		"ReceiveInto":    func() error { _, _, err := z.ReceiveInto(context.Background(), make([]byte, 16)); return err },
		"TryReceiveInto": func() error { _, _, err := z.TryReceiveInto(make([]byte, 16)); return err },
		"Attr":           func() error { _, err := z.Attr(); return err },
		"Close":          func() error { return z.Close() },
		"DeadLetter":     func() error { _, err := newConfig([]ReceiverOption{DeadLetter(&z)}); return err },
	}
	for name, call := range calls {
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic: %v", p)
				}
			}()
			err = call()
		}()
		switch {
		case !errors.Is(err, fs.ErrInvalid):
			t.Errorf("zero Queue %s = %v, want an error matching fs.ErrInvalid", name, err)
		case !strings.Contains(err.Error(), "not an open Queue") || !strings.Contains(err.Error(), "Open"):
			t.Errorf("zero Queue %s says %q; want \"not an open Queue\" and to use Open", name, err)
		case errors.Is(err, ErrReadOnly) || errors.Is(err, ErrWriteOnly):
			t.Errorf("zero Queue %s = %v: blames a direction", name, err)
		}
	}
	if n := z.Len(); n != 0 {
		t.Errorf("zero Queue Len = %d, want 0", n)
	}
	if z.SameQueue(&Queue{}) {
		t.Error("two zero Queues are the same kernel queue")
	}
}

// TestCreateTempRefusesPrefixWithoutSlash: CreateTemp follows Open's rule
// for names instead of adding the "/" that Open refuses to add.
func TestCreateTempRefusesPrefixWithoutSlash(t *testing.T) {
	t.Parallel()
	prefix := strings.TrimPrefix(testPrefix, "/") + "noslash-"
	q, err := CreateTemp(prefix, MaxMessages(1), MessageSize(8))
	if err == nil {
		_ = q.Close()
		_ = Unlink(q.Name())
		t.Fatalf("CreateTemp(%q) created %s", prefix, q.Name())
	}
	want := fmt.Sprintf("did you mean %q?", "/"+prefix)
	if !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), want) {
		t.Fatalf("CreateTemp(%q) = %v; want ErrInvalidName saying %s", prefix, err, want)
	}
	_, openErr := Open(strings.TrimPrefix(testPrefix, "/")+"jobs", Create(0o600))
	if !errors.Is(openErr, ErrInvalidName) {
		t.Fatalf("Open without a slash = %v; want ErrInvalidName, as for CreateTemp", openErr)
	}
}
