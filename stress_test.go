//go:build linux

package chanmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The no-loss stress tests: sender processes push values through send
// pumps that are cancelled at random short intervals (re-sending what Wait
// hands back), while this process receives through receive pumps and
// direct receives that are cancelled at random too. The multiset received
// must equal the multiset sent: no loss, no duplicate. The test runs for
// messages ([]byte with priorities) and for typed values (JSON).
//
// The data is duplicate-heavy, because a pump that guessed which values it
// had delivered by comparing them would go wrong exactly there: many
// messages are identical bytes at different priorities (empty ones among
// them), and the typed values decode to one of three values while their
// bytes all differ. Counting is exact: by bytes and priority for messages,
// by the bytes each delivered value came from for typed values.

func init() {
	registerChild("stress-sender", stressSenderChild)
	registerChild("typed-stress-sender", typedStressSenderChild)
}

// stressMessage is message seq of sender id. Half are duplicates: an empty
// message, or "dup", each at all four priorities; the others are checked
// messages of varying length, so that sizes are mixed.
func stressMessage(id, seq int) Message {
	prio := uint(seq/4) % 4
	switch seq % 4 {
	case 0:
		return Message{Data: []byte{}, Priority: prio}
	case 1:
		return Message{Data: []byte("dup"), Priority: prio}
	}
	return Message{Data: encodeCheckedMsg(uint64(id)<<32|uint64(seq), 16+seq%32), Priority: prio}
}

// messageKey is what identifies a message to the count: bytes and priority.
func messageKey(data []byte, prio uint) string { return fmt.Sprintf("%x@%d", data, prio) }

// stressJob is what the typed stress senders send; a receiver decodes it
// as a stressKind, so jobs of one Kind decode equal, whatever their bytes.
type stressJob struct {
	Kind, Sender, Seq int
	Pad               string
}

type stressKind struct{ Kind int }

func newStressJob(id, seq int) stressJob {
	return stressJob{Kind: seq % 3, Sender: id, Seq: seq, Pad: strings.Repeat("p", seq%24)}
}

// stressJobKey is the bytes of job j as JSON[stressJob] encodes it.
func stressJobKey(j stressJob) string {
	b, err := JSON[stressJob]().Append(nil, j)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// stressChild runs send, in a stress sender child, with its parameters
// read from the environment and its queue open.
func stressChild(send func(id, n int, q *Queue) int) int {
	id, _ := strconv.Atoi(os.Getenv("STRESS_ID"))
	n, _ := strconv.Atoi(os.Getenv("STRESS_N"))
	q, err := Open(os.Getenv("STRESS_QUEUE"), WriteOnly())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer q.Close()
	return send(id, n, q)
}

// stressDeadline is the random short life of one pump or direct call.
func stressDeadline() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Duration(rand.IntN(2000))*time.Microsecond)
}

// stressSend sends values 0 to n-1 through one send pump after another,
// each started by pump with a context that ends at random; what a pump's
// Wait hands back is sent again, first. It reports to stdout and returns
// the child's exit code.
func stressSend[T any](n int, value func(seq int) T, pump func(ctx context.Context, round int) *SenderOf[T]) int {
	var retry []T
	next, rounds := 0, 0
	for next < n || len(retry) > 0 {
		rounds++
		ctx, cancel := stressDeadline()
		tx := pump(ctx, rounds)
	feed:
		for next < n || len(retry) > 0 {
			var v T
			if len(retry) > 0 {
				v = retry[0]
			} else {
				v = value(next)
			}
			select {
			case tx.C <- v:
				if len(retry) > 0 {
					retry = retry[1:]
				} else {
					next++
				}
			case <-tx.Done():
				break feed
			}
		}
		close(tx.C)
		err := tx.Wait()
		cancel()
		var ue *UnsentError[T]
		switch {
		case err == nil:
		case errors.As(err, &ue) && errors.Is(err, context.DeadlineExceeded):
			retry = append(ue.Values, retry...)
		default:
			fmt.Fprintln(os.Stderr, "Wait:", err)
			return 1
		}
	}
	fmt.Printf("sent %d in %d pump lifetimes\n", n, rounds)
	return 0
}

