//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/testutil"
)

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
