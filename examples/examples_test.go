//go:build linux

// Package examples_test runs the example programs as a user would: built
// once, started as separate processes, stopped with signals, and judged by
// their output and exit status.
package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chanmq/chanmq"
	"github.com/chanmq/chanmq/internal/testutil"
	"go.uber.org/goleak"
)

// binDir holds the examples built by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, remove := testutil.BuildCommands("./receiver", "./sender", "./demo", "./workers")
	binDir = dir
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { remove() }))
}

// queueName returns a fresh queue name with the prefix every test queue
// of this repository has, removed when t ends.
func queueName(t *testing.T) string {
	t.Helper()
	return testutil.QueueName(t, testutil.QueuePrefix+"ex-", chanmq.Unlink)
}

// command returns an example's command, killed if it outlives t.
func command(t *testing.T, example string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*testutil.Patience)
	t.Cleanup(cancel)
	return exec.CommandContext(ctx, filepath.Join(binDir, example), args...)
}

// run runs an example to the end and returns its stdout; it fails t if
// the example fails.
func run(t *testing.T, example string, args ...string) string {
	t.Helper()
	cmd := command(t, example, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", example, args, err, &stdout, &stderr)
	}
	return stdout.String()
}

// start starts an example and returns a reader of its stdout.
func start(t *testing.T, example string, args ...string) (*exec.Cmd, *bufio.Reader, *bytes.Buffer) {
	t.Helper()
	cmd := command(t, example, args...)
	out, stderr := testutil.StartPiped(t, cmd)
	return cmd, out, stderr
}

// readUntil reads lines until one contains want, and returns them all.
func readUntil(t *testing.T, r *bufio.Reader, want string) string {
	t.Helper()
	var got strings.Builder
	for {
		line, err := r.ReadString('\n')
		got.WriteString(line)
		if strings.Contains(line, want) {
			return got.String()
		}
		if err != nil {
			t.Fatalf("output ended (%v) without %q:\n%s", err, want, got.String())
		}
	}
}

func TestSenderToReceiver(t *testing.T) {
	t.Parallel()
	queue := queueName(t)
	rcv, rcvOut, rcvErr := start(t, "receiver", "-queue", queue, "-n", "3")
	readUntil(t, rcvOut, "waiting for messages") // it created the queue

	sent := run(t, "sender", "-queue", queue, "-n", "3", "-interval", "10ms")
	rest, _ := io.ReadAll(rcvOut)
	if err := rcv.Wait(); err != nil {
		t.Fatalf("receiver: %v, stderr %q", err, rcvErr)
	}
	got := regexp.MustCompile(`receiver: got "message (\d) from pid \d+"`).FindAllStringSubmatch(string(rest), -1)
	if len(got) != 3 || got[0][1] != "1" || got[1][1] != "2" || got[2][1] != "3" {
		t.Errorf("receiver printed:\n%s", rest)
	}
	if !strings.Contains(string(rest), "receiver: done after 3 message(s)") {
		t.Errorf("receiver did not say it was done:\n%s", rest)
	}
	if strings.Count(sent, "sender: sent ") != 3 || !strings.Contains(sent, "sender: done: 3 message(s) queued") {
		t.Errorf("sender printed:\n%s", sent)
	}
}

// TestReceiverCtrlC stops a waiting receiver with SIGINT: exit 0, and the
// queue it created stays, with mode 0600.
func TestReceiverCtrlC(t *testing.T) {
	t.Parallel()
	queue := queueName(t)
	rcv, out, stderr := start(t, "receiver", "-queue", queue)
	readUntil(t, out, "waiting for messages")
	if err := rcv.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(out)
	if err := rcv.Wait(); err != nil {
		t.Fatalf("receiver after SIGINT: %v, stderr %q", err, stderr)
	}
	if !strings.Contains(string(rest), "done after 0 message(s)") {
		t.Errorf("receiver printed %q after SIGINT", rest)
	}
	q, err := chanmq.Open(queue, chanmq.ReadOnly())
	if err != nil {
		t.Fatalf("the receiver's queue: %v", err)
	}
	q.Close()
}

