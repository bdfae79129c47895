//go:build linux

package chanmq

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/testutil"
)

// The code people write when they convert make(chan T) — a plain send loop,
// Ctrl-C through signal.NotifyContext, a rerun after a crash — either ends
// and accounts for every value, or fails at once saying why. These run as
// real processes, sent a real SIGINT.

func init() {
	registerChild("obvious-producer", obviousProducerChild)
	registerChild("obvious-worker", obviousWorkerChild)
}

// obviousJob is the jobs' type, as a user would write it.
type obviousJob struct {
	N int `json:"n"`
}

// obviousProducerChild is the README's producer: a fresh queue for the
// stream ($OBVIOUS_QUEUE, Create and Exclusive unless $OBVIOUS_EXISTING),
// EndOfStream, ctx from signal.NotifyContext, and the plain loop over
// $OBVIOUS_JOBS jobs, then close and Wait. It prints the jobs Wait reports
// as not queued, one per line, as "unsent N".
func obviousProducerChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := []OpenSenderOption{Create(0o600), Exclusive(), EndOfStream()}
	if os.Getenv("OBVIOUS_EXISTING") != "" {
		opts = []OpenSenderOption{EndOfStream()}
	}
	tx, err := OpenSenderOf(ctx, os.Getenv("OBVIOUS_QUEUE"), JSON[obviousJob](), opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n, _ := strconv.Atoi(os.Getenv("OBVIOUS_JOBS"))
	for i := range n {
		tx.C <- obviousJob{N: i}
	}
	close(tx.C)
	err = tx.Wait()
	var ue *UnsentError[obviousJob]
	if errors.As(err, &ue) {
		for _, j := range ue.Values {
			fmt.Println("unsent", j.N)
		}
	} else if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// obviousWorkerChild is the README's worker: Ctrl-C ends its range; it
// prints "done N" for each job, taking $OBVIOUS_WORK per job.
func obviousWorkerChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rx, err := OpenReceiverOf(ctx, os.Getenv("OBVIOUS_QUEUE"), JSON[obviousJob](), EndOfStream())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	work, _ := time.ParseDuration(os.Getenv("OBVIOUS_WORK"))
	out := bufio.NewWriter(os.Stdout)
	for job := range rx.C {
		time.Sleep(work)
		fmt.Fprintln(out, "done", job.N)
		out.Flush()
	}
	if err := rx.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// numbersAfter returns the numbers of the lines of out that start with
// word.
func numbersAfter(out, word string) []int {
	var ns []int
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), word+" "); ok {
			n, _ := strconv.Atoi(rest)
			ns = append(ns, n)
		}
	}
	return ns
}

// queuedJobs takes every message out of q and returns the job numbers,
// and how many end-of-stream markers it found.
func queuedJobs(t *testing.T, q *Queue) (jobs []int, markers int) {
	t.Helper()
	for _, m := range drainQueue(t, q) {
		if len(m.Data) == 0 {
			markers++
			continue
		}
		var j obviousJob
		if err := json.Unmarshal(m.Data, &j); err != nil {
			t.Fatalf("queued %q: %v", m.Data, err)
		}
		jobs = append(jobs, j.N)
	}
	return jobs, markers
}

// wantEachOnce fails t unless the parts together hold 0..n-1, each once.
func wantEachOnce(t *testing.T, n int, parts map[string][]int) {
	t.Helper()
	var all []int
	for _, p := range parts {
		all = append(all, p...)
	}
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("%v do not hold 0..%d each once", parts, n-1)
		}
	}
	if len(all) != n {
		t.Fatalf("%v hold %d jobs, want %d", parts, len(all), n)
	}
}

// waitExit waits for a child started with startCmd, failing t if it does
// not exit within Patience: a hang is the bug these tests are about.
func waitExit(t *testing.T, wait func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		return err
	case <-timeAfterPatience():
		t.Fatalf("the process did not exit within %v", testutil.Patience)
		return nil
	}
}

func TestCtrlCEndsAPlainSendLoopAndWaitReportsEveryValueNotQueued(t *testing.T) {
	t.Parallel()
	skipWithoutSubprocesses(t)
	const jobs = 50
	name := uniqueName(t)
	cmd, stdout, stderr := childCommand(t, "obvious-producer", "OBVIOUS_QUEUE="+name, "OBVIOUS_JOBS="+strconv.Itoa(jobs))
	wait := startCmd(t, cmd)
	var q *Queue
	testutil.WaitFor(t, "the producer to create the queue", func() bool {
		var err error
		q, err = Open(name)
		return err == nil
	})
	defer q.Close()
	// Nobody receives: the producer's loop blocks once the queue is full.
	testutil.WaitFor(t, "the queue to fill", func() bool { return q.Len() == q.Cap() })
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(t, wait); err != nil {
		t.Fatalf("producer: %v\n%s", err, stderr)
	}
	queued, markers := queuedJobs(t, q)
	unsent := numbersAfter(stdout.String(), "unsent")
	if markers != 0 || len(unsent) == 0 {
		t.Fatalf("queued %v (%d markers), reported %v: want some queued, the rest reported, no marker (the stream did not end)", queued, markers, unsent)
	}
	wantEachOnce(t, jobs, map[string][]int{"queued": queued, "reported unsent": unsent})
}

