//go:build linux

package chanmq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/testutil"
)

// Typed channels: values of T through a Codec, the same engine as []byte.

type typedJob struct {
	Path  string
	Width int
}

func init() {
	registerChild("typed-worker", typedWorkerChild)
}

func TestTypedSenderToReceiverEndsRangeOnClose(t *testing.T) {
	t.Parallel()
	name := newTestQueue(t).Name()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
	defer cancel()
	tx, err := OpenSenderOf(ctx, name, JSON[typedJob](), EndOfStream(), Buffer(2))
	if err != nil {
		t.Fatal(err)
	}
	rx, err := OpenReceiverOf(ctx, name, JSON[typedJob](), EndOfStream())
	if err != nil {
		t.Fatal(err)
	}
	var want, got []typedJob
	go func() {
		for i := range 50 {
			j := typedJob{Path: fmt.Sprintf("%d.png", i), Width: i}
			want = append(want, j)
			tx.C <- j
		}
		close(tx.C)
	}()
	for j := range rx.C { // ends when the marker arrives, not on cancel
		got = append(got, j)
	}
	if err := tx.Wait(); err != nil {
		t.Fatalf("sender Wait = %v", err)
	}
	if err := rx.Err(); err != nil {
		t.Fatalf("receiver Err = %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the range ended by the test's timeout, not by end of stream")
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// Every one of N competing worker processes ends its range on one
// close(tx.C) in this process, and together they took every job once.
func TestTypedEndOfStreamEndsEveryWorkerProcess(t *testing.T) {
	t.Parallel()
	skipWithoutSubprocesses(t)
	q := newTestQueue(t, MaxMessages(8))
	const workers, jobs = 3, 300
	type result struct {
		out string
		err error
	}
	results := make(chan result, workers)
	for range workers {
		cmd, stdout, stderr := childCommand(t, "typed-worker", "TYPED_QUEUE="+q.Name())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			err := cmd.Wait()
			if err != nil {
				err = fmt.Errorf("%v: %s", err, stderr)
			}
			results <- result{stdout.String(), err}
		}()
	}
	tx := Of(q, JSON[typedJob]()).Sender(context.Background(), EndOfStream())
	for i := range jobs {
		tx.C <- typedJob{Path: strconv.Itoa(i)}
	}
	close(tx.C)
	if err := tx.Wait(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	timeout := time.After(2 * testutil.Patience)
	for range workers {
		select {
		case r := <-results:
			if r.err != nil {
				t.Fatalf("worker: %v", r.err)
			}
			for _, p := range strings.Fields(r.out) {
				seen[p]++
			}
		case <-timeout:
			t.Fatal("a worker never ended its range: the marker did not reach it")
		}
	}
	for i := range jobs {
		if n := seen[strconv.Itoa(i)]; n != 1 {
			t.Errorf("job %d taken %d times, want once", i, n)
		}
	}
	if len(seen) != jobs {
		t.Errorf("workers took %d distinct jobs, want %d", len(seen), jobs)
	}
	// The marker stays, like a closed channel: a later receiver ends at once.
	m, _, err := q.TryReceive()
	if err != nil || len(m) != 0 {
		t.Fatalf("after the workers: TryReceive = %q, %v; want the zero-length marker", m, err)
	}
}

// typedWorkerChild ranges over jobs until end of stream and prints them.
func typedWorkerChild() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testutil.Patience)
	defer cancel()
	rx, err := OpenReceiverOf(ctx, os.Getenv("TYPED_QUEUE"), JSON[typedJob](), EndOfStream())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for job := range rx.C {
		fmt.Println(job.Path)
	}
	if err := rx.Err(); err != nil || ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "ended without end of stream:", err, ctx.Err())
		return 1
	}
	return 0
}