func stressSenderChild() int {
	return stressChild(func(id, n int, q *Queue) int {
		return stressSend(n,
			func(seq int) Message { return stressMessage(id, seq) },
			func(ctx context.Context, _ int) *MessageSender { return q.MessageSender(ctx, Buffer(rand.IntN(4))) })
	})
}

func typedStressSenderChild() int {
	return stressChild(func(id, n int, q *Queue) int {
		jobs := Of(q, JSON[stressJob]())
		return stressSend(n,
			func(seq int) stressJob { return newStressJob(id, seq) },
			func(ctx context.Context, round int) *SenderOf[stressJob] {
				return jobs.Sender(ctx, Buffer(rand.IntN(4)), Priority(uint(round%3)))
			})
	})
}

// stressRun is one run of a stress test: its sender children, and the
// multiset of values they send (by key) against the one received.
type stressRun struct {
	errs    chan error
	wg      sync.WaitGroup
	outputs []string
	want    map[string]int // each key sent, and how many times
	seen    map[string]int // each key received, and how many times
	sent    int
	total   int
}

// startStress starts senders children of role, each sending perSender
// values to q; key(id, seq) is the key of value seq of sender id.
func startStress(t *testing.T, role string, q *Queue, senders, perSender int, key func(id, seq int) string) *stressRun {
	t.Helper()
	r := &stressRun{errs: make(chan error, senders), outputs: make([]string, senders), want: map[string]int{}, seen: map[string]int{}, sent: senders * perSender}
	for id := range senders {
		for seq := range perSender {
			r.want[key(id, seq)]++
		}
		cmd, stdout, stderr := childCommand(t, role,
			"STRESS_ID="+strconv.Itoa(id), "STRESS_N="+strconv.Itoa(perSender), "STRESS_QUEUE="+q.Name())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := cmd.Wait(); err != nil {
				r.errs <- fmt.Errorf("sender %d: %v\n%s", id, err, stderr)
			}
			r.outputs[id] = stdout.String()
		}()
	}
	return r
}

// see counts a value received, or reports that no such value was sent.
func (r *stressRun) see(key string) bool {
	r.seen[key]++
	r.total++
	return r.want[key] > 0
}

// receive takes values until every one sent was seen once, with receive
// pumps (one of eight times a direct receive instead) that a random
// deadline ends; it fails t if a sender fails or after five minutes. It
// returns the number of pumps and of values received directly.
func stressReceive[T any](t *testing.T, r *stressRun, receive func(context.Context) (T, uint, error), receiver func(context.Context) *ReceiverOf[T], record func(T)) (pumps, direct int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for r.total < r.sent {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d before the deadline", r.total, r.sent)
		}
		select {
		case err := <-r.errs:
			t.Fatal(err)
		default:
		}
		ctx, cancel := stressDeadline()
		if rand.IntN(8) == 0 {
			// A direct receive must see what a stopped pump kept.
			if v, _, err := receive(ctx); err == nil {
				record(v)
				direct++
			}
			cancel()
			continue
		}
		pumps++
		rx := receiver(ctx)
		for v := range rx.C {
			record(v)
		}
		cancel()
		if err := rx.Err(); err != nil {
			t.Fatalf("Receiver: %v", err)
		}
	}
	r.wg.Wait()
	close(r.errs)
	for err := range r.errs {
		t.Fatal(err)
	}
	return pumps, direct
}

// lostAndDuplicated counts the values never seen and the extra copies of
// those seen more than they were sent.
func (r *stressRun) lostAndDuplicated() (missing, dups int) {
	for k, n := range r.want {
		if got := r.seen[k]; got < n {
			missing += n - got
		}
	}
	for k, got := range r.seen {
		if n := r.want[k]; got > n {
			dups += got - n
		}
	}
	return missing, dups
}

