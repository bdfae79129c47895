//go:build linux

package chanmq

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The no-loss stress test: sender processes push numbered messages through
// Sender pumps that are cancelled at random short intervals (re-sending
// what Wait hands back), while this process receives through Receiver
// pumps and direct Receives that are cancelled at random too. The multiset
// received must equal the multiset sent: no loss, no duplicate.

func init() {
	registerChild("stress-sender", stressSenderChild)
}

// stressMessage encodes sender id and sequence number, padded to a
// varying length so that sizes are mixed.
func stressMessage(id, seq int) []byte {
	m := make([]byte, 16+seq%32)
	binary.LittleEndian.PutUint64(m, uint64(id))
	binary.LittleEndian.PutUint64(m[8:], uint64(seq))
	for i := 16; i < len(m); i++ {
		m[i] = byte(seq + i)
	}
	return m
}

func stressSenderChild() int {
	id, _ := strconv.Atoi(os.Getenv("STRESS_ID"))
	n, _ := strconv.Atoi(os.Getenv("STRESS_N"))
	q, err := Open(os.Getenv("STRESS_QUEUE"), WriteOnly())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer q.Close()
	var retry []Message
	next, rounds := 0, 0
	for next < n || len(retry) > 0 {
		rounds++
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(2000))*time.Microsecond)
		tx := q.MessageSender(ctx, Buffer(rand.IntN(4)))
	feed:
		for next < n || len(retry) > 0 {
			var m Message
			if len(retry) > 0 {
				m = retry[0]
			} else {
				m = Message{Data: stressMessage(id, next), Priority: uint(next % 4)}
			}
			select {
			case tx.C <- m:
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
		var ue *UnsentError[Message]
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

func TestStressNoLossAcrossProcessesWithRandomCancels(t *testing.T) {
	senders, perSender := 2, 100_000
	if raceEnabled || testing.Short() {
		perSender = 5_000
	}
	q := newTestQueue(t, MaxMessages(10), MessageSize(64))

	var wg sync.WaitGroup
	outputs := make([]string, senders)
	errs := make(chan error, senders)
	for id := range senders {
		cmd, stdout, stderr := childCommand(t, "stress-sender",
			"STRESS_ID="+strconv.Itoa(id), "STRESS_N="+strconv.Itoa(perSender), "STRESS_QUEUE="+q.Name())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cmd.Wait(); err != nil {
				errs <- fmt.Errorf("sender %d: %v\n%s", id, err, stderr)
			}
			outputs[id] = stdout.String()
		}()
	}

	seen := make([][]bool, senders)
	for i := range seen {
		seen[i] = make([]bool, perSender)
	}
	total, dups, pumps, direct := 0, 0, 0, 0
	record := func(m []byte) {
		id, seq := int(binary.LittleEndian.Uint64(m)), int(binary.LittleEndian.Uint64(m[8:]))
		if id >= senders || seq >= perSender || string(m) != string(stressMessage(id, seq)) {
			t.Fatalf("corrupt message %x", m)
		}
		if seen[id][seq] {
			dups++
		}
		seen[id][seq] = true
		total++
	}
	deadline := time.Now().Add(5 * time.Minute)
	for total < senders*perSender {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d before the deadline", total, senders*perSender)
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(2000))*time.Microsecond)
		if rand.IntN(8) == 0 {
			// A direct Receive must see what a stopped pump kept.
			if m, _, err := q.Receive(ctx); err == nil {
				record(m)
				direct++
			}
			cancel()
			continue
		}
		pumps++
		rx := q.Receiver(ctx, Buffer(rand.IntN(4)))
		for m := range rx.C {
			record(m)
		}
		cancel()
		if err := rx.Err(); err != nil {
			t.Fatalf("Receiver: %v", err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, _, err := q.TryReceive(); !errors.Is(err, ErrEmpty) {
		t.Errorf("after receiving everything, TryReceive = %v, want ErrEmpty", err)
	}
	missing := 0
	for id := range seen {
		for _, ok := range seen[id] {
			if !ok {
				missing++
			}
		}
	}
	t.Logf("sent %d, received %d (%d via %d receive pumps, %d via direct Receive), duplicates %d, missing %d; senders: %q",
		senders*perSender, total, total-direct, pumps, direct, dups, missing, outputs)
	if dups != 0 || missing != 0 || total != senders*perSender {
		t.Fatalf("lost or duplicated messages: received %d of %d, %d duplicates, %d missing", total, senders*perSender, dups, missing)
	}
}
