//go:build linux

package chanmq

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// This file injects faults with real processes: peers killed with SIGKILL
// mid-stream, queues unlinked while open, Close racing with everything,
// descriptors across exec, and every kernel limit reached on purpose.

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

func init() {
	registerChild("fault-stream-sender", childStreamSender)
	registerChild("fault-taker", childTaker)
	registerChild("fault-fds", childListQueueFDs)
	registerChild("fault-nofile", childExhaustFDs)
	registerChild("fault-limits", childQueueLimits)
	registerChild("fault-queues-max", childQueuesMax)
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
	received := make(chan struct{})
	go func() {
		defer close(received)
		for b := range r.C {
			id, err := decodeCheckedMsg(b)
			if err != nil {
				damaged = append(damaged, err)
			}
			got = append(got, id)
		}
	}()

	cmd, _, stderr := childCommand(t, "fault-stream-sender", "CHANMQ_T_NAME="+q.Name())
	cmd.Stdout = nil
	acks, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
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
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed mid-stream: %v (acks %d)\nstderr:\n%s", err, nAcks, stderr)
	}

	// The receiver keeps working after its peer died.
	const marker = 1 << 40
	if err := q.Send(ctx, encodeCheckedMsg(marker, 40), 0); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return q.Len() == 0 }, "the receiver to drain the queue")
	cancel()
	<-received
	if err := r.Err(); err != nil {
		t.Fatalf("receiver: %v", err)
	}
	for { // what the stopped pump handed back, then the kernel queue
		b, _, err := q.TryReceive()
		if errors.Is(err, ErrEmpty) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		id, err := decodeCheckedMsg(b)
		if err != nil {
			damaged = append(damaged, err)
		}
		got = append(got, id)
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

// waitUntil polls cond (every millisecond, for at most 10 s, a bound that
// is generous on purpose for a loaded machine running -race).
func waitUntil(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
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

	cmd, _, stderr := childCommand(t, "fault-taker", "CHANMQ_T_NAME="+q.Name(), "CHANMQ_T_EMPTY="+empty.Name(), "CHANMQ_T_TAKE="+strconv.Itoa(take))
	cmd.Stdout = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
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
	for {
		b, prio, err := q2.TryReceive()
		if errors.Is(err, ErrEmpty) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		id, err := decodeCheckedMsg(b)
		if err != nil {
			t.Fatal(err)
		}
		rest = append(rest, sent{prio, id})
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

// msgLedger records message ids by what happened to them, for the
// conservation check: every message sent is received, still queued in
// the kernel, or returned inside an *UndeliveredError.
type msgLedger struct {
	mu                          sync.Mutex
	sent, received, undelivered []uint64
	damaged, unexpected         []error
	nextID                      uint64
}

func (l *msgLedger) id() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nextID++
	return l.nextID
}

func (l *msgLedger) add(list *[]uint64, id uint64) {
	l.mu.Lock()
	*list = append(*list, id)
	l.mu.Unlock()
}

func (l *msgLedger) receive(b []byte) {
	id, err := decodeCheckedMsg(b)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.damaged = append(l.damaged, err)
		return
	}
	l.received = append(l.received, id)
}

// undeliveredFrom adds the messages carried by err, if any; it reports
// how many.
func (l *msgLedger) undeliveredFrom(err error) int {
	msgs := carriedMessages(err)
	for _, m := range msgs {
		id, derr := decodeCheckedMsg(m.Data)
		l.mu.Lock()
		if derr != nil {
			l.damaged = append(l.damaged, derr)
		} else {
			l.undelivered = append(l.undelivered, id)
		}
		l.mu.Unlock()
	}
	return len(msgs)
}

func (l *msgLedger) fault(err error) {
	l.mu.Lock()
	l.unexpected = append(l.unexpected, err)
	l.mu.Unlock()
}

// check compares the multiset sent with the multiset received, queued and
// undelivered.
func (l *msgLedger) check(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.damaged {
		t.Error("damaged:", err)
	}
	for _, err := range l.unexpected {
		t.Error("unexpected error:", err)
	}
	count := map[uint64]int{}
	for _, id := range l.sent {
		count[id]++
	}
	for _, list := range [][]uint64{l.received, l.undelivered} {
		for _, id := range list {
			count[id]--
		}
	}
	bad := 0
	for id, n := range count {
		if n != 0 {
			if bad++; bad <= 10 {
				t.Errorf("message %d: sent minus accounted for = %d (lost if > 0, duplicated if < 0)", id, n)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d messages not conserved (sent %d, received or queued %d, undelivered %d)", bad, len(l.sent), len(l.received), len(l.undelivered))
	}
}

// drainKernelInto receives what is left in the kernel queue called name into
// l.received, through a new descriptor.
func drainKernelInto(t testing.TB, name string, l *msgLedger) int {
	t.Helper()
	q, err := Open(name, ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	n := 0
	for {
		b, _, err := q.TryReceive()
		if errors.Is(err, ErrEmpty) {
			return n
		} else if err != nil {
			t.Fatal(err)
		}
		l.receive(b)
		n++
	}
}

// TestCloseRacesSendReceivePumpsAndClose closes a Queue at random moments
// while direct senders and receivers, a send pump and a receive pump work
// on it, and Close is called from several goroutines at once. Every round
// must end with no panic, every goroutine and pump stopped, and every
// message conserved. It is serial so it can check for leaked goroutines.
func TestCloseRacesSendReceivePumpsAndClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rounds := 300
	if testing.Short() {
		rounds = 60
	}
	base := newTestQueue(t, MaxMessages(4), MessageSize(64))
	name := base.Name()
	var l msgLedger
	closeErrs := map[string]int{}
	for round := range rounds {
		q, err := Open(name)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		expected := func(err error) bool {
			return errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled)
		}
		for range 2 { // direct senders
			wg.Go(func() {
				for {
					id := l.id()
					err := q.Send(ctx, encodeCheckedMsg(id, checkedMsgHeader+int(id%50)), uint(id%7))
					if err != nil {
						if !expected(err) {
							l.fault(err)
						}
						return
					}
					l.add(&l.sent, id)
				}
			})
		}
		for range 2 { // direct receivers
			wg.Go(func() {
				for {
					b, _, err := q.Receive(ctx)
					if err != nil {
						if !expected(err) {
							l.fault(err)
						}
						return
					}
					l.receive(b)
				}
			})
		}
		s := q.MessageSender(ctx, Buffer(round%3))
		wg.Go(func() { // feeds the send pump, then waits for it
			for {
				id := l.id()
				select {
				case s.C <- Message{Data: encodeCheckedMsg(id, checkedMsgHeader+int(id%50)), Priority: uint(id % 5)}:
					l.add(&l.sent, id)
					continue
				case <-s.Done():
				}
				break
			}
			close(s.C)
			// Wait after the last send on C: it collects what is left there.
			if err := s.Wait(); err != nil {
				if l.undeliveredFrom(err) == 0 && !expected(err) {
					l.fault(err)
				}
			}
		})
		r := q.Receiver(ctx, Buffer(round%4))
		wg.Go(func() {
			for b := range r.C {
				l.receive(b)
			}
			if err := r.Err(); err != nil {
				l.fault(err)
			}
		})
		var closeMu sync.Mutex
		for range 3 { // concurrent Closes, at random moments
			delay := time.Duration(rand.IntN(2000)) * time.Microsecond
			wg.Go(func() {
				time.Sleep(delay)
				if round%5 == 0 {
					cancel() // some rounds end with a cancel racing the Closes
				}
				if err := q.Close(); err != nil {
					closeMu.Lock()
					closeErrs[err.Error()]++
					closeMu.Unlock()
					if l.undeliveredFrom(err) == 0 {
						l.fault(err)
					}
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			panic(fmt.Sprintf("round %d: goroutines still running 30 s after Close", round))
		}
		cancel()
		if err := q.Close(); err != nil {
			t.Errorf("Close after Close: %v", err)
		}
		if _, _, err := q.Receive(t.Context()); !errors.Is(err, ErrClosed) {
			t.Errorf("Receive after Close: %v", err)
		}
		// What the rounds left in the kernel is received by the next round
		// or by the final drain.
	}
	queued := drainKernelInto(t, name, &l)
	l.check(t)
	t.Logf("%d rounds: %d messages sent; %d received in rounds, %d left queued; %d undelivered; errors from Close: %v",
		rounds, len(l.sent), len(l.received)-queued, queued, len(l.undelivered), closeErrs)
}

// childListQueueFDs prints "fd N TARGET" for every descriptor of this
// process that is one of the queues named in CHANMQ_T_NAMES.
func childListQueueFDs() int {
	names := strings.Split(os.Getenv("CHANMQ_T_NAMES"), ",")
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && slices.Contains(names, target) {
			fmt.Printf("fd %s %s\n", e.Name(), target)
		}
	}
	return 0
}

// TestDescriptorsAreCloseOnExec runs a child while this process holds
// queue descriptors (from Open and from NewQueue): the child inherits none
// of them. A control run passes one on purpose to show the child would
// see it.
func TestDescriptorsAreCloseOnExec(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	f := os.NewFile(uintptr(dupCloexec(t, q.fd)), q.Name())
	defer f.Close()
	adopted, err := NewQueue(f)
	if err != nil {
		t.Fatal(err)
	}
	defer adopted.Close()
	for _, fd := range []int{q.fd, adopted.fd} {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			t.Fatal(err)
		}
		if flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("descriptor %d has no FD_CLOEXEC", fd)
		}
		if target, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); target != q.Name() {
			t.Fatalf("/proc/self/fd/%d is %q, want %q", fd, target, q.Name())
		}
	}

	cmd, stdout, stderr := childCommand(t, "fault-fds", "CHANMQ_T_NAMES="+q.Name())
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr)
	}
	if out := stdout.String(); out != "" {
		t.Errorf("a child exec'd while the queue was open (descriptors %d and %d) inherited:\n%s", q.fd, adopted.fd, out)
	}

	// Control: a descriptor passed on purpose is seen, so the check works.
	cmd, stdout, stderr = childCommand(t, "fault-fds", "CHANMQ_T_NAMES="+q.Name())
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Run(); err != nil {
		t.Fatalf("control child: %v\n%s", err, stderr)
	}
	if want := "fd 3 " + q.Name() + "\n"; stdout.String() != want {
		t.Errorf("control child printed %q, want %q", stdout, want)
	}
}

