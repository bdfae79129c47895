//go:build linux

package mqbridge_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chanmq/chanmq"
	"github.com/chanmq/chanmq/bridge/internal/cli"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testPrefix starts the name of every queue these tests create; queues
// outlive processes and queues_max is shared by the whole machine.
const testPrefix = "/chanmq-bridge-test-"

// childEnv makes a re-executed test binary run the chanmq-bridge command
// with the arguments in childArgsEnv (one per line) instead of the tests.
const (
	childEnv     = "CHANMQ_BRIDGE_TEST_CHILD"
	childArgsEnv = "CHANMQ_BRIDGE_TEST_ARGS"
)

// runChild is the child side: the real command, in its own process.
func runChild() int {
	return cli.Main(strings.Split(os.Getenv(childArgsEnv), "\n"), os.Stderr)
}

// testServer is an embedded nats-server with JetStream, on 127.0.0.1 and
// a random port, that can be stopped and restarted on the same port and
// store.
type testServer struct {
	t    testing.TB
	opts server.Options
	mu   sync.Mutex
	srv  *server.Server
}

func startServer(t testing.TB, edit func(*server.Options)) *testServer {
	t.Helper()
	ts := &testServer{t: t, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoSigs:    true,
		NoLog:     true,
	}}
	if edit != nil {
		edit(&ts.opts)
	}
	ts.start()
	// Later starts reuse the port, so clients reconnect to the same URL.
	ts.opts.Port = ts.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) start() {
	ts.t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	opts := ts.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		ts.t.Fatalf("nats server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		srv.Shutdown()
		ts.t.Fatal("nats server not ready in 20s")
	}
	ts.srv = srv
}

func (ts *testServer) stop() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.srv != nil {
		ts.srv.Shutdown()
		ts.srv.WaitForShutdown()
		ts.srv = nil
	}
}

// restart stops the server and starts it again on the same port and store.
func (ts *testServer) restart() {
	ts.stop()
	ts.start()
}

// down stops the server until up is called.
func (ts *testServer) down() { ts.stop() }
func (ts *testServer) up()   { ts.start() }

func (ts *testServer) url() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", ts.opts.Port)
}

// connect opens a client connection that reconnects forever, closed when
// t ends.
func (ts *testServer) connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(ts.url(), opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func newJS(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func addStream(t testing.TB, js jetstream.JetStream, cfg jetstream.StreamConfig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cfg.Storage == 0 {
		cfg.Storage = jetstream.FileStorage
	}
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatalf("create stream %s: %v", cfg.Name, err)
	}
}

// newQueue creates a uniquely named queue, closed and unlinked when t
// ends. Kernel limits here: msg_max 10, msgsize_max 8192.
func newQueue(t testing.TB, maxMsgs, msgSize int) *chanmq.Queue {
	t.Helper()
	q, err := chanmq.CreateTemp(testPrefix, chanmq.MaxMessages(maxMsgs), chanmq.MessageSize(msgSize))
	if err != nil {
		t.Fatalf("CreateTemp: %v", err)
	}
	t.Cleanup(func() {
		_ = q.Close()
		_ = chanmq.Unlink(q.Name())
	})
	return q
}

// bridgeProc is the chanmq-bridge command running in a child process.
type bridgeProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startBridge re-executes the test binary as the chanmq-bridge command
// with args (the os/signal TestNotifyContextNotifications pattern).
func startBridge(t testing.TB, args ...string) *bridgeProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childArgsEnv+"="+strings.Join(args, "\n"),
		"CHANMQ_BRIDGE_RECONNECT_WAIT=100ms")
	p := &bridgeProc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start bridge: %v", err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// kill SIGKILLs the bridge and waits for it to be gone.
func (p *bridgeProc) kill(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		p.done <- nil // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("bridge did not die in 20s after SIGKILL")
	}
}

// stop sends SIGTERM and fails t unless the bridge exits 0 in time.
func (p *bridgeProc) stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.done:
		p.done <- nil
		if err != nil {
			t.Fatalf("bridge stopped with %v\n%s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("bridge did not stop in 30s after SIGINT\n%s", p.stderr)
	}
}

// exited reports whether the bridge ended on its own (a fault).
func (p *bridgeProc) exited() (error, bool) {
	select {
	case err := <-p.done:
		p.done <- err
		return err, true
	default:
		return nil, false
	}
}

// quietLog is a logger for bridges run inside the test process.
func quietLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// payload makes message i of a test run: its number, padded to size.
func payload(i, size int) []byte {
	b := make([]byte, size)
	copy(b, fmt.Sprintf("msg-%08d-", i))
	for j := 13; j < size; j++ {
		b[j] = byte('a' + (i+j)%26)
	}
	return b
}

// msgNumber returns the number payload put in b, or -1.
func msgNumber(b []byte) int {
	var n int
	if _, err := fmt.Sscanf(string(b[:min(len(b), 12)]), "msg-%08d", &n); err != nil {
		return -1
	}
	return n
}

// counts tallies what arrived of n numbered messages.
type counts struct {
	sent, received, unique, duplicates, lost int
}

func tally(sent int, seen map[int]int) counts {
	c := counts{sent: sent, unique: len(seen)}
	for _, k := range seen {
		c.received += k
		if k > 1 {
			c.duplicates += k - 1
		}
	}
	c.lost = sent - c.unique
	return c
}

func (c counts) String() string {
	return fmt.Sprintf("sent=%d received=%d unique=%d duplicates=%d lost=%d", c.sent, c.received, c.unique, c.duplicates, c.lost)
}
