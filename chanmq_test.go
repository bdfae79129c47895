//go:build linux

package chanmq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/testutil"
)

// Tests of the channel adapter: pumps, iterators, and the rule that a
// message taken out of the kernel is never lost.

func TestReceiverRangeDeliversInOrderAndEndsOnCancel(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	rx := q.Receiver(ctx)
	sent := sendN(t, q, 4, "msg %d")
	got := recvAll(t, rx.C, 4)
	for i := range sent {
		if !bytes.Equal(got[i], sent[i]) {
			t.Errorf("message %d = %q, want %q", i, got[i], sent[i])
		}
	}
	cancel()
	if err := rx.Wait(); err != nil {
		t.Errorf("Wait after cancel = %v, want nil", err)
	}
	select {
	case <-rx.Done():
	default:
		t.Error("Done not closed after Wait returned")
	}
	if rest := waitClosed(t, rx.C); len(rest) != 0 {
		t.Errorf("after cancel with an empty queue, C delivered %q", rest)
	}
	if err := rx.Err(); err != nil {
		t.Errorf("Err after cancel = %v, want nil", err)
	}
}

func TestReceiverEndsWithNilErrOnClose(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	rx := q.Receiver(context.Background())
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitClosed(t, rx.C)
	if err := rx.Err(); err != nil {
		t.Errorf("Err after Close = %v, want nil", err)
	}
}

// cancelReceiverHoldingAll is receiverHoldingAll with a Receiver that is
// cancelled once it holds every message. It returns the messages sent and
// those C still delivered (whatever the pump did not move back).
func cancelReceiverHoldingAll(t *testing.T, q *Queue, n int, format string) (sent, delivered [][]byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sent, rx := receiverHoldingAll(t, ctx, q, n, format)
	cancel()
	return sent, waitClosed(t, rx.C)
}

func TestReceiverCancelKeepsTakenMessagesForNextReceive(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sent, delivered := cancelReceiverHoldingAll(t, q, 4, "kept %d")
	checkSameMessages(t, append(delivered, tryReceiveN(t, q, len(sent)-len(delivered))...), sent)
	if _, _, err := q.TryReceive(); !errors.Is(err, ErrEmpty) {
		t.Errorf("after all messages, TryReceive err = %v, want ErrEmpty", err)
	}
}

func TestReceiverMessagesAreKeptForANewReceiver(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sent, delivered := cancelReceiverHoldingAll(t, q, 3, "handover %d")
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	rx2 := q.Receiver(ctx2)
	checkSameMessages(t, append(delivered, recvAll(t, rx2.C, len(sent)-len(delivered))...), sent)
}