// dupCloexec duplicates fd. The copy is close-on-exec too: a descriptor
// without it would leak into the children of every parallel test.
func dupCloexec(t testing.TB, fd int) int {
	t.Helper()
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return nfd
}

// childExhaustFDs lowers RLIMIT_NOFILE and opens CHANMQ_T_NAME until that
// fails, then reports the error.
func childExhaustFDs() int {
	lim := unix.Rlimit{Cur: 32, Max: 32}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		printChildErr("setrlimit", err, 0)
		return 0
	}
	var open []*Queue
	defer func() {
		for _, q := range open {
			_ = q.Close()
		}
	}()
	for range 100 {
		q, err := Open(os.Getenv("CHANMQ_T_NAME"))
		if err != nil {
			printChildErr("nofile", err, len(open))
			// With Create the kernel's EMFILE could also mean
			// RLIMIT_MSGQUEUE; the explanation must still be right.
			_, err = Open(os.Getenv("CHANMQ_T_NAME"), Create(0o600), MaxMessages(1), MessageSize(16))
			printChildErr("nofile-create", err, len(open))
			return 0
		}
		open = append(open, q)
	}
	printChildErr("nofile", nil, len(open))
	return 0
}

// TestFDExhaustionNamesRLIMITNOFILE opens one queue again and again in a
// child with a low RLIMIT_NOFILE: the failure matches ErrLimit and says
// RLIMIT_NOFILE and `ulimit -n`, not RLIMIT_MSGQUEUE.
func TestFDExhaustionNamesRLIMITNOFILE(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	m := reportsByCase(runChildAs(t, childProcSpec{}, "fault-nofile", "CHANMQ_T_NAME="+q.Name()))
	for _, c := range []string{"nofile", "nofile-create"} {
		r := m[c]
		switch {
		case r.Err == "":
			t.Fatalf("%s: opened %d descriptors under RLIMIT_NOFILE 32", c, r.Value)
		case !r.Limit:
			t.Errorf("%s: error does not match ErrLimit: %s", c, r.Err)
		case !strings.Contains(r.Err, "RLIMIT_NOFILE is 32") || !strings.Contains(r.Err, "ulimit -n"):
			t.Errorf("%s: error does not name RLIMIT_NOFILE, its value and `ulimit -n`: %s", c, r.Err)
		}
		t.Logf("%s, after %d opens: %s", c, r.Value, r.Err)
	}
}

