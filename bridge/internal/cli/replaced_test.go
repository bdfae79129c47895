//go:build linux

package cli_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
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

// TestQueueRemovedAndCreatedAgainUnderARunningOutBridge (issue 17 item
// 17): the out bridge used to go on reading the removed queue while new
// messages sat in the new one, with no log line. It must notice, forward
// what is left in the queue it holds, and exit 1 saying why; started
// again, it forwards the new queue.
//
// The server is stopped while the queue is replaced, and the window is
// one message, so that messages are still in the old queue when the bridge
// notices: what is left must reach the stream too.
func TestQueueRemovedAndCreatedAgainUnderARunningOutBridge(t *testing.T) {
	t.Parallel()
	ts := bridgetest.StartServer(t, nil)
	_, js := ts.JetStream(t, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}})
	name := testutil.QueueName(t, bridgetest.QueuePrefix, chanmq.Unlink)
	old := openQueue(t, name, 4, 128)
	journal := t.TempDir()
	args := []string{"-server", ts.URL(), "-out", name, "-subject", "jobs.work", "-stream", "JOBS", "-window", "1", "-journal", journal}
	p := bridgetest.StartBridge(t, args...)
	p.WaitOutput(t, "stream checked")

	send(t, old, "m0")
	waitStream(t, js, 1)
	ts.Down()
	for _, m := range []string{"m1", "m2", "m3"} {
		send(t, old, m)
	}
	if err := chanmq.Unlink(name); err != nil {
		t.Fatal(err)
	}
	send(t, openQueue(t, name, 4, 128), "n0")
	p.WaitOutput(t, "forwarding what is left")
	ts.Up()

	if code := p.Exit(t); code != 1 {
		t.Fatalf("exit status %d, want 1:\n%s", code, p.Stderr)
	}
	if last := p.LastLine(); !strings.Contains(last, "level=ERROR") || !strings.Contains(last, "was removed and created again") {
		t.Fatalf("last line:\n%s\nwant the error naming the replaced queue; all of it:\n%s", last, p.Stderr)
	}
	if got, want := streamData(t, js, 4), []string{"m0", "m1", "m2", "m3"}; !slices.Equal(got, want) {
		t.Fatalf("stream holds %q, want %q (everything sent to the old queue, once)", got, want)
	}

	p = bridgetest.StartBridge(t, args...)
	waitStream(t, js, 5)
	p.Stop(t)
	if got := streamData(t, js, 5); got[4] != "n0" {
		t.Fatalf("after a restart the stream holds %q, want n0 from the new queue last", got)
	}
}

// openQueue opens name read-write, creating it (maxMsgs messages of
// msgSize bytes) if missing, and refusing it if it has other sizes; it is
// closed when t ends (and unlinked by QueueName's cleanup).
func openQueue(t *testing.T, name string, maxMsgs, msgSize int) *chanmq.Queue {
	t.Helper()
	q, err := chanmq.Open(name, chanmq.Create(0o600), chanmq.MaxMessages(maxMsgs), chanmq.MessageSize(msgSize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func send(t *testing.T, q *chanmq.Queue, m string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
	defer cancel()
	if err := q.Send(ctx, []byte(m), 0); err != nil {
		t.Fatal(err)
	}
}

// waitStream waits until stream JOBS holds at least n messages.
func waitStream(t *testing.T, js jetstream.JetStream, n uint64) {
	t.Helper()
	testutil.WaitFor(t, "the stream to hold the messages", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "JOBS")
		return err == nil && s.CachedInfo().State.Msgs >= n
	})
}

// streamData waits until stream JOBS holds n messages and returns them.
func streamData(t *testing.T, js jetstream.JetStream, n uint64) []string {
	t.Helper()
	waitStream(t, js, n)
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
	defer cancel()
	s, err := js.Stream(ctx, "JOBS")
	if err != nil {
		t.Fatal(err)
	}
	var data []string
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		data = append(data, string(m.Data))
	}
	return data
}

