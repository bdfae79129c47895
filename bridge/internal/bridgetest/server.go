//go:build linux

package bridgetest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/chanmq/chanmq/internal/testutil"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an embedded nats-server with JetStream, on 127.0.0.1 and a
// random port, that can be stopped and restarted on the same port and
// store.
type Server struct {
	t    testing.TB
	opts server.Options
	mu   sync.Mutex
	srv  *server.Server
}

// StartServer starts a server, with its options changed by edit if it is
// not nil; it stops when t ends.
func StartServer(t testing.TB, edit func(*server.Options)) *Server {
	t.Helper()
	ts := &Server{t: t, opts: server.Options{
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

func (ts *Server) start() {
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

func (ts *Server) stop() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.srv != nil {
		ts.srv.Shutdown()
		ts.srv.WaitForShutdown()
		ts.srv = nil
	}
}

// Restart stops the server and starts it again on the same port and store.
func (ts *Server) Restart() {
	ts.stop()
	ts.start()
}

// Down stops the server until Up is called.
func (ts *Server) Down() { ts.stop() }

// Up starts the server again after Down.
func (ts *Server) Up() { ts.start() }

// URL is the server's client URL.
func (ts *Server) URL() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", ts.opts.Port)
}

// Connect opens a client connection that reconnects forever, closed when
// t ends.
func (ts *Server) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(ts.URL(), opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream connects (as Connect does) and creates the streams given,
// with file storage unless they say otherwise.
func (ts *Server) JetStream(t testing.TB, streams ...jetstream.StreamConfig) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := ts.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, cfg := range streams {
		if cfg.Storage == 0 {
			cfg.Storage = jetstream.FileStorage
		}
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatalf("create stream %s: %v", cfg.Name, err)
		}
	}
	return nc, js
}

// WaitAllAcked waits until the durable consumer of stream has no message
// pending or awaiting an acknowledgement: whatever an in-bridge
// acknowledged is in its queue by then (it acknowledges after the send).
func WaitAllAcked(t testing.TB, js jetstream.JetStream, stream, durable string) {
	t.Helper()
	testutil.WaitFor(t, "every message of "+stream+" acknowledged", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, stream, durable)
		if err != nil {
			return false
		}
		info := c.CachedInfo()
		return info.NumAckPending == 0 && info.NumPending == 0
	})
}