// childQueueLimits, run as an unprivileged user, asks for queues beyond
// each per-queue and per-user limit and reports the errors.
func childQueueLimits() int {
	name := os.Getenv("CHANMQ_T_NAME")
	try := func(c string, value int, opts ...OpenOption) {
		q, err := Open(name, append([]OpenOption{Create(0o600), Exclusive()}, opts...)...)
		if err == nil {
			_ = q.Close()
			_ = Unlink(name)
		}
		printChildErr(c, err, value)
	}
	msgMax, msgsizeMax := readLimit("msg_max"), readLimit("msgsize_max")
	try("msg_max", msgMax, MaxMessages(msgMax+1), MessageSize(16))
	try("msgsize_max", msgsizeMax, MaxMessages(1), MessageSize(msgsizeMax+1))
	lim := unix.Rlimit{Cur: 4096, Max: 4096}
	if err := unix.Setrlimit(unix.RLIMIT_MSGQUEUE, &lim); err != nil {
		printChildReport(childReport{Case: "rlimit_msgqueue", Skipped: err.Error()})
		return 0
	}
	try("rlimit_msgqueue", 4096, MaxMessages(min(msgMax, 8)), MessageSize(1024))
	return 0
}

// TestQueueLimitsAsUnprivilegedUser asks, as nobody in a child, for queues
// above msg_max and msgsize_max and above RLIMIT_MSGQUEUE: each error
// matches ErrLimit and names the limit, its value and how to raise it.
// The child gets its own IPC namespace when it can, so nothing it does
// touches the machine's queues.
func TestQueueLimitsAsUnprivilegedUser(t *testing.T) {
	t.Parallel()
	bin := copyTestBinaryWorldExec(t)
	name := testPrefix + "limits-" + strconv.FormatUint(rand.Uint64(), 16)
	t.Cleanup(func() { _ = Unlink(name) })
	spec := childProcSpec{uid: nobodyID, bin: bin, cloneflags: unix.CLONE_NEWIPC}
	if !canCloneIPCNamespace() {
		spec.cloneflags = 0
	}
	m := reportsByCase(runChildAs(t, spec, "fault-limits", "CHANMQ_T_NAME="+name))
	for _, c := range []struct {
		key   string
		words []string
	}{
		{"msg_max", []string{"fs.mqueue.msg_max", "sysctl -w fs.mqueue.msg_max"}},
		{"msgsize_max", []string{"fs.mqueue.msgsize_max", "sysctl -w fs.mqueue.msgsize_max"}},
		{"rlimit_msgqueue", []string{"RLIMIT_MSGQUEUE", "ulimit -q", "limit is 4096 bytes"}},
	} {
		r, ok := m[c.key]
		switch {
		case !ok:
			t.Errorf("%s: child did not report", c.key)
			continue
		case r.Skipped != "":
			t.Logf("%s: skipped in the child: %s", c.key, r.Skipped)
			continue
		case r.Err == "":
			t.Errorf("%s: exceeding it succeeded", c.key)
			continue
		case !r.Limit:
			t.Errorf("%s: error does not match ErrLimit: %s", c.key, r.Err)
		}
		words := c.words
		if c.key != "rlimit_msgqueue" {
			words = append(words, "which is "+strconv.Itoa(r.Value))
		}
		for _, w := range words {
			if !strings.Contains(r.Err, w) {
				t.Errorf("%s: error does not say %q: %s", c.key, w, r.Err)
			}
		}
		t.Logf("%s: %s", c.key, r.Err)
	}
}

