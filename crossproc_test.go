//go:build linux

package chanmq

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chanmq/chanmq/internal/testutil"
)

// Cross-process tests: the test binary re-executes itself as a peer (see
// registerChild in helpers_test.go). Child roles here start with "queue-";
// their parameters come in CHANMQ_QT_* environment variables.

const (
	cpEnvQueue = "CHANMQ_QT_QUEUE" // queue name
	cpEnvN     = "CHANMQ_QT_N"     // message count
	cpEnvFD    = "CHANMQ_QT_FD"    // a descriptor number
)

// childPatience bounds a child's blocking calls, so that a child whose
// parent failed ends, after the parent gave up, instead of hanging.
const childPatience = 2 * testutil.Patience

func init() {
	registerChild("queue-send-mixed", cpChildSendMixed)
	registerChild("queue-receive-checksum", cpChildReceiveChecksum)
	registerChild("queue-adopt-fd3", cpChildAdoptFD3)
}

// cpPriorities are the priorities the cross-process messages cycle through.
var cpPriorities = []uint{0, 1, 7, 1000, MaxPriority}

// cpMessage returns message i of a cross-process stream, a checked
// message (see encodeCheckedMsg) of 12 to 111 bytes (the test queue takes
// 128), and its priority.
func cpMessage(i int) ([]byte, uint) {
	return encodeCheckedMsg(uint64(i), checkedMsgHeader+(i*37)%100), cpPriorities[i%len(cpPriorities)]
}

// cpLedger checks a received stream of cpMessages: every message intact,
// each received once, FIFO within each priority.
type cpLedger struct {
	n        int
	seen     map[int]bool
	lastSeq  map[uint]int
	sumInput [][]byte // "seq|prio|bytes" records, for the checksum
}

func newCPLedger(n int) *cpLedger {
	return &cpLedger{n: n, seen: map[int]bool{}, lastSeq: map[uint]int{}}
}

func (l *cpLedger) add(msg []byte, prio uint) error {
	id, err := decodeCheckedMsg(msg)
	if err != nil {
		return err
	}
	seq := int(id)
	if seq < 0 || seq >= l.n {
		return fmt.Errorf("sequence number %d out of range", seq)
	}
	want, wantPrio := cpMessage(seq)
	if !bytes.Equal(msg, want) || prio != wantPrio {
		return fmt.Errorf("message %d: got %d bytes prio %d, want %d bytes prio %d (or bytes differ)", seq, len(msg), prio, len(want), wantPrio)
	}
	if l.seen[seq] {
		return fmt.Errorf("message %d received twice", seq)
	}
	l.seen[seq] = true
	if last, ok := l.lastSeq[prio]; ok && last > seq {
		return fmt.Errorf("priority %d: message %d after %d, not FIFO", prio, seq, last)
	}
	l.lastSeq[prio] = seq
	l.sumInput = append(l.sumInput, cpRecord(seq, msg, prio))
	return nil
}

func (l *cpLedger) complete() error {
	if len(l.seen) != l.n {
		return fmt.Errorf("received %d distinct messages, want %d", len(l.seen), l.n)
	}
	return nil
}

// checksum is independent of the order in which priorities interleaved.
func (l *cpLedger) checksum() string { return cpChecksum(l.sumInput) }

func cpRecord(seq int, msg []byte, prio uint) []byte {
	return fmt.Appendf(nil, "%d|%d|%x", seq, prio, msg)
}

func cpChecksum(records [][]byte) string {
	sorted := slices.Clone(records)
	slices.SortFunc(sorted, bytes.Compare)
	h := sha256.New()
	for _, r := range sorted {
		h.Write(r)
		h.Write([]byte{'\n'})
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func cpExpectedChecksum(n int) string {
	var recs [][]byte
	for i := range n {
		m, p := cpMessage(i)
		recs = append(recs, cpRecord(i, m, p))
	}
	return cpChecksum(recs)
}

func cpChildFail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	return 1
}

// cpChildSendMixed sends CHANMQ_QT_N cpMessages to CHANMQ_QT_QUEUE.
func cpChildSendMixed() int {
	n, _ := strconv.Atoi(os.Getenv(cpEnvN))
	q, err := Open(os.Getenv(cpEnvQueue), WriteOnly())
	if err != nil {
		return cpChildFail("open: %v", err)
	}
	defer q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), childPatience)
	defer cancel()
	for i := range n {
		m, p := cpMessage(i)
		if err := q.Send(ctx, m, p); err != nil {
			return cpChildFail("send %d: %v", i, err)
		}
	}
	return 0
}