// A crashed (here: interrupted) run leaves its queue with the marker and
// the jobs no worker took. The rerun, written as the README says, fails at
// once saying so, instead of its workers ending at once on the stale
// marker while its producer waits for ever on the full queue.
func TestRerunAfterAnInterruptedStreamFailsAtOnceNamingTheMarker(t *testing.T) {
	t.Parallel()
	skipWithoutSubprocesses(t)
	const jobs = 8
	name := uniqueName(t)
	// start starts a child of role on the queue; out is what it printed.
	start := func(role string, env ...string) (cmd *exec.Cmd, wait func() error, out func() string) {
		cmd, _, _ = childCommand(t, role, append([]string{"OBVIOUS_QUEUE=" + name}, env...)...)
		var output testutil.Output // read while the child writes
		cmd.Stdout, cmd.Stderr = &output, &output
		return cmd, startCmd(t, cmd), output.String
	}
	// Run 1: the producer queues every job and the marker, then two
	// workers start and are interrupted part-way.
	_, wait, out := start("obvious-producer", "OBVIOUS_JOBS="+strconv.Itoa(jobs))
	if err := waitExit(t, wait); err != nil {
		t.Fatalf("producer: %v\n%s", err, out())
	}
	type worker struct {
		cmd  *exec.Cmd
		wait func() error
		out  func() string
	}
	var workers []worker
	for range 2 {
		cmd, wait, out := start("obvious-worker", "OBVIOUS_WORK=50ms")
		workers = append(workers, worker{cmd, wait, out})
	}
	testutil.WaitFor(t, "the workers to finish a job each", func() bool {
		return len(numbersAfter(workers[0].out(), "done")) > 0 && len(numbersAfter(workers[1].out(), "done")) > 0
	})
	for _, w := range workers {
		_ = w.cmd.Process.Signal(os.Interrupt)
	}
	done := map[string][]int{}
	for i, w := range workers {
		if err := waitExit(t, w.wait); err != nil {
			t.Fatalf("worker %d: %v\n%s", i, err, w.out())
		}
		done[fmt.Sprint("worker ", i)] = numbersAfter(w.out(), "done")
	}

	// Run 2, the same program: it must fail at once, naming the marker and
	// what to do, and must not touch the queue.
	began := time.Now()
	_, wait, out = start("obvious-producer", "OBVIOUS_JOBS="+strconv.Itoa(jobs))
	err := waitExit(t, wait)
	if err == nil || !strings.Contains(out(), "end-of-stream marker") || !strings.Contains(out(), "chanmq rm "+name) {
		t.Fatalf("rerun: %v, output %q: want a failure naming the stale end-of-stream marker and chanmq rm", err, out())
	}
	t.Logf("the rerun failed after %v: %s", time.Since(began).Round(time.Millisecond), strings.TrimSpace(out()))

	q, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	left, markers := queuedJobs(t, q)
	if markers != 1 {
		t.Fatalf("the queue holds %d end-of-stream markers, want run 1's one", markers)
	}
	done["left in the queue"] = left
	wantEachOnce(t, jobs, done)
}

// A receiver without EndOfStream that meets the marker says what it is
// and which option reads it as the end.
func TestMismatchedEndOfStreamNamesTheMarkerAndTheOption(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	tx := Of(q, JSON[obviousJob]()).Sender(context.Background(), EndOfStream())
	tx.C <- obviousJob{N: 1}
	if err := closeAndWait(tx); err != nil {
		t.Fatal(err)
	}
	rx := Of(q, JSON[obviousJob]()).Receiver(context.Background())
	if got := waitClosed(t, rx.C); len(got) != 1 {
		t.Fatalf("got %v, want the one job", got)
	}
	err := rx.Err()
	var de *DecodeError
	if !errors.As(err, &de) || len(de.Data) != 0 || !strings.Contains(err.Error(), "end-of-stream marker") || !strings.Contains(err.Error(), "EndOfStream()") {
		t.Fatalf("Err = %v, want a *DecodeError of the marker naming it and EndOfStream()", err)
	}
}

// OpenReceiver with WriteOnly and OpenSender with ReadOnly cannot work:
// they are refused at open, not later through Err or Wait.
func TestOpenPumpsRefuseTheWrongDirectionAtOpen(t *testing.T) {
	t.Parallel()
	name := newTestQueue(t).Name()
	ctx := context.Background()
	if rx, err := OpenReceiver(ctx, name, WriteOnly()); !errors.Is(err, ErrInvalidOption) || rx != nil {
		t.Errorf("OpenReceiver(WriteOnly) = %v, %v; want ErrInvalidOption and no pump", rx, err)
	}
	if tx, err := OpenSender(ctx, name, ReadOnly()); !errors.Is(err, ErrInvalidOption) || tx != nil {
		t.Errorf("OpenSender(ReadOnly) = %v, %v; want ErrInvalidOption and no pump", tx, err)
	}
	if _, err := OpenReceiverOf(ctx, name, JSON[obviousJob](), WriteOnly()); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("OpenReceiverOf(WriteOnly) = %v, want ErrInvalidOption", err)
	}
}