// canCloneIPCNamespace reports whether this process may create IPC namespaces.
func canCloneIPCNamespace() bool {
	if os.Getenv(noSubprocessEnv) != "" {
		return false
	}
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWIPC}
	return cmd.Run() == nil
}

// childQueuesMax, run as root in a new IPC namespace, lowers that
// namespace's queues_max and creates queues until that fails.
func childQueuesMax() int {
	const lowered = 3
	if err := os.WriteFile(mqueueSysctlDir+"queues_max", []byte(strconv.Itoa(lowered)), 0); err != nil {
		printChildReport(childReport{Case: "queues_max", Skipped: "cannot lower queues_max in the new IPC namespace: " + err.Error()})
		return 0
	}
	var names []string
	defer func() {
		for _, n := range names {
			_ = Unlink(n)
		}
	}()
	for i := range lowered + 2 {
		name := fmt.Sprintf("%squeues-max-%d", testPrefix, i)
		q, err := Open(name, Create(0o600), MaxMessages(1), MessageSize(16))
		if err != nil {
			printChildErr("queues_max", err, lowered)
			return 0
		}
		names = append(names, name)
		_ = q.Close()
	}
	printChildErr("queues_max", nil, len(names))
	return 0
}

// TestQueuesMaxNamesTheLimit lowers fs.mqueue.queues_max in a child's own
// IPC namespace (never the machine's, which other tests share) and creates
// queues until the kernel refuses: the error matches ErrLimit and names
// queues_max, its value and how to raise it.
func TestQueuesMaxNamesTheLimit(t *testing.T) {
	t.Parallel()
	if !canCloneIPCNamespace() {
		t.Skip("cannot create an IPC namespace, and lowering the machine's queues_max would break other tests")
	}
	r := reportsByCase(runChildAs(t, childProcSpec{cloneflags: unix.CLONE_NEWIPC}, "fault-queues-max"))["queues_max"]
	switch {
	case r.Skipped != "":
		t.Skip(r.Skipped)
	case r.Err == "":
		t.Fatalf("created %d queues with queues_max 3", r.Value)
	case !r.Limit:
		t.Errorf("error does not match ErrLimit: %s", r.Err)
	}
	for _, w := range []string{"fs.mqueue.queues_max is 3", "sysctl -w fs.mqueue.queues_max"} {
		if !strings.Contains(r.Err, w) {
			t.Errorf("error does not say %q: %s", w, r.Err)
		}
	}
	t.Logf("queues_max: %s", r.Err)
}