// TestReceiverLeavesTheRest checks that a receiver that stops after -n
// messages leaves the others in the queue, including one its pump had
// already taken.
func TestReceiverLeavesTheRest(t *testing.T) {
	t.Parallel()
	queue := queueName(t)
	q, err := chanmq.Open(queue, chanmq.Create(0o600), chanmq.MaxMessages(4), chanmq.MessageSize(64))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, m := range []string{"a", "b", "c"} {
		if err := q.Send(context.Background(), []byte(m), 0); err != nil {
			t.Fatal(err)
		}
	}
	out := run(t, "receiver", "-queue", queue, "-n", "1")
	if !strings.Contains(out, `got "a"`) || strings.Contains(out, `got "b"`) {
		t.Errorf("receiver -n 1 printed:\n%s", out)
	}
	var left []string
	for {
		m, _, err := q.TryReceive()
		if errors.Is(err, chanmq.ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		left = append(left, string(m))
	}
	slices.Sort(left) // a message put back goes to the back of the queue
	if !slices.Equal(left, []string{"b", "c"}) {
		t.Errorf("left in the queue: %q, want b and c", left)
	}
}

// TestSenderCtrlCReportsUnsent interrupts a sender blocked on a full queue:
// it exits 0 and names the message it could not queue.
func TestSenderCtrlCReportsUnsent(t *testing.T) {
	t.Parallel()
	queue := queueName(t)
	q, err := chanmq.Open(queue, chanmq.Create(0o600), chanmq.MaxMessages(1), chanmq.MessageSize(64))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Send(context.Background(), []byte("filler"), 0); err != nil {
		t.Fatal(err)
	}
	snd, out, stderr := start(t, "sender", "-queue", queue, "-n", "3", "-interval", "1ms")
	// The pump took message 1 and waits for room; the sender waits to
	// hand it message 2.
	readUntil(t, out, `sent "message 1`)
	if err := snd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(out)
	if err := snd.Wait(); err != nil {
		t.Fatalf("sender after SIGINT: %v, stderr %q", err, stderr)
	}
	if !strings.Contains(string(rest), `not queued: "message 1`) || !strings.Contains(string(rest), "done: 0 message(s) queued") {
		t.Errorf("sender printed after SIGINT:\n%s", rest)
	}
	if n := q.Len(); n != 1 {
		t.Errorf("queue holds %d messages, want the filler only", n)
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	out := run(t, "demo", "-n", "3", "-interval", "10ms")
	if got := strings.Count(out, "receiver: got "); got != 3 {
		t.Errorf("receiver got %d messages, want 3:\n%s", got, out)
	}
	m := regexp.MustCompile(`removed (/chanmq-demo-\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("demo did not finish:\n%s", out)
	}
	if err := chanmq.Unlink(m[1]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("demo queue %s left behind (unlink: %v)", m[1], err)
	}
}

// TestWorkers runs the cross-process workers: every job's result comes
// back exactly once, and every worker process ends its range at the end of
// the stream and exits 0.
func TestWorkers(t *testing.T) {
	t.Parallel()
	const workers, jobs = 3, 25
	out := run(t, "workers", "-workers", strconv.Itoa(workers), "-jobs", strconv.Itoa(jobs), "-work", "1ms")
	checkResults(t, out, jobs)

	ended := pids(regexp.MustCompile(`worker pid (\d+): end of stream\n`), out)
	exited0 := pids(regexp.MustCompile(`worker pid (\d+) exited with status 0\n`), out)
	if len(ended) != workers || !maps.Equal(ended, exited0) {
		t.Errorf("want %d worker processes, each ending its stream once and exiting 0; ended: %v, exited 0: %v\n%s", workers, ended, exited0, out)
	}
	if strings.Count(out, "exited with status") != workers {
		t.Errorf("%d exits reported, want %d:\n%s", strings.Count(out, "exited with status"), workers, out)
	}
	// The results came from those processes.
	for _, share := range regexp.MustCompile(`pid (\d+) did \d+`).FindAllStringSubmatch(out, -1) {
		if ended[share[1]] != 1 {
			t.Errorf("results from pid %s, which is not one of the workers %v", share[1], ended)
		}
	}
	// Both queues are removed.
	names := regexp.MustCompile(`/chanmq-workers-\w+-[0-9a-f]+`).FindAllString(out, -1)
	if len(names) != 2 {
		t.Errorf("want the two queue names in the output, got %q", names)
	}
	for _, name := range names {
		if err := chanmq.Unlink(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("queue %s left behind (unlink: %v)", name, err)
		}
	}
}

// TestWorkersGoroutines runs the same program with goroutines for workers:
// the same results.
func TestWorkersGoroutines(t *testing.T) {
	t.Parallel()
	checkResults(t, run(t, "workers", "-goroutines", "-workers", "3", "-jobs", "25", "-work", "1ms"), 25)
}

// checkResults checks that out has a line "job i: i*i" exactly once for
// each job from 1 to n, no other job line, and the summary.
func checkResults(t *testing.T, out string, n int) {
	t.Helper()
	lines := regexp.MustCompile(`(?m)^job \d+: \d+$`).FindAllString(out, -1)
	if len(lines) != n {
		t.Errorf("%d result lines, want %d", len(lines), n)
	}
	for i := 1; i <= n; i++ {
		if c := countOf(lines, fmt.Sprintf("job %d: %d", i, i*i)); c != 1 {
			t.Errorf("job %d: result %d printed %d times, want once", i, i*i, c)
		}
	}
	if !regexp.MustCompile(fmt.Sprintf(`all %d results in, each once; pid \d+ did \d+`, n)).MatchString(out) {
		t.Errorf("no summary:\n%s", out)
	}
}

func countOf(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}

// pids returns how many times each pid matched re's first group.
func pids(re *regexp.Regexp, out string) map[string]int {
	m := map[string]int{}
	for _, sub := range re.FindAllStringSubmatch(out, -1) {
		m[sub[1]]++
	}
	return m
}

// TestWorkersCtrlC presses Ctrl-C as a terminal does, a SIGINT to the whole
// process group, mid-run: the parent and every worker end at once, and the
// parent says which jobs were not done; each worker says what it held.
func TestWorkersCtrlC(t *testing.T) {
	t.Parallel()
	const jobs = 200
	cmd := command(t, "workers", "-workers", "3", "-jobs", strconv.Itoa(jobs), "-work", "20ms")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, stderr := testutil.StartPiped(t, cmd)
	first := readUntil(t, out, "worker processes over")
	names := regexp.MustCompile(`/chanmq-workers-\w+-[0-9a-f]+`).FindAllString(first, -1)
	if len(names) != 2 {
		t.Fatalf("no queue names in %q", first)
	}
	jobsQ, err := chanmq.Open(names[0])
	if err != nil {
		t.Fatal(err)
	}
	defer jobsQ.Close()
	testutil.WaitFor(t, "the producer to fill the jobs queue", func() bool { return jobsQ.Len() == jobsQ.Cap() })
	for range 3 {
		readUntil(t, out, ": started")
	}

	pressed := time.Now()
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(out)
	err = cmd.Wait()
	t.Logf("ended %v after Ctrl-C", time.Since(pressed).Round(time.Millisecond))
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Fatalf("after Ctrl-C: %v, want exit status 130\nstdout:\n%s\nstderr:\n%s", err, rest, stderr)
	}
	all := stderr.String()
	m := regexp.MustCompile(`interrupted: (\d+) of (\d+) jobs done; not done: ([0-9, -]+|none)`).FindStringSubmatch(all)
	if m == nil {
		t.Fatalf("no report of what was not done:\n%s", all)
	}
	done, _ := strconv.Atoi(m[1])
	if notDone := countRanges(t, m[3]); done+notDone != jobs || m[2] != strconv.Itoa(jobs) {
		t.Errorf("report %q: %d done + %d not done, want %d", m[0], done, notDone, jobs)
	}
	if n := len(regexp.MustCompile(`worker pid \d+: interrupted`).FindAllString(all, -1)); n != 3 {
		t.Errorf("%d workers said they were interrupted, want 3:\n%s", n, all)
	}
	if n := strings.Count(string(rest), "exited with status 130"); n != 3 {
		t.Errorf("%d workers exited with status 130, want 3:\n%s", n, rest)
	}
	for _, name := range names {
		if err := chanmq.Unlink(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("queue %s left behind (unlink: %v)", name, err)
		}
	}
}

// countRanges counts the numbers in a list such as "4, 9-20" ("none": 0).
func countRanges(t *testing.T, list string) int {
	t.Helper()
	if list == "none" {
		return 0
	}
	n := 0
	for _, part := range strings.Split(list, ", ") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || b < a {
			t.Fatalf("bad range %q in %q", part, list)
		}
		n += b - a + 1
	}
	return n
}
