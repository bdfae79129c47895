//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chanmq/chanmq"
	"github.com/chanmq/chanmq/internal/testutil"
	"golang.org/x/sys/unix"
)

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

// These tests give recv a standard output that fails or stalls, the way a
// shell pipeline does, and check that no message it took is lost.

// TestRecvPutsBackWhatABrokenPipeRefused is `chanmq recv /q -follow |
// head -1`: the reader exits after one line, and the next message recv
// takes meets a broken pipe. recv must not die of SIGPIPE with the message
// (exit 141, nothing said): it puts it back with its priority and exits 1
// saying so. Also when the parent ignores SIGPIPE, which the child
// inherits (a shell's trap "" PIPE).
func TestRecvPutsBackWhatABrokenPipeRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		argv func(name string) []string
	}{
		{"SIGPIPE default", func(name string) []string {
			return []string{bin, "recv", name, "-follow"}
		}},
		{"SIGPIPE ignored by parent", func(name string) []string {
			return []string{"sh", "-c", `trap "" PIPE; exec "$0" "$@"`, bin, "recv", name, "-follow"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := newQueue(t, "-max", "4", "-size", "64")
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			// A copy of the write end tells when the pipe has no reader left.
			probe, err := unix.FcntlInt(w.Fd(), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(probe)
			argv := tc.argv(name)
			cmd := exec.Command(argv[0], argv[1:]...)
			stderr := startTo(t, cmd, w)

			mustRun(t, nil, "send", name, "one")
			if line, err := bufio.NewReader(r).ReadString('\n'); line != "one\n" {
				t.Fatalf("recv printed %q, %v; want %q", line, err, "one\n")
			}
			r.Close() // the reader exits, as head -1 does
			// A child that a parallel test forked while r was open holds a
			// copy of it until it execs; until then a write succeeds.
			testutil.WaitFor(t, "the pipe to have no reader", func() bool {
				_, err := unix.Write(probe, []byte{0})
				return errors.Is(err, unix.EPIPE)
			})
			mustRun(t, nil, "send", name, "-priority", "3", "two")

			wantFail(t, finish(t, cmd, stderr), 1, "broken pipe", "put back into the queue, with priority 3", "1 message(s) printed")
			wantLeft(t, name, "3:two")
		})
	}
}

// TestRecvPutsBackWhatStdoutRefused sends recv's output to /dev/full: the
// write fails with ENOSPC, and the message goes back into the queue,
// behind the one queued after it with the same priority (as documented).
func TestRecvPutsBackWhatStdoutRefused(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "4", "-size", "64")
	mustRun(t, nil, "send", name, "first", "second")
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	cmd := exec.Command(bin, "recv", name, "-n", "2")
	r := finish(t, cmd, startTo(t, cmd, full))
	wantFail(t, r, 1, "no space left on device", "put back into the queue, with priority 0", "0 message(s) printed")
	wantLeft(t, name, "0:second", "0:first")
}

// TestRecvReadOnlyPrintsWhatItCannotPutBack runs recv as a user who may
// read the queue but not write to it: recv falls back to opening it
// read-only, and a message it cannot print cannot go back, so its bytes
// are on standard error in base64, the last place left for them.
func TestRecvReadOnlyPrintsWhatItCannotPutBack(t *testing.T) {
	t.Parallel()
	attr := asNobody(t)
	name := newQueue(t, "-max", "2", "-size", "64", "-mode", "0604")
	msg := "secret\x00\xff bytes"
	mustRun(t, []byte(msg), "send", name, "-raw", "-priority", "7")

	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	cmd := exec.Command(bin, "recv", name)
	cmd.SysProcAttr = attr
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = full, &stderr
	err = cmd.Run()
	full.Close()
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("cannot run as uid %d here: %v", nobody, err)
	}
	wantFail(t, result{stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}, 1,
		"no space left on device", "cannot be put back (this user may only read the queue)",
		"priority 7", "in base64: "+base64.StdEncoding.EncodeToString([]byte(msg)))
	wantLeft(t, name)
}

// TestSignalWhileWritingStopsAfterTheMessageInHand interrupts a recv that
// is blocked writing message 1 of 10 into a full pipe: once the reader
// drains the pipe, recv must finish printing that message and stop (-n 10:
// exit 130; -follow: exit 0), leaving messages 2 to 10 in the queue,
// rather than go on to print all ten.
func TestSignalWhileWritingStopsAfterTheMessageInHand(t *testing.T) {
	t.Parallel()
	const count, size = 10, 8000
	for _, tc := range []struct {
		flag  string
		check func(t *testing.T, r result)
	}{
		{"-n", func(t *testing.T, r result) {
			wantFail(t, r, 130, "stopped by interrupt", "1 of 10")
		}},
		{"-follow", func(t *testing.T, r result) {
			if r.code != 0 || r.stderr != "" {
				t.Errorf("exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
		}},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			t.Parallel()
			name := newQueue(t, "-max", fmt.Sprint(count), "-size", fmt.Sprint(size))
			var input bytes.Buffer
			var want []string
			for i := range count {
				msg := fmt.Sprintf("%04d", i) + strings.Repeat("x", size-4)
				input.WriteString(msg + "\n")
				want = append(want, "0:"+msg)
			}
			mustRun(t, input.Bytes(), "send", name)

			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// The smallest pipe, one page, cannot hold one message: recv
			// blocks in the write of message 1.
			pipeSize, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, os.Getpagesize())
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"recv", name, tc.flag}
			if tc.flag == "-n" {
				args = append(args, fmt.Sprint(count))
			}
			cmd := exec.Command(bin, args...)
			stderr := startTo(t, cmd, w)

			q, err := chanmq.Open(name, chanmq.ReadOnly())
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			testutil.WaitFor(t, "recv to take message 1 and fill the pipe", func() bool {
				n, err := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ) // FIONREAD: bytes in the pipe
				return q.Len() == count-1 && err == nil && n == pipeSize
			})
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			// Once the kernel has delivered the signal, recv's runtime
			// cancels its context within microseconds; nothing outside the
			// process shows that step, so give it thousands of times that
			// before the reader drains the pipe.
			testutil.WaitFor(t, "the kernel to deliver SIGINT", func() bool { return !signalPending(cmd.Process.Pid, syscall.SIGINT) })
			time.Sleep(100 * time.Millisecond)

			out, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimPrefix(want[0], "0:") + "\n"; string(out) != got {
				t.Errorf("recv printed %d bytes starting %.20q, want message 1 alone (%d bytes)", len(out), out, len(got))
			}
			tc.check(t, finish(t, cmd, stderr))
			wantLeft(t, name, want[1:]...)
		})
	}
}