// The queue removed (or removed and created again) under a running
// in-bridge that delivers into it with no reader: the bridge used to go on
// sending into the removed queue, which no program can open, and to
// acknowledge each message, so what it had delivered died with it when it
// exited. It must stop pulling and sending at once, move what it delivered
// and no program took into the queue the name leads to now (creating it
// again, with the removed queue's sizes, if there is none), in their order
// and with their priorities, and exit 1 saying so; started again, it
// delivers the rest: every stream message ends in the new queue exactly
// once. What cannot be moved (the new queue's messages are too small) is
// logged with its bytes.
func TestQueueRemovedUnderARunningInBridgeLosesNothing(t *testing.T) {
	t.Parallel()
	ts := bridgetest.StartServer(t, nil)
	const n = 10
	msgs := make([]chanmq.Message, n)
	for i := range msgs {
		msgs[i] = chanmq.Message{Data: fmt.Appendf(nil, "message-%02d", i), Priority: uint(i % 3)}
	}
	for _, c := range []struct {
		name string
		// replace removes the queue named name, and maybe makes another
		// (the test's handle on which it returns, nil if none).
		replace func(t *testing.T, name string) *chanmq.Queue
		// what the name leads to afterwards, in the order it gives them
		// (the first four messages were in the removed queue)
		want []chanmq.Message
		// the bridge's last line says each of these
		says []string
		// the messages the bridge could not move, logged instead
		logged []chanmq.Message
	}{
		{
			name: "removed: the bridge creates it again",
			replace: func(t *testing.T, name string) *chanmq.Queue {
				unlink(t, name)
				return nil
			},
			want: []chanmq.Message{msgs[2], msgs[1], msgs[0], msgs[3]},
			says: []string{"was removed, so", "moved 4 messages", "which it created again (4 messages of 128 bytes, mode 0600)"},
		},
		{
			name: "removed and created again, with a message of someone else's in it",
			replace: func(t *testing.T, name string) *chanmq.Queue {
				unlink(t, name)
				q := openQueue(t, name, 6, 128)
				if err := q.TrySend([]byte("another program's"), 0); err != nil {
					t.Fatal(err)
				}
				return q
			},
			want: []chanmq.Message{msgs[2], msgs[1], {Data: []byte("another program's")}, msgs[0], msgs[3]},
			says: []string{"was removed and created again", "moved 4 messages"},
		},
		{
			name: "created again with messages too small for them: logged",
			replace: func(t *testing.T, name string) *chanmq.Queue {
				unlink(t, name)
				return openQueue(t, name, 4, 8)
			},
			says:   []string{"was removed and created again", "moved 0 messages", "4 could not be moved", "logged above with their bytes"},
			logged: []chanmq.Message{msgs[2], msgs[1], msgs[0], msgs[3]},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			stream := fmt.Sprintf("S%d", rand.Uint64())
			_, js := ts.JetStream(t, jetstream.StreamConfig{Name: stream, Subjects: []string{stream}, MaxMsgSize: 128 + 256})
			publish(t, js, stream, msgs)
			name := testutil.QueueName(t, bridgetest.QueuePrefix, chanmq.Unlink)
			old := openQueue(t, name, 4, 128)
			args := []string{"-server", ts.URL(), "-in", name, "-stream", stream, "-durable", "d", "-create-consumer", "-ack-wait", "2s",
				"-journal", t.TempDir()}
			p := bridgetest.StartBridge(t, args...)
			testutil.WaitFor(t, "the bridge to fill the queue", func() bool { return old.Len() == old.Cap() })

			now := c.replace(t, name)
			if code := p.Exit(t); code != 1 {
				t.Fatalf("exit status %d, want 1:\n%s", code, p.Stderr)
			}
			last := p.LastLine()
			for _, s := range append(c.says, "level=ERROR", "queue removed or replaced") {
				if !strings.Contains(last, s) {
					t.Errorf("the last line does not say %q:\n%s", s, last)
				}
			}
			if l := old.Len(); l != 0 {
				t.Errorf("%d messages left in the removed queue", l)
			}
			lines := strings.Split(p.Stderr.String(), "\n")
			for _, m := range c.logged {
				attrs, b64 := fmt.Sprintf(" priority=%d bytes=%d base64=", m.Priority, len(m.Data)), base64.StdEncoding.EncodeToString(m.Data)
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, attrs) && strings.Contains(l, b64) }) {
					t.Errorf("%q (priority %d) is not logged with its bytes (%s)", m.Data, m.Priority, b64)
				}
			}
			if t.Failed() {
				t.Fatalf("the bridge wrote:\n%s", p.Stderr)
			}
			if c.logged != nil {
				return
			}

			// What the name leads to now holds what the removed queue held,
			// in the same order, with the same priorities.
			if now == nil {
				now = openQueue(t, name, 4, 128) // the sizes are checked: ErrAttrMismatch
			}
			got := drain(t, now)
			if !slices.EqualFunc(got, c.want, sameMessage) {
				t.Fatalf("the queue the name leads to holds %s, want %s", show(got), show(c.want))
			}

			// Started again, the bridge delivers the rest, once.
			seen := map[string]int{}
			for _, m := range got {
				seen[string(m.Data)]++
			}
			allSeen := func(m chanmq.Message) bool {
				seen[string(m.Data)]++
				return !slices.ContainsFunc(msgs, func(m chanmq.Message) bool { return seen[string(m.Data)] == 0 })
			}
			p = bridgetest.StartBridge(t, args...)
			for _, m := range receiveUntil(t, now, allSeen) {
				if want := msgs[number(t, m.Data)]; !sameMessage(m, want) {
					t.Errorf("got %s, want %s", show([]chanmq.Message{m}), show([]chanmq.Message{want}))
				}
			}
			bridgetest.WaitAllAcked(t, js, stream, "d")
			p.Stop(t)
			for _, m := range drain(t, now) {
				seen[string(m.Data)]++
			}
			for _, m := range msgs {
				if k := seen[string(m.Data)]; k != 1 {
					t.Errorf("%s arrived %d times, want once", m.Data, k)
				}
			}
		})
	}
}