func TestCloseWithStoppedReceiverPutsMessagesBack(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sent, rx := receiverHoldingAll(t, context.Background(), q, 4, "back %d")
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	delivered := waitClosed(t, rx.C)
	again, err := Open(q.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	checkSameMessages(t, append(delivered, tryReceiveN(t, again, len(sent)-len(delivered))...), sent)
}

func TestCloseOfReadOnlyQueueReturnsHeldMessagesInError(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sent := sendN(t, q, 2, "ro %d")
	ro, err := Open(q.Name(), ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	rx := ro.Receiver(context.Background(), Buffer(1))
	testutil.WaitFor(t, "the pump to take every message", func() bool { return q.Len() == 0 })
	err = ro.Close() // nobody reads C: the pump holds both messages
	if rest := waitClosed(t, rx.C); len(rest) != 0 {
		t.Fatalf("C delivered %q after Close; the pump should have taken them back", rest)
	}
	var ue *UndeliveredError
	if !errors.As(err, &ue) || !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Close err = %v, want an *UndeliveredError saying the queue is read-only", err)
	}
	var got [][]byte
	for _, m := range ue.Messages {
		got = append(got, m.Data)
	}
	checkSameMessages(t, got, sent)
}

func TestMessageReceiverDeliversPriorities(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	for i, p := range []uint{1, 7, 3} {
		if err := q.Send(context.Background(), []byte{byte(i)}, p); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rx := q.MessageReceiver(ctx)
	got := recvAll(t, rx.C, 3)
	want := []Message{{[]byte{1}, 7}, {[]byte{2}, 3}, {[]byte{0}, 1}}
	for i := range want {
		if !bytes.Equal(got[i].Data, want[i].Data) || got[i].Priority != want[i].Priority {
			t.Errorf("message %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestSenderFlushesOnCloseAndWaitReturnsNil(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(2))
	tx := q.Sender(context.Background(), Priority(5))
	const n = 20 // more than the queue holds: the pump waits for room
	go func() {
		defer close(tx.C)
		for i := range n {
			tx.C <- []byte(fmt.Sprintf("flush %d", i))
		}
	}()
	for i := range n {
		m, p, err := q.Receive(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("flush %d", i); string(m) != want || p != 5 {
			t.Errorf("got %q prio %d, want %q prio 5", m, p, want)
		}
	}
	if err := tx.Wait(); err != nil {
		t.Errorf("Wait = %v, want nil", err)
	}
}

func TestSenderBlocksWhenKernelQueueIsFull(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(1))
	ctx, cancel := context.WithCancel(context.Background())
	tx := q.Sender(ctx)
	tx.C <- []byte("fills the queue")
	tx.C <- []byte("in the pump's hand, waiting for room")
	select {
	case tx.C <- []byte("must wait"):
		t.Fatal("a send on C succeeded while the kernel queue was full and the pump busy")
	case <-time.After(100 * time.Millisecond): // a generous window for a wrong send to happen
	}
	cancel()
	close(tx.C)
	err := tx.Wait()
	var ue *UnsentError[[]byte]
	if !errors.As(err, &ue) || len(ue.Values) != 1 || string(ue.Values[0]) != "in the pump's hand, waiting for room" {
		t.Fatalf("Wait = %v, want an *UnsentError with the message in hand", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want it to match context.Canceled", err)
	}
	if n := q.Len(); n != 1 {
		t.Errorf("queue holds %d messages, want 1", n)
	}
}

func TestSenderCancelReturnsBufferedMessagesWithBytes(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(1))
	ctx, cancel := context.WithCancel(context.Background())
	tx := q.Sender(ctx, Buffer(3))
	for i := range 5 { // 1 queued, 1 in hand, 3 buffered
		tx.C <- []byte(fmt.Sprintf("b%d", i))
	}
	cancel()
	close(tx.C)
	err := tx.Wait()
	var ue *UnsentError[[]byte]
	if !errors.As(err, &ue) {
		t.Fatalf("Wait = %v, want *UnsentError", err)
	}
	queued, _, rerr := q.TryReceive()
	if rerr != nil {
		t.Fatal(rerr)
	}
	got := []string{string(queued)}
	for _, m := range ue.Values {
		got = append(got, string(m))
	}
	if want := "[b0 b1 b2 b3 b4]"; fmt.Sprint(got) != want {
		t.Errorf("queued + undelivered = %v, want %v", got, want)
	}
}

func TestSenderReportsTooLargeMessageAndKeepsGoing(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MessageSize(8))
	tx := q.Sender(context.Background())
	big := bytes.Repeat([]byte("x"), 9)
	tx.C <- []byte("ok 1")
	tx.C <- big
	tx.C <- []byte("ok 2")
	close(tx.C)
	err := tx.Wait()
	var ue *UnsentError[[]byte]
	if !errors.As(err, &ue) || len(ue.Values) != 1 || !bytes.Equal(ue.Values[0], big) {
		t.Fatalf("Wait = %v, want an *UnsentError carrying the 9-byte message", err)
	}
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("Wait = %v, want ErrMessageTooLarge", err)
	}
	for _, want := range []string{"ok 1", "ok 2"} {
		m, _, err := q.TryReceive()
		if err != nil || string(m) != want {
			t.Errorf("TryReceive = %q, %v; want %q", m, err, want)
		}
	}
}

func TestMessageSenderUsesEachMessagesPriority(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	tx := q.MessageSender(context.Background())
	tx.C <- Message{Data: []byte("low"), Priority: 1}
	tx.C <- Message{Data: []byte("high"), Priority: 9}
	close(tx.C)
	<-tx.Done()
	if err := tx.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []Message{{[]byte("high"), 9}, {[]byte("low"), 1}} {
		m, p, err := q.TryReceive()
		if err != nil || string(m) != string(want.Data) || p != want.Priority {
			t.Errorf("got %q/%d/%v, want %q/%d", m, p, err, want.Data, want.Priority)
		}
	}
}

func TestPumpsRejectInvalidOptions(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	rx := q.Receiver(context.Background(), Buffer(-1))
	waitClosed(t, rx.C)
	if err := rx.Err(); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Receiver(Buffer(-1)).Err = %v, want ErrInvalidOption", err)
	}
	tx := q.Sender(context.Background(), Priority(MaxPriority+1))
	<-tx.Done()
	close(tx.C)
	if err := tx.Wait(); !errors.Is(err, ErrInvalidOption) || !errors.Is(err, ErrPriority) {
		t.Errorf("Sender(Priority(32768)).Wait = %v, want ErrInvalidOption and ErrPriority", err)
	}
}

func TestPumpsOnWrongDirectionOrClosedQueueStopAtOnce(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	wo, err := Open(q.Name(), WriteOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer wo.Close()
	rx := wo.Receiver(context.Background())
	waitClosed(t, rx.C)
	if err := rx.Err(); !errors.Is(err, ErrWriteOnly) {
		t.Errorf("Receiver on write-only queue: Err = %v, want ErrWriteOnly", err)
	}
	ro, err := Open(q.Name(), ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := closeAndWait(ro.Sender(context.Background())); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Sender on read-only queue: Wait = %v, want ErrReadOnly", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := closeAndWait(q.Sender(context.Background())); !errors.Is(err, ErrClosed) {
		t.Errorf("Sender on closed queue: Wait = %v, want ErrClosed", err)
	}
}

func TestOpenReceiverAndOpenSenderOwnTheirQueues(t *testing.T) {
	t.Parallel()
	name := testPrefix + fmt.Sprintf("owned-%d", time.Now().UnixNano())
	t.Cleanup(func() { _ = Unlink(name) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rx, err := OpenReceiver(ctx, name, Create(0o600), MaxMessages(2), MessageSize(64), Buffer(1))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := OpenSender(context.Background(), name, Priority(2))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(tx.C)
		for i := range 5 {
			tx.C <- []byte(fmt.Sprintf("owned %d", i))
		}
	}()
	got := recvAll(t, rx.C, 5)
	if err := tx.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if string(got[4]) != "owned 4" {
		t.Errorf("last message = %q", got[4])
	}
	cancel()
	waitClosed(t, rx.C)
	if err := rx.Err(); err != nil {
		t.Errorf("Err = %v", err)
	}
}

func TestAllIteratesUntilCancelWithoutAGoroutine(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sendN(t, q, 3, "it %d")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []string
	for msg, err := range q.All(ctx) {
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("final error = %v, want context.Canceled", err)
			}
			break
		}
		got = append(got, string(msg))
		if len(got) == 3 {
			cancel()
		}
	}
	if fmt.Sprint(got) != "[it 0 it 1 it 2]" {
		t.Errorf("got %q", got)
	}
}

func TestAllBreakLeavesRemainingMessagesQueued(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sendN(t, q, 3, "brk %d")
	for msg, err := range q.Messages(context.Background()) {
		if err != nil || string(msg.Data) != "brk 0" {
			t.Fatalf("first = %q, %v", msg.Data, err)
		}
		break
	}
	if n := q.Len(); n != 2 {
		t.Errorf("Len after break = %d, want 2", n)
	}
}

func TestReceiverWaitAfterBreakKeepsMessageInHand(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sent := sendN(t, q, 3, "brk %d")
	ctx, cancel := context.WithCancel(context.Background())
	rx := q.MessageReceiver(ctx)
	if m := <-rx.C; string(m.Data) != "brk 0" {
		t.Fatalf("first message = %q", m.Data)
	}
	// Leave the loop now: the pump may already hold "brk 1".
	cancel()
	if err := rx.Wait(); err != nil {
		t.Fatalf("Wait = %v", err)
	}
	rest := waitClosed(t, rx.C)
	for range len(sent) - 1 - len(rest) {
		m, _, err := q.TryReceive()
		if err != nil {
			t.Fatalf("TryReceive: %v", err)
		}
		rest = append(rest, Message{Data: m})
	}
	if len(rest) != 2 || string(rest[0].Data) != "brk 1" || string(rest[1].Data) != "brk 2" {
		t.Errorf("after break and Wait, the rest = %v, want brk 1, brk 2", rest)
	}
}
