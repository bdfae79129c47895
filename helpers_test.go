//go:build linux

package chanmq

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/mqueuefs"
	"github.com/chanmq/chanmq/internal/testutil"
)

// testPrefix starts the name of every queue these tests create, so that
// a run can sweep what a crashed run left behind.
const testPrefix = testutil.QueuePrefix

// newTestQueue creates a uniquely named small queue (4 messages of 128
// bytes unless opts say otherwise), closed and unlinked when t ends.
func newTestQueue(t testing.TB, opts ...OpenOption) *Queue {
	t.Helper()
	all := append([]OpenOption{MaxMessages(4), MessageSize(128)}, opts...)
	q, err := CreateTemp(testPrefix, all...)
	if err != nil {
		t.Fatalf("CreateTemp: %v", err)
	}
	t.Cleanup(func() {
		_ = q.Close()
		_ = Unlink(q.Name())
	})
	return q
}

// mqueueDir returns a directory where the mqueue filesystem of this IPC
// namespace is mounted, and a cleanup to call when done with it.
func mqueueDir() (dir string, cleanup func(), ok bool) {
	dir, cleanup, _, err := mqueuefs.Dir()
	return dir, cleanup, err == nil
}

// asOptions converts Open options to another option kind that accepts them.
func asOptions[O Option](opts []OpenOption) []O {
	out := make([]O, len(opts))
	for i, o := range opts {
		out[i] = any(o).(O)
	}
	return out
}

// carriedMessages returns the messages that err carries with their bytes:
// those of an *UndeliveredError (Close, receive pumps) and of the
// *UnsentError of a Sender or MessageSender, wherever they are in err's
// tree; nil if none.
func carriedMessages(err error) []Message {
	var out []Message
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
			return
		case *UndeliveredError:
			out = append(out, e.Messages...)
		case *UnsentError[Message]:
			out = append(out, e.Values...)
		case *UnsentError[[]byte]:
			for _, v := range e.Values {
				out = append(out, Message{Data: v})
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// fillQueue fills q with TrySend until ErrFull and returns what it sent.
func fillQueue(t testing.TB, q *Queue) [][]byte {
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

// drainQueue takes every message out of q with TryReceive, in the order
// they come out.
func drainQueue(t testing.TB, q *Queue) []Message {
	t.Helper()
	var got []Message
	for {
		m, p, err := q.TryReceive()
		if errors.Is(err, ErrEmpty) {
			return got
		}
		if err != nil {
			t.Fatalf("TryReceive: %v", err)
		}
		got = append(got, Message{Data: m, Priority: p})
	}
}

// uniqueName returns an unused queue name with the test prefix, so that
// the start-of-run sweep removes it if a crash leaves it behind.
func uniqueName(t testing.TB) string {
	t.Helper()
	return testutil.QueueName(t, testPrefix, Unlink)
}

// A test message is an 8-byte id, a CRC-32 of the rest, and a payload
// derived from the id, so a receiver can tell which message it got and
// that every byte of it is intact.
const checkedMsgHeader = 12

// encodeCheckedMsg builds message id of size bytes (at least checkedMsgHeader).
func encodeCheckedMsg(id uint64, size int) []byte {
	b := make([]byte, max(size, checkedMsgHeader))
	binary.LittleEndian.PutUint64(b, id)
	r := rand.New(rand.NewPCG(id, 0x63_68_61_6e))
	for i := checkedMsgHeader; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	binary.LittleEndian.PutUint32(b[8:], crc32.ChecksumIEEE(b[checkedMsgHeader:]))
	return b
}

// decodeCheckedMsg returns a message's id, or an error if it is damaged.
func decodeCheckedMsg(b []byte) (uint64, error) {
	if len(b) < checkedMsgHeader {
		return 0, fmt.Errorf("message of %d bytes is shorter than its header", len(b))
	}
	id := binary.LittleEndian.Uint64(b)
	if got, want := crc32.ChecksumIEEE(b[checkedMsgHeader:]), binary.LittleEndian.Uint32(b[8:]); got != want {
		return id, fmt.Errorf("message %d: checksum %08x, want %08x", id, got, want)
	}
	return id, nil
}

// recvAll reads n messages from c, failing t if they do not come within
// testutil.Patience.
func recvAll[T any](t *testing.T, c <-chan T, n int) []T {
	t.Helper()
	var got []T
	timeout := time.After(testutil.Patience)
	for len(got) < n {
		select {
		case v, ok := <-c:
			if !ok {
				t.Fatalf("channel closed after %d of %d messages", len(got), n)
			}
			got = append(got, v)
		case <-timeout:
			t.Fatalf("got %d of %d messages before the timeout", len(got), n)
		}
	}
	return got
}

// waitClosed waits until c is closed, returning whatever it still delivered.
func waitClosed[T any](t *testing.T, c <-chan T) []T {
	t.Helper()
	var rest []T
	timeout := time.After(testutil.Patience)
	for {
		select {
		case v, ok := <-c:
			if !ok {
				return rest
			}
			rest = append(rest, v)
		case <-timeout:
			t.Fatalf("channel not closed within %v", testutil.Patience)
		}
	}
}

// sendN sends n messages made with format and the message number.
func sendN(t *testing.T, q *Queue, n int, format string) [][]byte {
	t.Helper()
	var sent [][]byte
	for i := range n {
		m := []byte(fmt.Sprintf(format, i))
		if err := q.Send(context.Background(), m, 0); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		sent = append(sent, m)
	}
	return sent
}

// receiverHoldingAll sends n messages and starts a Receiver with room for
// n-1 in C's buffer, then waits until the pump has taken every message
// from the kernel: n-1 in the buffer, one in its hand.
func receiverHoldingAll(t *testing.T, ctx context.Context, q *Queue, n int, format string) ([][]byte, *Receiver) {
	t.Helper()
	sent := sendN(t, q, n, format)
	rx := q.Receiver(ctx, Buffer(n-1))
	testutil.WaitFor(t, "the pump to take every message", func() bool { return q.Len() == 0 })
	return sent, rx
}

// tryReceiveN takes n messages from q without waiting, failing t if any is missing.
func tryReceiveN(t *testing.T, q *Queue, n int) [][]byte {
	t.Helper()
	var got [][]byte
	for range n {
		m, _, err := q.TryReceive()
		if err != nil {
			t.Fatalf("TryReceive after %d of %d: %v", len(got), n, err)
		}
		got = append(got, m)
	}
	return got
}

// checkSameMessages fails t unless got equals want, in order.
func checkSameMessages(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("message %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// closeAndWait closes s.C and returns s.Wait(), as a program does when it
// has sent everything; a stopped pump's goroutine ends only then.
func closeAndWait[T any](s *SenderOf[T]) error {
	close(s.C)
	return s.Wait()
}
