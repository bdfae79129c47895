//go:build linux

package chanmq

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/chanmq/chanmq/internal/testutil"
)

// Faults injected with real processes: peers killed with SIGKILL
// mid-stream, and queues unlinked while open. Close racing with everything
// is in closerace_test.go, descriptors across exec in exec_test.go, and
// kernel limits in limits_test.go.

func init() {
	registerChild("fault-stream-sender", childStreamSender)
	registerChild("fault-taker", childTaker)
}

// childStreamSender sends numbered messages to CHANMQ_T_NAME until killed,
// printing "ack N" once Send of message N returned nil.
func childStreamSender() int {
	q, err := Open(os.Getenv("CHANMQ_T_NAME"), WriteOnly())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	for id := uint64(0); id < 1_000_000; id++ {
		if err := q.Send(context.Background(), encodeCheckedMsg(id, checkedMsgHeader+int(id%100)), 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(out, "ack %d\n", id)
		out.Flush() // one write per acknowledged message: a kill loses no ack printed
	}
	return 0
}

// TestSenderKilledMidStreamLosesNoAcknowledgedMessage SIGKILLs a sending
// peer mid-stream. The receiver goes on working, and gets every message
// the peer saw acknowledged, intact and in order; at most the one message
// sent but not yet acknowledged when the kill came arrives as well.
func TestSenderKilledMidStreamLosesNoAcknowledgedMessage(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(10), MessageSize(128))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := q.Receiver(ctx, Buffer(2))
	var got []uint64
	var damaged []error
	record := func(b []byte) {
		id, err := decodeCheckedMsg(b)
		if err != nil {
			damaged = append(damaged, err)
		}
		got = append(got, id)
	}
	received := make(chan struct{})
	go func() {
		defer close(received)
		for b := range r.C {
			record(b)
		}
	}()

	cmd, _, _ := childCommand(t, "fault-stream-sender", "CHANMQ_T_NAME="+q.Name())
	acks, stderr := testutil.StartPiped(t, cmd)
	killAt := 100 + rand.IntN(300)
	lastAck, nAcks := int64(-1), 0
	sc := bufio.NewScanner(acks)
	for sc.Scan() {
		n, err := strconv.ParseInt(strings.TrimPrefix(sc.Text(), "ack "), 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		if n != lastAck+1 {
			t.Fatalf("ack %d after ack %d", n, lastAck)
		}
		lastAck = n
		if nAcks++; nAcks == killAt {
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed mid-stream: %v (acks %d)\nstderr:\n%s", err, nAcks, stderr)
	}

	// The receiver keeps working after its peer died.
	const marker = 1 << 40
	if err := q.Send(ctx, encodeCheckedMsg(marker, 40), 0); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the receiver to drain the queue", func() bool { return q.Len() == 0 })
	cancel()
	<-received
	if err := r.Err(); err != nil {
		t.Fatalf("receiver: %v", err)
	}
	for _, m := range drainQueue(t, q) { // what the stopped pump handed back, then the kernel queue
		record(m.Data)
	}
	for _, err := range damaged {
		t.Error(err)
	}
	if len(got) == 0 || got[len(got)-1] != marker {
		t.Fatalf("the marker sent after the kill was not received last: got %d messages", len(got))
	}
	got = got[:len(got)-1]
	for i, id := range got {
		if id != uint64(i) {
			t.Fatalf("message %d has id %d: lost or reordered (acks 0..%d)", i, id, lastAck)
		}
	}
	if n := int64(len(got)); n < lastAck+1 || n > lastAck+2 {
		t.Fatalf("received %d messages, want all %d acknowledged (+1 in flight at most)", n, lastAck+1)
	}
	t.Logf("killed after %d acks; received %d messages intact, in order", lastAck+1, len(got))
}

// childTaker receives CHANMQ_T_TAKE messages from CHANMQ_T_NAME, prints
// "took PRIO ID" for each and "ready", then waits to be killed.
func childTaker() int {
	q, err := Open(os.Getenv("CHANMQ_T_NAME"), ReadOnly())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n, _ := strconv.Atoi(os.Getenv("CHANMQ_T_TAKE"))
	for range n {
		b, prio, err := q.Receive(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		id, err := decodeCheckedMsg(b)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("took %d %d\n", prio, id)
	}
	fmt.Println("ready")
	// Park in a Receive on the (now non-empty) queue's twin: a parked
	// receive that is killed must not take anything either.
	q2, err := Open(os.Getenv("CHANMQ_T_EMPTY"), ReadOnly())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, _, err = q2.Receive(context.Background())
	fmt.Fprintln(os.Stderr, "parked receive returned:", err)
	return 1
}

// TestReceiverKilledLeavesUntakenMessagesQueued SIGKILLs a receiving peer
// that has taken some messages and is parked in Receive on another queue.
// Nothing it had not taken is lost: a new receiver gets the rest, highest
// priority first and FIFO within a priority, and a message sent to the
// queue it was parked on after the kill is still there.
func TestReceiverKilledLeavesUntakenMessagesQueued(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(10), MessageSize(64))
	empty := newTestQueue(t, MaxMessages(1), MessageSize(64))
	type sent struct {
		prio uint
		id   uint64
	}
	var msgs []sent
	for i, prio := range []uint{3, 7, 1, 7, 0, 5, 3, 32767, 1, 5} {
		msgs = append(msgs, sent{prio, uint64(i)})
		if err := q.Send(t.Context(), encodeCheckedMsg(uint64(i), 20+i), prio); err != nil {
			t.Fatal(err)
		}
	}
	// The kernel's order: priority down, then FIFO.
	want := slices.Clone(msgs)
	slices.SortStableFunc(want, func(a, b sent) int { return int(b.prio) - int(a.prio) })
	const take = 4

	cmd, _, _ := childCommand(t, "fault-taker", "CHANMQ_T_NAME="+q.Name(), "CHANMQ_T_EMPTY="+empty.Name(), "CHANMQ_T_TAKE="+strconv.Itoa(take))
	out, stderr := testutil.StartPiped(t, cmd)
	var took []sent
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "ready" {
			break
		}
		var s sent
		if _, err := fmt.Sscanf(sc.Text(), "took %d %d", &s.prio, &s.id); err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		took = append(took, s)
	}
	// The child is now on its way to (or parked in) Receive on empty.
	_ = cmd.Process.Signal(syscall.SIGKILL)
	for sc.Scan() {
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("child: %v\nstderr:\n%s", err, stderr)
	}
	if !slices.Equal(took, want[:take]) {
		t.Fatalf("child took %v, want the first %d in priority order %v", took, take, want[:take])
	}

	q2, err := Open(q.Name(), ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	var rest []sent
	for _, m := range drainQueue(t, q2) {
		id, err := decodeCheckedMsg(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		rest = append(rest, sent{m.Priority, id})
	}
	if !slices.Equal(rest, want[take:]) {
		t.Fatalf("after the kill a new receiver got %v, want %v", rest, want[take:])
	}
	if err := empty.Send(t.Context(), []byte("after"), 0); err != nil {
		t.Fatal(err)
	}
	if got, _, err := empty.TryReceive(); err != nil || string(got) != "after" {
		t.Fatalf("queue the killed child was parked on: got %q, %v", got, err)
	}
}

// TestUnlinkWhileOpen unlinks a queue that two descriptors hold open: both
// keep working with each other; the name is gone; creating the name again
// makes a new, separate queue.
func TestUnlinkWhileOpen(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	name := q.Name()
	peer, err := Open(name, ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := Unlink(name); err != nil {
		t.Fatal(err)
	}

	if err := q.Send(t.Context(), []byte("old-1"), 2); err != nil {
		t.Fatalf("send on an unlinked queue: %v", err)
	}
	if got, prio, err := peer.Receive(t.Context()); err != nil || string(got) != "old-1" || prio != 2 {
		t.Fatalf("receive on an unlinked queue: %q %d %v", got, prio, err)
	}

	_, err = Open(name)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of an unlinked name without Create: %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("error does not explain: %v", err)
	}
	if err := Unlink(name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second Unlink: %v, want fs.ErrNotExist", err)
	}

	fresh, err := Open(name, Create(0o600), Exclusive(), MaxMessages(2), MessageSize(32))
	if err != nil {
		t.Fatalf("re-creating an unlinked name: %v", err)
	}
	defer func() { _ = fresh.Close(); _ = Unlink(name) }()
	if fresh.Cap() != 2 || fresh.MessageSize() != 32 {
		t.Errorf("new queue has %d x %d, want the new attributes 2 x 32", fresh.Cap(), fresh.MessageSize())
	}
	if err := fresh.Send(t.Context(), []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(t.Context(), []byte("old-2"), 0); err != nil {
		t.Fatal(err)
	}
	if got, _, err := peer.TryReceive(); err != nil || string(got) != "old-2" {
		t.Errorf("old descriptor: got %q, %v; want only the old queue's message", got, err)
	}
	if _, _, err := peer.TryReceive(); !errors.Is(err, ErrEmpty) {
		t.Errorf("old descriptor saw a message of the new queue: %v", err)
	}
	if got, _, err := fresh.TryReceive(); err != nil || string(got) != "new" {
		t.Errorf("new queue: got %q, %v; want only its own message", got, err)
	}
}
