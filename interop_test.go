//go:build linux

package chanmq

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInteropWithC proves that chanmq speaks POSIX message queues as C
// does: a C program using glibc's mq_* functions (testdata/mqpeer.c) and
// chanmq exchange messages on the same queue name, given with its leading
// slash on both sides, with bytes, priorities and struct mq_attr intact.
func TestInteropWithC(t *testing.T) {
	t.Parallel()
	peer := buildCPeer(t)
	run := func(t *testing.T, args ...string) string { return runCPeer(t, peer, args...) }
	// Every byte value, NUL and '/' included, so nothing is treated as text.
	payload := make([]byte, 100)
	for i := range payload {
		payload[i] = byte(i * 53)
	}
	payload[0], payload[1] = 0, '/'

	t.Run("go-sends-c-receives", func(t *testing.T) {
		t.Parallel()
		q := newTestQueue(t)
		if err := q.TrySend(payload, 42); err != nil {
			t.Fatal(err)
		}
		got := run(t, "recv", q.Name())
		if want := fmt.Sprintf("42 %x\n", payload); got != want {
			t.Fatalf("C received %q, want %q", got, want)
		}
	})
	t.Run("c-sends-go-receives", func(t *testing.T) {
		t.Parallel()
		q := newTestQueue(t)
		run(t, "send", q.Name(), "31000", hex.EncodeToString(payload))
		run(t, "send", q.Name(), "0", "") // a zero-length message
		m, p, err := q.TryReceive()
		if err != nil || !bytes.Equal(m, payload) || p != 31000 {
			t.Fatalf("Go received %x prio %d %v, want %x prio 31000", m, p, err, payload)
		}
		m, p, err = q.TryReceive()
		if err != nil || len(m) != 0 || p != 0 {
			t.Fatalf("Go received %x prio %d %v, want an empty message prio 0", m, p, err)
		}
	})
	t.Run("c-creates-go-reads-attributes", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		run(t, "create", name, "3", "77")
		q, err := Open(name)
		if err != nil {
			t.Fatalf("Open of the queue C created: %v", err)
		}
		defer q.Close()
		if q.Cap() != 3 || q.MessageSize() != 77 {
			t.Fatalf("Go reads Cap %d MessageSize %d, want 3 and 77", q.Cap(), q.MessageSize())
		}
	})
	t.Run("go-creates-c-reads-attributes", func(t *testing.T) {
		t.Parallel()
		q := newTestQueue(t, MaxMessages(3), MessageSize(77))
		for i := range 2 {
			if err := q.TrySend([]byte{byte(i)}, 0); err != nil {
				t.Fatal(err)
			}
		}
		if got := run(t, "attr", q.Name()); got != "3 77 2\n" {
			t.Fatalf("C reads attributes %q, want \"3 77 2\\n\"", got)
		}
	})
}

// buildCPeer compiles testdata/mqpeer.c into t's temporary directory and
// returns its path. It skips t when this run cannot start processes or has
// no C compiler.
func buildCPeer(t testing.TB) string {
	t.Helper()
	skipWithoutSubprocesses(t)
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (cc) on PATH: cannot build the C peer")
	}
	peer := filepath.Join(t.TempDir(), "mqpeer")
	build := exec.Command(cc, "-O2", "-Wall", "-o", peer, filepath.Join("testdata", "mqpeer.c"), "-lrt")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the C peer: %v\n%s", err, out)
	}
	return peer
}

// runCPeer runs the C peer with args and returns its stdout; it fails t
// if the peer fails.
func runCPeer(t testing.TB, peer string, args ...string) string {
	t.Helper()
	cmd := exec.Command(peer, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mqpeer %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}
