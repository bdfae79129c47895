//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chanmq/chanmq"
	"github.com/chanmq/chanmq/internal/mqueuefs"
	"github.com/chanmq/chanmq/internal/testutil"
	"go.uber.org/goleak"
)

// These tests build the command once and run it as a user would: separate
// processes, pipes, signals and exit codes.

// testPrefix starts every queue name the tests use, so that leftovers of
// a crashed run can be swept.
const testPrefix = testutil.QueuePrefix + "cli-"

// bin is the path of the command built by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, remove := testutil.BuildCommands(".")
	bin = filepath.Join(dir, "chanmq")
	testutil.SweepQueues(testPrefix, chanmq.Unlink)
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { remove() }))
}

// queueName returns a fresh queue name, removed when t ends. The queue
// itself is not created.
func queueName(t *testing.T) string {
	t.Helper()
	return testutil.QueueName(t, testPrefix, chanmq.Unlink)
}

// newQueue creates a small queue with the command and returns its name.
func newQueue(t *testing.T, createArgs ...string) string {
	t.Helper()
	name := queueName(t)
	mustRun(t, nil, append([]string{"create", name}, createArgs...)...)
	return name
}

type result struct {
	stdout, stderr string
	code           int
}

// runCmd runs the command with stdin (nil: empty) and returns what it
// printed and its exit code. A command that hangs is killed after twice
// testutil.Patience so that the test fails instead of the whole run.
func runCmd(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*testutil.Patience)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || ctx.Err() != nil {
			t.Fatalf("chanmq %q: %v (stderr %q)", args, err, stderr.String())
		}
		code = ee.ExitCode()
	}
	return result{stdout.String(), stderr.String(), code}
}

// mustRun runs the command and fails t unless it exits 0 silently on
// stderr. It returns stdout.
func mustRun(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	r := runCmd(t, stdin, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("chanmq %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	return r.stdout
}

// wantFail checks that r is a failure with exit code code and one line on
// stderr that starts with "chanmq: " and contains each of hints.
func wantFail(t *testing.T, r result, code int, hints ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "chanmq: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr %q is not one line starting with \"chanmq: \"", r.stderr)
	}
	for _, h := range hints {
		if !strings.Contains(r.stderr, h) {
			t.Errorf("stderr %q does not contain %q", r.stderr, h)
		}
	}
}

func TestCreateStatLsRm(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "3", "-size", "64", "-mode", "0640")
	mustRun(t, nil, "send", name, "hello")

	out := mustRun(t, nil, "stat", name)
	for _, want := range []string{"name:", name, "messages:", "1 of 3", "message size:", "64 bytes"} {
		if !strings.Contains(out, want) {
			t.Errorf("stat output lacks %q:\n%s", want, out)
		}
	}
	// Mode and owner need the mqueue filesystem: /dev/mqueue, or a
	// temporary mount, which needs root.
	if _, release, _, err := mqueuefs.Dir(); err == nil {
		release()
		for _, want := range []string{"-rw-r----- (0640)", "queued bytes:", "5", "owner:", "uid " + strconv.Itoa(os.Getuid())} {
			if !strings.Contains(out, want) {
				t.Errorf("stat output lacks %q:\n%s", want, out)
			}
		}
		ls := runCmd(t, nil, "ls")
		if ls.code != 0 || !strings.Contains(ls.stdout, name+"\n") {
			t.Errorf("ls: exit %d, output lacks %s:\n%s", ls.code, name, ls.stdout)
		}
		long := runCmd(t, nil, "ls", "-l")
		if !regexpLine(long.stdout, name, "1", "3", "64", "-rw-r-----") {
			t.Errorf("ls -l: no line for %s with 1 3 64 -rw-r-----:\n%s", name, long.stdout)
		}
	} else {
		t.Logf("mode and owner not checked: %v", err)
	}

	mustRun(t, nil, "rm", name)
	wantFail(t, runCmd(t, nil, "stat", name), 1, "does not exist", "chanmq create "+name)
	wantFail(t, runCmd(t, nil, "rm", name), 1, "does not exist", "-f")
	mustRun(t, nil, "rm", "-f", name)
}

// regexpLine reports whether some line of out has all of fields among
// its whitespace-separated fields.
func regexpLine(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		have := map[string]bool{}
		for _, f := range strings.Fields(line) {
			have[f] = true
		}
		all := true
		for _, f := range fields {
			all = all && have[f]
		}
		if all {
			return true
		}
	}
	return false
}

func TestCreateDefaultModeIsOwnerOnly(t *testing.T) {
	t.Parallel()
	name := newQueue(t)
	if _, release, _, err := mqueuefs.Dir(); err != nil {
		t.Skipf("mode not readable: %v", err)
	} else {
		release()
	}
	out := mustRun(t, nil, "stat", name)
	if !strings.Contains(out, "-rw------- (0600)") {
		t.Errorf("default mode is not 0600:\n%s", out)
	}
}