// A message that fails to decode stops the pump by default, with an error
// carrying its bytes and priority; the values before it were delivered.
func TestTypedDecodeFailureStopsThePumpWithTheMessage(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	jobs := Of(q, JSON[typedJob]())
	if err := jobs.Send(context.Background(), typedJob{Path: "good"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(context.Background(), []byte("{not json"), 0); err != nil {
		t.Fatal(err)
	}
	rx := jobs.Receiver(context.Background())
	got := waitClosed(t, rx.C)
	var de *DecodeError
	if len(got) != 1 || got[0].Path != "good" || !errors.As(rx.Err(), &de) || string(de.Data) != "{not json" || de.Priority != 0 {
		t.Fatalf("got %v, Err %v; want the good job, then a *DecodeError holding %q", got, rx.Err(), "{not json")
	}
	var se *json.SyntaxError
	if !errors.As(rx.Err(), &se) {
		t.Errorf("Err = %v, want it to unwrap to the codec's *json.SyntaxError", rx.Err())
	}
	if n := q.Len(); n != 0 {
		t.Errorf("%d messages left: the bad message must be in the error, not re-queued", n)
	}
	// The direct Receive returns the same kind of error.
	if err := q.Send(context.Background(), []byte("[]"), 5); err != nil {
		t.Fatal(err)
	}
	if v, _, err := jobs.Receive(context.Background()); !errors.As(err, &de) || string(de.Data) != "[]" || de.Priority != 5 || v != (typedJob{}) {
		t.Fatalf("Receive = %v, %v; want a *DecodeError holding %q priority 5", v, err, "[]")
	}
}

func TestTypedDecodeFailureHandledInPlaceOrDeadLettered(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"OnDecodeError", "DeadLetter"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			q, dlq := newTestQueue(t, MaxMessages(8)), newTestQueue(t)
			jobs := Of(q, JSON[typedJob]())
			for i, raw := range []string{`{"Path":"a"}`, `garbage`, `{"Path":"b"}`, `{"Width":"x"}`, `{"Path":"c"}`} {
				if err := q.Send(context.Background(), []byte(raw), uint(i)%2); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			var bad []Message
			opt := OnDecodeError(func(e *DecodeError) { mu.Lock(); bad = append(bad, e.Message); mu.Unlock() })
			if how == "DeadLetter" {
				opt = DeadLetter(dlq)
			}
			ctx, cancel := context.WithCancel(context.Background())
			rx := jobs.Receiver(ctx, opt)
			var paths []string
			for _, j := range recvAll(t, rx.C, 3) {
				paths = append(paths, j.Path)
			}
			cancel()
			if err := rx.Wait(); err != nil {
				t.Fatalf("Err = %v, want nil: the bad messages were handled", err)
			}
			if how == "DeadLetter" {
				for range 2 {
					m, p, err := dlq.TryReceive()
					if err != nil {
						t.Fatal(err)
					}
					bad = append(bad, Message{Data: m, Priority: p})
				}
			}
			// Priorities 0,1,0,1,0: the kernel gives the two bad ones (priority 1) first.
			if fmt.Sprint(paths) != "[a b c]" || len(bad) != 2 || string(bad[0].Data) != "garbage" || bad[0].Priority != 1 || string(bad[1].Data) != `{"Width":"x"}` || bad[1].Priority != 1 {
				t.Fatalf("delivered %v, handled %v; want [a b c] and the two bad messages unchanged with priority 1", paths, bad)
			}
		})
	}
}