// cpChildReceiveChecksum receives CHANMQ_QT_N cpMessages from
// CHANMQ_QT_QUEUE, checks them, and prints their checksum.
func cpChildReceiveChecksum() int {
	n, _ := strconv.Atoi(os.Getenv(cpEnvN))
	q, err := Open(os.Getenv(cpEnvQueue), ReadOnly())
	if err != nil {
		return cpChildFail("open: %v", err)
	}
	defer q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), childPatience)
	defer cancel()
	l := newCPLedger(n)
	buf := make([]byte, q.MessageSize())
	for i := range n {
		k, p, err := q.ReceiveInto(ctx, buf)
		if err != nil {
			return cpChildFail("receive %d: %v", i, err)
		}
		if err := l.add(buf[:k], p); err != nil {
			return cpChildFail("%v", err)
		}
	}
	if err := l.complete(); err != nil {
		return cpChildFail("%v", err)
	}
	fmt.Printf("received %d checksum %s\n", n, l.checksum())
	return 0
}

func TestChildSendsParentReceivesAcrossProcesses(t *testing.T) {
	t.Parallel()
	const n = 300
	q := newTestQueue(t) // 4 slots: the child blocks while the parent drains
	cmd, _, stderr := childCommand(t, "queue-send-mixed", cpEnvQueue+"="+q.Name(), cpEnvN+"="+strconv.Itoa(n))
	wait := startCmd(t, cmd)

	ctx, cancel := context.WithTimeout(context.Background(), childPatience)
	defer cancel()
	l := newCPLedger(n)
	for i := range n {
		m, p, err := q.Receive(ctx)
		if err != nil {
			_ = cmd.Process.Kill()
			_ = wait()
			t.Fatalf("receive %d: %v\nchild stderr:\n%s", i, err, stderr)
		}
		if err := l.add(m, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr)
	}
	if err := l.complete(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.TryReceive(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("after %d messages: TryReceive = %v, want ErrEmpty", n, err)
	}
}

func TestParentSendsChildReceivesAcrossProcesses(t *testing.T) {
	t.Parallel()
	const n = 300
	q := newTestQueue(t)
	cmd, stdout, stderr := childCommand(t, "queue-receive-checksum", cpEnvQueue+"="+q.Name(), cpEnvN+"="+strconv.Itoa(n))
	wait := startCmd(t, cmd)

	ctx, cancel := context.WithTimeout(context.Background(), childPatience)
	defer cancel()
	for i := range n {
		m, p := cpMessage(i)
		if err := q.Send(ctx, m, p); err != nil {
			_ = cmd.Process.Kill()
			_ = wait()
			t.Fatalf("send %d: %v\nchild stderr:\n%s", i, err, stderr)
		}
	}
	if err := wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr)
	}
	want := fmt.Sprintf("received %d checksum %s\n", n, cpExpectedChecksum(n))
	if got := stdout.String(); got != want {
		t.Fatalf("child reported %q, want %q", got, want)
	}
}

// --- Adoption --------------------------------------------------------------------

// cpOpenRawFile opens name with a plain blocking mq_open (close-on-exec) and
// wraps the descriptor in an *os.File, as another library or a parent
// process would hand it over.
func cpOpenRawFile(t *testing.T, name string) *os.File {
	t.Helper()
	fd, err := sysOpen(name, oRdwr|oCloexec, 0, nil)
	if err != nil {
		t.Fatalf("mq_open(%s): %v", name, err)
	}
	f := os.NewFile(uintptr(fd), "raw "+name)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// cpChildAdoptFD3 adopts the queue inherited as descriptor 3, receives the
// parent's "ping" and answers "pong".
func cpChildAdoptFD3() int {
	f := os.NewFile(3, "mq")
	q, err := NewQueue(f)
	if err != nil {
		return cpChildFail("NewQueue(fd 3): %v", err)
	}
	_ = f.Close() // the Queue has its own duplicate
	defer q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), childPatience)
	defer cancel()
	m, p, err := q.Receive(ctx)
	if err != nil {
		return cpChildFail("receive: %v", err)
	}
	if string(m) != "ping" || p != 1 {
		return cpChildFail("received %q prio %d, want \"ping\" prio 1", m, p)
	}
	if err := q.Send(ctx, []byte("pong"), 2); err != nil {
		return cpChildFail("send: %v", err)
	}
	fmt.Printf("adopted %s cap %d size %d\n", q.Name(), q.Cap(), q.MessageSize())
	return 0
}