func TestStressNoLossAcrossProcessesWithRandomCancels(t *testing.T) {
	senders, perSender := 2, 100_000
	if raceEnabled || testing.Short() {
		perSender = 5_000
	}
	q := newTestQueue(t, MaxMessages(10), MessageSize(64))
	r := startStress(t, "stress-sender", q, senders, perSender, func(id, seq int) string {
		m := stressMessage(id, seq)
		return messageKey(m.Data, m.Priority)
	})
	pumps, direct := stressReceive(t, r,
		func(ctx context.Context) (Message, uint, error) {
			m, p, err := q.Receive(ctx)
			return Message{Data: m, Priority: p}, p, err
		},
		func(ctx context.Context) *MessageReceiver { return q.MessageReceiver(ctx, Buffer(rand.IntN(4))) },
		func(m Message) {
			if !r.see(messageKey(m.Data, m.Priority)) {
				t.Fatalf("a message never sent: %q at priority %d", m.Data, m.Priority)
			}
		})
	if _, _, err := q.TryReceive(); !errors.Is(err, ErrEmpty) {
		t.Errorf("after receiving everything, TryReceive = %v, want ErrEmpty", err)
	}
	missing, dups := r.lostAndDuplicated()
	t.Logf("sent %d (%d distinct), received %d (%d via %d receive pumps, %d via direct Receive), duplicates %d, missing %d; senders: %q",
		r.sent, len(r.want), r.total, r.total-direct, pumps, direct, dups, missing, r.outputs)
	if dups != 0 || missing != 0 || r.total != r.sent {
		t.Fatalf("lost or duplicated messages: received %d of %d, %d duplicates, %d missing", r.total, r.sent, dups, missing)
	}
}

// decodeLog is a codec that records the bytes of each message it decodes.
// A pump delivers values in the order it decodes them, so the i-th value
// one pump (or one direct receive) delivered came from its i-th record.
type decodeLog[T any] struct {
	Codec[T]
	mu      sync.Mutex // the pump decodes the next value while the test reads the last
	decoded [][]byte
	next    int
}

func (c *decodeLog[T]) Decode(data []byte) (T, error) {
	c.mu.Lock()
	c.decoded = append(c.decoded, append([]byte(nil), data...))
	c.mu.Unlock()
	return c.Codec.Decode(data)
}

// delivered returns the bytes of the next value delivered.
func (c *decodeLog[T]) delivered() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.decoded[c.next]
	c.next++
	return b
}

func TestTypedStressNoLossAcrossProcessesWithRandomCancels(t *testing.T) {
	skipWithoutSubprocesses(t)
	senders, perSender := 2, 30_000
	if raceEnabled || testing.Short() {
		perSender = 3_000
	}
	q := newTestQueue(t, MaxMessages(10), MessageSize(96))
	r := startStress(t, "typed-stress-sender", q, senders, perSender, func(id, seq int) string { return stressJobKey(newStressJob(id, seq)) })
	var log *decodeLog[stressKind] // of the pump or receive running now
	fresh := func() *QueueOf[stressKind] {
		log = &decodeLog[stressKind]{Codec: JSON[stressKind]()}
		return Of[stressKind](q, log)
	}
	pumps, direct := stressReceive(t, r,
		func(ctx context.Context) (stressKind, uint, error) { return fresh().Receive(ctx) },
		func(ctx context.Context) *ReceiverOf[stressKind] { return fresh().Receiver(ctx, Buffer(rand.IntN(4))) },
		func(k stressKind) {
			b := log.delivered()
			var j stressJob
			if err := json.Unmarshal(b, &j); err != nil || j.Kind != k.Kind || !r.see(string(b)) {
				t.Fatalf("a value never sent: %+v from %q", k, b)
			}
		})
	missing, dups := r.lostAndDuplicated()
	t.Logf("typed: sent %d, received %d (%d via %d receive pumps, %d via direct Receive), duplicates %d, missing %d",
		r.sent, r.total, r.total-direct, pumps, direct, dups, missing)
	if dups != 0 || missing != 0 || r.total != r.sent {
		t.Fatalf("lost or duplicated values: received %d of %d, %d duplicates, %d missing", r.total, r.sent, dups, missing)
	}
}