// Values decoded but not taken go back as their original bytes: a field
// added by a newer peer, unknown to this T, survives.
func TestTypedValuesNotTakenGoBackAsOriginalBytes(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	newer := []string{`{"Path":"a","Width":1,"AddedLater":"keep me"}`, `{"Path":"b","Width":2,"AddedLater":[1,2]}`, `{"Path":"c","AddedLater":null,"Width":3}`}
	for _, m := range newer {
		if err := q.Send(context.Background(), []byte(m), 0); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	rx := Of(q, JSON[typedJob]()).Receiver(ctx, Buffer(2))
	testutil.WaitFor(t, "the pump to take all three", func() bool { return q.Len() == 0 })
	cancel()
	if err := rx.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil { // puts them back into the kernel queue
		t.Fatal(err)
	}
	again, err := Open(q.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	for _, want := range newer {
		got, _, err := again.TryReceive()
		if err != nil || string(got) != want {
			t.Fatalf("got %q, %v; want the original bytes %q", got, err, want)
		}
	}
}

// A typed send pump returns, as values, what it accepted and did not
// queue, with the reasons; a value that fails to encode or is too large
// is reported and the pump goes on.
func TestTypedSenderReturnsUnsentValuesAndKeepsGoingPastBadOnes(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(2), MessageSize(64))
	type sample struct{ F float64 }
	tx := Of(q, JSON[sample]()).Sender(context.Background())
	tx.C <- sample{1}
	tx.C <- sample{math.NaN()} // json cannot encode NaN
	tx.C <- sample{2}
	close(tx.C)
	var ue *UnsentError[sample]
	if err := tx.Wait(); !errors.As(err, &ue) || len(ue.Values) != 1 || !math.IsNaN(ue.Values[0].F) || !errors.Is(err, ErrEncode) {
		t.Fatalf("Wait = %v, want the NaN value back with ErrEncode", err)
	}
	if q.Len() != 2 {
		t.Fatalf("queued %d, want 2 (the pump went on past the bad value)", q.Len())
	}

	ctx, cancel := context.WithCancel(context.Background())
	big := strings.Repeat("x", 100)
	tx2 := Of(q, String()).Sender(ctx, Buffer(2), EndOfStream())
	tx2.C <- big // too large: reported, the pump goes on
	tx2.C <- ""  // the marker's bytes: refused with EndOfStream
	tx2.C <- "waits for room"
	tx2.C <- "buffered"
	cancel()
	close(tx2.C)
	var ue2 *UnsentError[string]
	err := tx2.Wait()
	if !errors.As(err, &ue2) || !errors.Is(err, ErrMessageTooLarge) || !errors.Is(err, ErrEmptyMessage) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want ErrMessageTooLarge, ErrEmptyMessage and context.Canceled", err)
	}
	if got := fmt.Sprintf("%q", ue2.Values); got != fmt.Sprintf("%q", []string{big, "", "waits for room", "buffered"}) {
		t.Fatalf("unsent %s, want every value in order", got)
	}
}

// The pump's fault and the owned Queue's Close error are both reported: a
// ReadOnly OpenReceiverOf that stops on a decode failure while holding
// buffered values cannot put them back, and says so with their bytes.
func TestReceiverReportsItsFaultAndTheCloseErrorBoth(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	for _, m := range []string{`{"Path":"a"}`, `bad`, `{"Path":"c"}`, `{"Path":"d"}`} {
		if err := q.Send(context.Background(), []byte(m), 0); err != nil {
			t.Fatal(err)
		}
	}
	rx, err := OpenReceiverOf(context.Background(), q.Name(), JSON[typedJob](), ReadOnly(), Buffer(2))
	if err != nil {
		t.Fatal(err)
	}
	if v := <-rx.C; v.Path != "a" {
		t.Fatalf("first value %+v, want a", v)
	}
	<-rx.Done() // "bad" fails when offered, with c and d read ahead behind it
	err = rx.Err()
	var de *DecodeError
	var ue *UndeliveredError
	if !errors.As(err, &de) || string(de.Data) != "bad" || !errors.As(err, &ue) || len(ue.Messages) != 2 ||
		string(ue.Messages[0].Data) != `{"Path":"c"}` || string(ue.Messages[1].Data) != `{"Path":"d"}` {
		t.Fatalf("Err = %v, want the *DecodeError of bad and an *UndeliveredError with c and d", err)
	}
	if rest := waitClosed(t, rx.C); len(rest) != 0 {
		t.Fatalf("C still delivered %v after the pump gave what it held back", rest)
	}
}

