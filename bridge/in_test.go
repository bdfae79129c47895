//go:build linux

package mqbridge_test

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chanmq/chanmq"
	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/chanmq/chanmq/internal/testutil"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestInFullQueueHeldLongerThanAckWaitGivesNoDuplicate(t *testing.T) {
	t.Parallel()
	_, nc, js := startJetStream(t, jetstream.StreamConfig{Name: "FULL", Subjects: []string{"full"}})
	const n = 40
	ctx := context.Background()
	publishNumbered(t, js, "full", 0, n, 32)
	q := bridgetest.NewQueue(t, 2, 128)
	const ackWait = 300 * time.Millisecond
	in := &mqbridge.In{Queue: q, Stream: "FULL", Durable: "full", CreateConsumer: true, AckWait: ackWait,
		Prefetch: 8, Journal: filepath.Join(t.TempDir(), "in"), Log: quietLog(t)}
	stop := runInBackground(t, func(ctx context.Context) error { return in.Run(ctx, nc) })

	// Hold the queue full for many AckWaits: the prefetched messages time
	// out and are redelivered while the bridge is blocked on the queue.
	time.Sleep(8 * ackWait)
	cons, err := js.Consumer(ctx, "FULL", "full")
	if err != nil {
		t.Fatal(err)
	}
	held, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for _, m := range receiveN(t, q, n, 30*time.Second) {
		seen[msgNumber(m.Data)]++
	}
	// Anything more within a few AckWaits is a duplicate.
	late, cancel := context.WithTimeout(ctx, 4*ackWait)
	defer cancel()
	for {
		b, _, err := q.Receive(late)
		if err != nil {
			break
		}
		seen[msgNumber(b)]++
	}
	c := tally(n, seen)
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	redelivered := info.Delivered.Consumer - info.Delivered.Stream
	t.Logf("full queue held %v with AckWait %v: %v; deliveries %d for %d stream messages (%d redeliveries; %d pending redelivery while held)",
		8*ackWait, ackWait, c, info.Delivered.Consumer, info.Delivered.Stream, redelivered, held.NumRedelivered)
	if redelivered == 0 {
		// JetStream redelivers on the next pull only, and whether that pull
		// reaches the server before the acks of the first copies is timing:
		// every plain run here saw 4-5 redeliveries, -race runs saw none.
		t.Logf("no redelivery this time (timing); the no-duplicate check above still held")
	}
	if c.lost != 0 || c.duplicates != 0 {
		t.Errorf("want no loss and no duplicate: %v", c)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestInRefusesWhatTheQueueCannotTake(t *testing.T) {
	t.Parallel()
	_, nc, js := startJetStream(t, jetstream.StreamConfig{Name: "BAD", Subjects: []string{"bad"}}, jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dead"}})
	ctx := context.Background()
	adv, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.BAD.bad")
	if err != nil {
		t.Fatal(err)
	}
	pub := func(data []byte, prio string) {
		m := &nats.Msg{Subject: "bad", Data: data, Header: nats.Header{}}
		if prio != "" {
			m.Header.Set(mqbridge.PriorityHeader, prio)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	pub(payload(0, 64), "1")
	pub(payload(1, 200), "")     // larger than the queue's 128 bytes
	pub(payload(2, 64), "x")     // not a number
	pub(payload(3, 64), "40000") // above MaxPriority
	pub(payload(4, 64), "7")
	q := bridgetest.NewQueue(t, 10, 128)
	in := &mqbridge.In{Queue: q, Stream: "BAD", Durable: "bad", CreateConsumer: true, DeadLetter: "dead",
		Journal: filepath.Join(t.TempDir(), "in"), Log: quietLog(t)}
	stop := runInBackground(t, func(ctx context.Context) error { return in.Run(ctx, nc) })
	got := receiveN(t, q, 2, 10*time.Second)
	if msgNumber(got[0].Data) != 0 || got[0].Priority != 1 || msgNumber(got[1].Data) != 4 || got[1].Priority != 7 {
		t.Errorf("queue got %d (priority %d) and %d (priority %d), want 0 (1) and 4 (7)",
			msgNumber(got[0].Data), got[0].Priority, msgNumber(got[1].Data), got[1].Priority)
	}
	waitStream(t, js, "DLQ", 3, 10*time.Second)
	for seq := uint64(1); seq <= 3; seq++ {
		s, err := js.Stream(ctx, "DLQ")
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		reason := m.Header.Get(mqbridge.ReasonHeader)
		n := msgNumber(m.Data)
		want := map[int]string{1: "larger than the MessageSize 128", 2: "is not a priority", 3: "is not a priority"}[n]
		if want == "" || !strings.Contains(reason, want) {
			t.Errorf("dead letter %d: message %d, reason %q; want it to say %q", seq, n, reason, want)
		}
		// Where it came from, so that an operator can find it: message i
		// is the stream's sequence i+1.
		from := [3]string{m.Header.Get(mqbridge.StreamHeader), m.Header.Get(mqbridge.SubjectHeader), m.Header.Get(mqbridge.SequenceHeader)}
		if wantFrom := [3]string{"BAD", "bad", strconv.Itoa(n + 1)}; from != wantFrom {
			t.Errorf("dead letter %d: stream, subject and sequence %q, want %q", seq, from, wantFrom)
		}
	}
	for range 3 {
		m, err := adv.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("terminated advisory: %v", err)
		}
		if !strings.Contains(string(m.Data), `"reason"`) {
			t.Errorf("advisory without a reason: %s", m.Data)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// An In given a write-only queue cannot take back what it delivered into
// it when the queue is removed under it: Run must stop within seconds and
// say how many messages the removed queue takes with it, not go on
// sending into a queue no program can open (the command holds its queue
// read-write where it may: its test covers the move).
func TestInWithAWriteOnlyQueueSaysWhatTheRemovedQueueTakesWithIt(t *testing.T) {
	t.Parallel()
	_, nc, js := startJetStream(t, jetstream.StreamConfig{Name: "WO", Subjects: []string{"wo"}})
	ctx := context.Background()
	publishNumbered(t, js, "wo", 0, 3, 64)
	q := bridgetest.NewQueue(t, 2, 128)
	wq, err := chanmq.Open(q.Name(), chanmq.WriteOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer wq.Close()
	in := &mqbridge.In{Queue: wq, Stream: "WO", Durable: "wo", CreateConsumer: true, Journal: filepath.Join(t.TempDir(), "in"), Log: quietLog(t)}
	done := goRun(func() error { return in.Run(ctx, nc) })
	testutil.WaitFor(t, "the bridge to fill the queue", func() bool { return q.Len() == q.Cap() })
	if err := chanmq.Unlink(q.Name()); err != nil {
		t.Fatal(err)
	}
	if err := runEnded(t, done, "still sends into a removed queue"); !errors.Is(err, mqbridge.ErrQueueReplaced) || !strings.Contains(err.Error(), "cannot take back the 2 left") {
		t.Fatalf("Run = %v, want ErrQueueReplaced saying that 2 messages are left in the removed queue", err)
	}
}

// The queue the name leads to after a removal has no room, and no program
// makes any: an In moving what it delivered into the removed queue waits
// a bounded time, then logs each message it could not move with its
// bytes, and Run says so. (Not parallel: it shortens the wait.)
func TestInLogsWhatTheQueueTheNameLeadsToHasNoRoomFor(t *testing.T) {
	defer mqbridge.SetInMoveTimeout(time.Second)()
	_, nc, js := startJetStream(t, jetstream.StreamConfig{Name: "NOROOM", Subjects: []string{"noroom"}})
	publishNumbered(t, js, "noroom", 0, 3, 64)
	q := bridgetest.NewQueue(t, 2, 128) // read-write: the bridge can take back what it sent
	log, rec := newLogRecorder(t)
	in := &mqbridge.In{Queue: q, Stream: "NOROOM", Durable: "noroom", CreateConsumer: true, Journal: filepath.Join(t.TempDir(), "in"), Log: log}
	done := goRun(func() error { return in.Run(context.Background(), nc) })
	testutil.WaitFor(t, "the bridge to fill the queue", func() bool { return q.Len() == q.Cap() })
	if err := chanmq.Unlink(q.Name()); err != nil {
		t.Fatal(err)
	}
	full, err := chanmq.Open(q.Name(), chanmq.Create(0o600), chanmq.MaxMessages(1), chanmq.MessageSize(128)) // unlinked by q's cleanup
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	if err := full.TrySend([]byte("another program's"), 0); err != nil {
		t.Fatal(err)
	}
	err = runEnded(t, done, "still waits for room")
	if want := "2 could not be moved (the last: queue " + q.Name() + " stayed full for 1s)"; !errors.Is(err, mqbridge.ErrQueueReplaced) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run = %v, want ErrQueueReplaced saying %q", err, want)
	}
	for i := range 2 {
		if b64 := base64.StdEncoding.EncodeToString(payload(i, 64)); !rec.has(slog.LevelError, "base64="+b64) {
			t.Errorf("message %d is not logged with its bytes (%s)", i, b64)
		}
	}
	if l := q.Len(); l != 0 {
		t.Errorf("%d messages left in the removed queue", l)
	}
}