// publish publishes msgs to subject, their priorities in PriorityHeader.
func publish(t *testing.T, js jetstream.JetStream, subject string, msgs []chanmq.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
	defer cancel()
	for _, m := range msgs {
		msg := &nats.Msg{Subject: subject, Data: m.Data, Header: nats.Header{}}
		msg.Header.Set(mqbridge.PriorityHeader, strconv.FormatUint(uint64(m.Priority), 10))
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
}

// drain takes what q holds, in its order, without waiting.
func drain(t *testing.T, q *chanmq.Queue) []chanmq.Message {
	t.Helper()
	var got []chanmq.Message
	for {
		data, prio, err := q.TryReceive()
		if errors.Is(err, chanmq.ErrEmpty) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, chanmq.Message{Data: data, Priority: prio})
	}
}

// receiveUntil receives from q until done says so, within
// testutil.Patience, and returns what it received.
func receiveUntil(t *testing.T, q *chanmq.Queue, done func(chanmq.Message) bool) []chanmq.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
	defer cancel()
	var got []chanmq.Message
	for {
		data, prio, err := q.Receive(ctx)
		if err != nil {
			t.Fatalf("after %s: %v", show(got), err)
		}
		m := chanmq.Message{Data: data, Priority: prio}
		got = append(got, m)
		if done(m) {
			return got
		}
	}
}

func unlink(t *testing.T, name string) {
	t.Helper()
	if err := chanmq.Unlink(name); err != nil {
		t.Fatal(err)
	}
}

// number is i of "message-i".
func number(t *testing.T, b []byte) int {
	t.Helper()
	i, err := strconv.Atoi(strings.TrimPrefix(string(b), "message-"))
	if err != nil {
		t.Fatalf("%q is no test message", b)
	}
	return i
}

func sameMessage(a, b chanmq.Message) bool {
	return string(a.Data) == string(b.Data) && a.Priority == b.Priority
}

func show(ms []chanmq.Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "[%s p%d]", m.Data, m.Priority)
	}
	return b.String()
}