func TestCreateExisting(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "2", "-size", "32")
	mustRun(t, nil, "create", name)                             // exists: fine
	mustRun(t, nil, "create", name, "-max", "2", "-size", "32") // same attributes: fine
	wantFail(t, runCmd(t, nil, "create", name, "-excl"), 1, "already exists", "chanmq rm "+name)
	wantFail(t, runCmd(t, nil, "create", name, "-max", "3"), 1, "2 messages of 32 bytes", "-max 3")
}

// TestSendRecvTwoProcesses starts a recv that waits for three messages,
// then sends them from another process.
func TestSendRecvTwoProcesses(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "2", "-size", "64")
	ctx, cancel := context.WithTimeout(context.Background(), 2*testutil.Patience)
	defer cancel()
	recv := exec.CommandContext(ctx, bin, "recv", name, "-n", "3")
	var out, errOut bytes.Buffer
	recv.Stdout, recv.Stderr = &out, &errOut
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "send", name, "one", "two", "three")
	if err := recv.Wait(); err != nil {
		t.Fatalf("recv: %v, stderr %q", err, errOut.String())
	}
	if got, want := out.String(), "one\ntwo\nthree\n"; got != want {
		t.Errorf("recv printed %q, want %q", got, want)
	}
}

func TestPipes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		sendFlags  []string
		recvFlags  []string
		stdin      string
		count      int
		wantStdout string
	}{
		{"lines", nil, nil, "alpha\n\nbeta gamma\nlast-no-newline", 4, "alpha\n\nbeta gamma\nlast-no-newline\n"},
		{"nul", []string{"-0"}, []string{"-0"}, "a\nb\x00c\x00", 2, "a\nb\x00c\x00"},
		{"raw", []string{"-raw"}, []string{"-raw"}, "line one\nline two\x00\xff\n", 1, "line one\nline two\x00\xff\n"},
		{"dash-message", []string{"--"}, nil, "", 0, ""}, // "--" and no args: stdin, empty
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := newQueue(t, "-max", "5", "-size", "64")
			mustRun(t, []byte(tc.stdin), append([]string{"send", name}, tc.sendFlags...)...)
			if tc.count == 0 {
				wantFail(t, runCmd(t, nil, "recv", name, "-nonblock"), 3, "queue empty")
				return
			}
			args := append([]string{"recv", name, "-n", strconv.Itoa(tc.count), "-nonblock"}, tc.recvFlags...)
			if got := mustRun(t, nil, args...); got != tc.wantStdout {
				t.Errorf("recv printed %q, want %q", got, tc.wantStdout)
			}
		})
	}
}

func TestSendArgumentsStartingWithDash(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "3", "-size", "16")
	mustRun(t, nil, "send", name, "-priority", "2", "--", "-x", "-priority")
	if got, want := mustRun(t, nil, "recv", name, "-n", "2", "-priority"), "2\t-x\n2\t-priority\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPriorityOrder(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "4", "-size", "16")
	mustRun(t, nil, "send", name, "-priority", "1", "low")
	mustRun(t, nil, "send", name, "high", "-priority", "9") // flags after messages too
	mustRun(t, nil, "send", name, "zero")
	if got, want := mustRun(t, nil, "recv", "-priority", name, "-n", "3"), "9\thigh\n1\tlow\n0\tzero\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestJSONBinaryRoundTrip sends every byte value as one message, reads it
// back with -json (base64 "data"), moves it to a second queue through
// send -json, and reads it back raw.
func TestJSONBinaryRoundTrip(t *testing.T) {
	t.Parallel()
	a := newQueue(t, "-max", "2", "-size", "512")
	b := newQueue(t, "-max", "2", "-size", "512")
	var msg []byte
	for i := range 256 {
		msg = append(msg, byte(i))
	}
	msg = append(msg, "\xff\xfe not UTF-8 \n\x00"...)
	mustRun(t, msg, "send", a, "-raw", "-priority", "42")

	line := mustRun(t, nil, "recv", a, "-json")
	var got struct {
		Data     string `json:"data"`
		Priority uint   `json:"priority"`
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("recv -json printed %q: %v", line, err)
	}
	data, err := base64.StdEncoding.DecodeString(got.Data)
	if err != nil {
		t.Fatalf("data %q is not standard base64: %v", got.Data, err)
	}
	if !bytes.Equal(data, msg) || got.Priority != 42 {
		t.Errorf("recv -json gave %q priority %d, want %q priority 42", data, got.Priority, msg)
	}

	mustRun(t, []byte(line), "send", b, "-json")
	if out := mustRun(t, nil, "recv", b, "-priority", "-json"); out != line {
		t.Errorf("after send -json, recv -json printed %q, want %q", out, line)
	}
	mustRun(t, []byte(line), "send", b, "-json")
	if out := mustRun(t, nil, "recv", b, "-raw"); out != string(msg) {
		t.Errorf("recv -raw printed %q, want %q", out, msg)
	}

	wantFail(t, runCmd(t, []byte(`{"text":"hi"}`), "send", b, "-json"), 1, "JSON object 1")
	wantFail(t, runCmd(t, []byte(`{"priority":3}`), "send", b, "-json"), 1, `no "data"`)
}

func TestBadNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, hint string }{
		{"jobs", `did you mean "/jobs"`},
		{"/a/b", "flat"},
		{"/", `such as "/jobs"`},
	} {
		for _, args := range [][]string{
			{"create", tc.name},
			{"send", tc.name, "x"},
			{"recv", tc.name},
			{"stat", tc.name},
			{"rm", tc.name},
		} {
			wantFail(t, runCmd(t, nil, args...), 1, "invalid queue name", tc.hint)
		}
	}
}

func TestMissingQueue(t *testing.T) {
	t.Parallel()
	name := queueName(t)
	for _, args := range [][]string{
		{"send", name, "x"},
		{"recv", name},
		{"stat", name},
	} {
		wantFail(t, runCmd(t, nil, args...), 1, "queue does not exist", "chanmq create "+name)
	}
}

func TestMessageTooLarge(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "2", "-size", "8")
	wantFail(t, runCmd(t, nil, "send", name, "ok", "123456789"), 1, "message too large", "-size N", "argument 2", "after sending 1")
}

func TestFullNonblock(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "2", "-size", "16")
	wantFail(t, runCmd(t, nil, "send", name, "-nonblock", "a", "b", "c"), 3, "queue full", "argument 3", "after sending 2")
	if got := mustRun(t, nil, "recv", name, "-n", "2"); got != "a\nb\n" {
		t.Errorf("queue held %q, want a and b", got)
	}
}

func TestSendTimeoutFull(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "1", "-size", "16")
	mustRun(t, nil, "send", name, "a")
	start := time.Now()
	wantFail(t, runCmd(t, nil, "send", name, "-timeout", "300ms", "b"), 3, "still full", "300ms")
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("send -timeout 300ms gave up after %v", d)
	}
}

func TestRecvTimeoutEmpty(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "1", "-size", "16")
	start := time.Now()
	wantFail(t, runCmd(t, nil, "recv", name, "-timeout", "300ms"), 3, "no message within 300ms", "0 of 1")
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("recv -timeout 300ms gave up after %v", d)
	}
	// With -follow, a timeout is how the follow ends: exit 0.
	mustRun(t, nil, "send", name, "x")
	if got := mustRun(t, nil, "recv", name, "-follow", "-timeout", "100ms"); got != "x\n" {
		t.Errorf("recv -follow -timeout printed %q, want %q", got, "x\n")
	}
}

func TestRecvNonblock(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "3", "-size", "16")
	wantFail(t, runCmd(t, nil, "recv", name, "-nonblock"), 3, "queue empty")
	mustRun(t, nil, "send", name, "a", "b")
	// Drain: -follow -nonblock prints what is queued and exits 0.
	if got := mustRun(t, nil, "recv", name, "-follow", "-nonblock"); got != "a\nb\n" {
		t.Errorf("drain printed %q", got)
	}
	mustRun(t, nil, "send", name, "c")
	r := runCmd(t, nil, "recv", name, "-n", "2", "-nonblock")
	wantFail(t, r, 3, "queue empty", "1 of 2")
	if r.stdout != "c\n" {
		t.Errorf("recv -n 2 -nonblock printed %q before failing, want %q", r.stdout, "c\n")
	}
}

// startRecv starts a recv and returns a reader of its stdout.
func startRecv(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"recv"}, args...)...)
	out, stderr := testutil.StartPiped(t, cmd)
	return cmd, out, stderr
}

// TestSignalStopsFollow sends SIGINT (and SIGTERM) to a recv -follow
// blocked on an empty queue: it exits 0 after printing what it took.
func TestSignalStopsFollow(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			name := newQueue(t, "-max", "2", "-size", "16")
			cmd, out, stderr := startRecv(t, name, "-follow")
			mustRun(t, nil, "send", name, "first")
			// Once "first" is printed, recv's signal handler is installed
			// and it is back to waiting on the empty queue.
			if line, err := out.ReadString('\n'); line != "first\n" {
				t.Fatalf("recv printed %q, %v", line, err)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(out)
			err := cmd.Wait()
			if err != nil || len(rest) != 0 || stderr.Len() != 0 {
				t.Errorf("after %v: err %v, more output %q, stderr %q; want exit 0 and nothing more", sig, err, rest, stderr)
			}
		})
	}
}