// A C or Python peer sees the end-of-stream marker as an empty message.
func TestEndOfStreamMarkerIsAnEmptyMessageAtPriorityZero(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	tx := Of(q, JSON[typedJob]()).Sender(context.Background(), EndOfStream())
	tx.C <- typedJob{Path: "last"}
	close(tx.C)
	if err := tx.Wait(); err != nil {
		t.Fatal(err)
	}
	m1, p1, _ := q.TryReceive()
	m2, p2, err := q.TryReceive()
	if string(m1) != `{"Path":"last","Width":0}` || p1 != 0 || err != nil || len(m2) != 0 || p2 != 0 {
		t.Fatalf("queue held %q/%d then %q/%d (%v); want the job, then an empty message at priority 0", m1, p1, m2, p2, err)
	}
}

// Misplaced options do not compile: the option kinds are checked by the
// compiler, not at run time.
func TestMisplacedOptionsDoNotCompile(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a program with the go command")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ call, says string }{
		{`q.Receiver(ctx, chanmq.Create(0o600))`, "does not implement chanmq.ReceiverOption (missing method acceptedByReceivers)"},
		{`q.Receiver(ctx, chanmq.Priority(1))`, "does not implement chanmq.ReceiverOption (missing method acceptedByReceivers)"},
		{`q.Sender(ctx, chanmq.OnDecodeError(nil))`, "does not implement chanmq.SenderOption (missing method acceptedBySenders)"},
		{`chanmq.Open("/q", chanmq.Buffer(1))`, "does not implement chanmq.OpenOption (missing method acceptedByOpen)"},
		{`chanmq.OpenReceiver(ctx, "/q", chanmq.Priority(1))`, "does not implement chanmq.OpenReceiverOption (missing method alsoAcceptedByOpenReceiver)"},
		{`chanmq.OpenSender(ctx, "/q", chanmq.DeadLetter(q))`, "does not implement chanmq.OpenSenderOption (missing method alsoAcceptedByOpenSender)"},
	} {
		dir := t.TempDir()
		src := fmt.Sprintf("package main\n\nimport (\n\t\"context\"\n\n\t\"github.com/chanmq/chanmq\"\n)\n\nfunc main() {\n\tctx := context.Background()\n\tvar q *chanmq.Queue\n\t_, _ = ctx, q\n\t_ = %s\n}\n", c.call)
		gomod := "module misplaced\n\ngo 1.26.0\n\nrequire github.com/chanmq/chanmq v0.0.0\n\nreplace github.com/chanmq/chanmq => " + root + "\n"
		for name, text := range map[string]string{"main.go": src, "go.mod": gomod} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sum, _ := os.ReadFile(filepath.Join(root, "go.sum"))
		_ = os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644)
		cmd := exec.Command(gobin, "vet", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte(c.says)) {
			t.Errorf("%s: compiled or failed for another reason (%v):\n%s", c.call, err, out)
		}
	}
}

// A receiver with EndOfStream on a ReadOnly queue would take the marker
// from every other receiver: it is refused at start, before taking any.
func TestEndOfStreamOnAReadOnlyReceiverIsRefused(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sendN(t, q, 1, "job %d")
	rx, err := OpenReceiverOf(context.Background(), q.Name(), JSON[typedJob](), ReadOnly(), EndOfStream())
	if err != nil {
		t.Fatal(err)
	}
	if got := waitClosed(t, rx.C); len(got) != 0 || !errors.Is(rx.Err(), ErrInvalidOption) || !errors.Is(rx.Err(), ErrReadOnly) {
		t.Fatalf("delivered %v, Err %v; want nothing and ErrInvalidOption+ErrReadOnly", got, rx.Err())
	}
	if q.Len() != 1 {
		t.Fatalf("the refused receiver took a message: %d left", q.Len())
	}
}
