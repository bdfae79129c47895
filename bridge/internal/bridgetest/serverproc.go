//go:build linux

package bridgetest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// serverEnv makes a re-executed test binary run a nats-server instead of
// the tests: its value is "STOREDIR PORT" (port 0: any free one).
const serverEnv = "CHANMQ_BRIDGE_TEST_SERVER"

// ServerProc is a nats-server with JetStream (file storage, 127.0.0.1) in
// a child process of its own, the test binary re-executed, so that a test
// can SIGKILL it: a crash, which leaves the store as a crash does (a
// Server in the test process can only shut down cleanly). It restarts on
// the same store and port.
type ServerProc struct {
	t     testing.TB
	store string
	port  int
	cmd   *exec.Cmd
	done  chan error
}

// StartServerProc starts a server on a new store; it is killed when t
// ends.
func StartServerProc(t testing.TB) *ServerProc {
	t.Helper()
	s := &ServerProc{t: t, store: t.TempDir()}
	s.Start()
	t.Cleanup(func() {
		if s.cmd != nil {
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// URL is the server's client URL.
func (s *ServerProc) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// Start starts the server (again, after Kill or Stop) and waits until it
// takes connections.
func (s *ServerProc) Start() {
	s.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", serverEnv, s.store, s.port))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		ready <- line
		_, _ = io.Copy(io.Discard, r)
	}()
	go func() { done <- cmd.Wait() }()
	var line string
	select {
	case line = <-ready:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		s.t.Fatal("server process not ready in 60s")
	}
	port, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "ready "))
	if err != nil {
		_ = cmd.Process.Kill()
		<-done
		s.t.Fatalf("server process said %q, not its port", line)
	}
	s.port, s.cmd, s.done = port, cmd, done
}

// Kill SIGKILLs the server and waits for it to be gone.
func (s *ServerProc) Kill() {
	s.t.Helper()
	_ = s.cmd.Process.Kill()
	s.wait("SIGKILL")
}

// Stop shuts the server down cleanly (SIGTERM: everything it holds is
// written to its store) and waits for it to be gone.
func (s *ServerProc) Stop() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	s.wait("SIGTERM")
}

func (s *ServerProc) wait(what string) {
	s.t.Helper()
	select {
	case <-s.done:
		s.cmd = nil
	case <-time.After(60 * time.Second):
		s.t.Fatalf("server process still there 60s after %s", what)
	}
}

// runServer is the child's side: a nats-server on the store and port of
// spec ("STOREDIR PORT"), that prints "ready PORT" once it takes
// connections and shuts down cleanly on SIGTERM. It returns the exit
// status.
func runServer(spec string) int {
	store, p, _ := strings.Cut(spec, " ")
	port, err := strconv.Atoi(p)
	if err != nil || port == 0 {
		port = -1
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: store, NoSigs: true, NoLog: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats server:", err)
		return 1
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		fmt.Fprintln(os.Stderr, "nats server not ready in 30s")
		return 1
	}
	fmt.Printf("ready %d\n", srv.Addr().(*net.TCPAddr).Port)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	srv.Shutdown()
	srv.WaitForShutdown()
	return 0
}
