//go:build linux

package chanmq

import (
	"context"
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

// The no-loss stress tests: sender processes push numbered values through
// send pumps that are cancelled at random short intervals (re-sending what
// Wait hands back), while this process receives through receive pumps and
// direct receives that are cancelled at random too. The multiset received
// must equal the multiset sent: no loss, no duplicate. The test runs for
// messages ([]byte) and for typed values (JSON).

func init() {
	registerChild("stress-sender", stressSenderChild)
	registerChild("typed-stress-sender", typedStressSenderChild)
}

// stressMessage is message seq of sender id: a checked message (see
// encodeCheckedMsg) of varying length, so that sizes are mixed.
func stressMessage(id, seq int) []byte {
	return encodeCheckedMsg(uint64(id)<<32|uint64(seq), 16+seq%32)
}

// stressJob is the typed stress test's value.
type stressJob struct {
	Sender, Seq int
	Pad         string
}

func newStressJob(id, seq int) stressJob {
	return stressJob{Sender: id, Seq: seq, Pad: strings.Repeat("p", seq%24)}
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
			func(seq int) Message { return Message{Data: stressMessage(id, seq), Priority: uint(seq % 4)} },
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

// stressRun is one run of a stress test: its sender children, and a count
// of every value received, by sender and sequence number.
type stressRun struct {
	senders, perSender int
	errs               chan error
	wg                 sync.WaitGroup
	outputs            []string
	seen               [][]int
	total              int
}

// startStress starts senders children of role, each sending perSender
// values to q.
func startStress(t *testing.T, role string, q *Queue, senders, perSender int) *stressRun {
	t.Helper()
	r := &stressRun{senders: senders, perSender: perSender, errs: make(chan error, senders), outputs: make([]string, senders), seen: make([][]int, senders)}
	for id := range senders {
		r.seen[id] = make([]int, perSender)
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

// see counts value seq of sender, or reports that no such value was sent.
func (r *stressRun) see(sender, seq int) bool {
	if sender < 0 || sender >= r.senders || seq < 0 || seq >= r.perSender {
		return false
	}
	r.seen[sender][seq]++
	r.total++
	return true
}

// receive takes values until every one sent was seen once, with receive
// pumps (one of eight times a direct receive instead) that a random
// deadline ends; it fails t if a sender fails or after five minutes. It
// returns the number of pumps and of values received directly.
func stressReceive[T any](t *testing.T, r *stressRun, receive func(context.Context) (T, uint, error), receiver func(context.Context) *ReceiverOf[T], record func(T)) (pumps, direct int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for r.total < r.senders*r.perSender {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d before the deadline", r.total, r.senders*r.perSender)
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
// those seen more than once.
func (r *stressRun) lostAndDuplicated() (missing, dups int) {
	for id := range r.seen {
		for _, n := range r.seen[id] {
			switch {
			case n == 0:
				missing++
			case n > 1:
				dups += n - 1
			}
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
	r := startStress(t, "stress-sender", q, senders, perSender)
	pumps, direct := stressReceive(t, r, q.Receive,
		func(ctx context.Context) *Receiver { return q.Receiver(ctx, Buffer(rand.IntN(4))) },
		func(m []byte) {
			id, err := decodeCheckedMsg(m)
			sender, seq := int(id>>32), int(id&(1<<32-1))
			if err != nil || !r.see(sender, seq) || string(m) != string(stressMessage(sender, seq)) {
				t.Fatalf("corrupt message %x", m)
			}
		})
	if _, _, err := q.TryReceive(); !errors.Is(err, ErrEmpty) {
		t.Errorf("after receiving everything, TryReceive = %v, want ErrEmpty", err)
	}
	missing, dups := r.lostAndDuplicated()
	t.Logf("sent %d, received %d (%d via %d receive pumps, %d via direct Receive), duplicates %d, missing %d; senders: %q",
		senders*perSender, r.total, r.total-direct, pumps, direct, dups, missing, r.outputs)
	if dups != 0 || missing != 0 || r.total != senders*perSender {
		t.Fatalf("lost or duplicated messages: received %d of %d, %d duplicates, %d missing", r.total, senders*perSender, dups, missing)
	}
}

func TestTypedStressNoLossAcrossProcessesWithRandomCancels(t *testing.T) {
	skipWithoutSubprocesses(t)
	senders, perSender := 2, 30_000
	if raceEnabled || testing.Short() {
		perSender = 3_000
	}
	q := newTestQueue(t, MaxMessages(10), MessageSize(96))
	r := startStress(t, "typed-stress-sender", q, senders, perSender)
	jobs := Of(q, JSON[stressJob]())
	pumps, direct := stressReceive(t, r, jobs.Receive,
		func(ctx context.Context) *ReceiverOf[stressJob] { return jobs.Receiver(ctx, Buffer(rand.IntN(4))) },
		func(j stressJob) {
			if !r.see(j.Sender, j.Seq) || j != newStressJob(j.Sender, j.Seq) {
				t.Fatalf("corrupt value %+v", j)
			}
		})
	missing, dups := r.lostAndDuplicated()
	t.Logf("typed: sent %d, received %d (%d via %d receive pumps, %d via direct Receive), duplicates %d, missing %d",
		senders*perSender, r.total, r.total-direct, pumps, direct, dups, missing)
	if dups != 0 || missing != 0 {
		t.Fatalf("lost or duplicated values: %d duplicates, %d missing", dups, missing)
	}
}