// TestSignalStopsWaitingRecv interrupts a recv that waits for a message it
// has not got: exit 130, one line on stderr.
func TestSignalStopsWaitingRecv(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "2", "-size", "16")
	cmd, out, stderr := startRecv(t, name, "-n", "2")
	mustRun(t, nil, "send", name, "only")
	if line, err := out.ReadString('\n'); line != "only\n" {
		t.Fatalf("recv printed %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(out)
	_ = cmd.Wait()
	wantFail(t, result{stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}, 130, "interrupt", "1 of 2")
}

// TestSignalLosesNothing streams numbered messages through a small queue
// into a recv -follow, interrupts it mid-stream, and drains the rest:
// every message is printed exactly once, in order.
func TestSignalLosesNothing(t *testing.T) {
	t.Parallel()
	const total = 300
	name := newQueue(t, "-max", "2", "-size", "16")
	var input strings.Builder
	for i := range total {
		fmt.Fprintf(&input, "%d\n", i)
	}
	send := exec.Command(bin, "send", name)
	send.Stdin = strings.NewReader(input.String())
	var sendErr bytes.Buffer
	send.Stderr = &sendErr
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = send.Process.Kill(); _ = send.Wait() })

	cmd, out, stderr := startRecv(t, name, "-follow")
	var got []string
	for len(got) < total/3 {
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("recv ended early: %v, stderr %q", err, stderr)
		}
		got = append(got, strings.TrimSuffix(line, "\n"))
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("recv after SIGINT: %v, stderr %q", err, stderr)
	}
	got = append(got, strings.Fields(string(rest))...)

	// Drain what the sender still sends.
	drain := exec.Command(bin, "recv", name, "-follow", "-timeout", "5s")
	drainOut, err := drain.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := drain.Start(); err != nil {
		t.Fatal(err)
	}
	if err := send.Wait(); err != nil {
		t.Fatalf("send: %v, stderr %q", err, sendErr.String())
	}
	// Read until every message is in; if some were lost, drain's -timeout
	// ends it and the check below says so.
	drainLines := bufio.NewReader(drainOut)
	for len(got) < total {
		line, err := drainLines.ReadString('\n')
		if err != nil {
			break
		}
		got = append(got, strings.TrimSuffix(line, "\n"))
	}
	_ = drain.Process.Signal(syscall.SIGINT)
	extra, _ := io.ReadAll(drainLines)
	if err := drain.Wait(); err != nil {
		t.Fatalf("drain: %v", err)
	}
	got = append(got, strings.Fields(string(extra))...)

	if len(got) != total {
		t.Fatalf("got %d messages, want %d", len(got), total)
	}
	for i, s := range got {
		if s != strconv.Itoa(i) {
			t.Fatalf("message %d is %q: lost, duplicated or reordered", i, s)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "1", "-size", "16")
	for _, args := range [][]string{
		{"frobnicate"},
		{"send"},
		{"recv"},
		{"stat"},
		{"rm"},
		{"create", name, "-max", "0"},
		{"create", name, "-mode", "0999"},
		{"create", name, "-mode", "01777"},
		{"create", name, "extra"},
		{"recv", name, "-bogus"},
		{"recv", name, "-n", "0"},
		{"recv", name, "-follow", "-n", "3"},
		{"recv", name, "-json", "-raw"},
		{"recv", name, "-raw", "-priority"},
		{"recv", name, "-nonblock", "-timeout", "1s"},
		{"recv", name, "-timeout", "soon"},
		{"send", name, "-0", "-raw"},
		{"send", name, "-raw", "message"},
		{"send", name, "-priority", "40000", "x"},
		{"send", name, "-nonblock", "-timeout", "1s", "x"},
		{"ls", "extra"},
	} {
		r := runCmd(t, nil, args...)
		wantFail(t, r, 2)
		if args[0] != "frobnicate" && !strings.Contains(r.stderr, "chanmq "+args[0]+" -h") {
			t.Errorf("%q: stderr %q does not point to -h", args, r.stderr)
		}
	}
	if r := runCmd(t, nil); r.code != 2 || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("no arguments: exit %d, stderr %q; want 2 and the usage", r.code, r.stderr)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, cmd := range cmdOrder {
		out := mustRun(t, nil, cmd, "-h")
		if !strings.HasPrefix(out, "Usage: chanmq "+cmd) || !strings.Contains(out, "Exit status") {
			t.Errorf("%s -h printed:\n%s", cmd, out)
		}
	}
	out := mustRun(t, nil, "-h")
	for _, cmd := range cmdOrder {
		if !strings.Contains(out, "chanmq "+cmd) {
			t.Errorf("chanmq -h does not mention %s:\n%s", cmd, out)
		}
	}
	if out := mustRun(t, nil, "help", "recv"); !strings.Contains(out, "-follow") {
		t.Errorf("help recv printed:\n%s", out)
	}
}