func TestNewQueueAdoptsDescriptorInheritedByChild(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	f := cpOpenRawFile(t, q.Name())
	if err := q.TrySend([]byte("ping"), 1); err != nil {
		t.Fatal(err)
	}
	cmd, stdout, stderr := childCommand(t, "queue-adopt-fd3")
	cmd.ExtraFiles = []*os.File{f} // becomes descriptor 3 in the child
	wait := startCmd(t, cmd)
	if err := wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr)
	}
	want := fmt.Sprintf("adopted %s cap %d size %d\n", q.Name(), q.Cap(), q.MessageSize())
	if stdout.String() != want {
		t.Fatalf("child reported %q, want %q", stdout, want)
	}
	if m, p, err := q.TryReceive(); err != nil || string(m) != "pong" || p != 2 {
		t.Fatalf("TryReceive = %q prio %d %v, want the child's \"pong\" prio 2", m, p, err)
	}
}

func TestNewQueueAdoptsFileInProcess(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	f := cpOpenRawFile(t, q.Name())
	a, err := NewQueue(f)
	if err != nil {
		t.Fatalf("NewQueue: %v", err)
	}
	defer a.Close()
	if a.Name() != q.Name() || a.Cap() != q.Cap() || a.MessageSize() != q.MessageSize() {
		t.Fatalf("adopted queue %s cap %d size %d, want %s cap %d size %d",
			a.Name(), a.Cap(), a.MessageSize(), q.Name(), q.Cap(), q.MessageSize())
	}
	// The adopted descriptor waits on the netpoller like an opened one.
	recv := goReceive(context.Background(), a)
	waitParked(t, 1)
	if err := q.TrySend([]byte("to adopted"), 3); err != nil {
		t.Fatal(err)
	}
	if r := await(t, recv, "Receive on adopted queue"); r.err != nil || string(r.msg) != "to adopted" || r.prio != 3 {
		t.Fatalf("adopted Receive = %q prio %d %v", r.msg, r.prio, r.err)
	}
	// Closing the adopted Queue leaves f open: NewQueue works on a duplicate.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var attrErr error
	if err := rc.Control(func(fd uintptr) { _, attrErr = sysGetAttr(int(fd)) }); err != nil || attrErr != nil {
		t.Fatalf("f after closing the adopted Queue: %v %v, want it still open", err, attrErr)
	}
}

func TestNewQueueRejectsNonQueueFiles(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	regular, err := os.CreateTemp(t.TempDir(), "not-a-queue")
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	closed, err := os.CreateTemp(t.TempDir(), "closed")
	if err != nil {
		t.Fatal(err)
	}
	_ = closed.Close()

	for _, tc := range []struct {
		label, want string
		f           *os.File
	}{
		{"pipe read end", "not a POSIX message queue", r},
		{"pipe write end", "not a POSIX message queue", w},
		{"regular file", "not a POSIX message queue", regular},
		{"closed file", "closed", closed},
		{"nil file", "invalid argument", nil},
	} {
		t.Run(tc.label, func(t *testing.T) {
			var q *Queue
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("NewQueue(%s) panicked: %v", tc.label, p)
					}
				}()
				q, err = NewQueue(tc.f)
			}()
			if err == nil {
				_ = q.Close()
				t.Fatalf("NewQueue(%s) succeeded", tc.label)
			}
			var e *Error
			if q != nil || !errors.As(err, &e) || e.Op != "adopt" {
				t.Fatalf("NewQueue(%s) = %v, %v; want nil and an *Error with Op \"adopt\"", tc.label, q, err)
			}
			if !strings.HasPrefix(err.Error(), "chanmq: adopt") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewQueue(%s) error %q, want it to say %q", tc.label, err, tc.want)
			}
		})
	}
	// The files NewQueue refused are untouched and still work.
	if _, err := w.Write([]byte("k")); err != nil {
		t.Fatalf("pipe after NewQueue: %v", err)
	}
	var b [1]byte
	if _, err := r.Read(b[:]); err != nil || b[0] != 'k' {
		t.Fatalf("pipe after NewQueue: %q %v", b, err)
	}
	if _, err := regular.WriteString("still open"); err != nil {
		t.Fatalf("regular file after NewQueue: %v", err)
	}
}
