//go:build linux

package cli_test

import (
	"strings"
	"testing"

	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// TestFaultsSayWhatToDoInTheirLastLine: a fault exits 1 with what to do,
// and the error is the last line the command writes, after the
// connection's own events (issue 17 item 11: the deferred close logged
// "disconnected; reconnecting" err=<nil> after it).
func TestFaultsSayWhatToDoInTheirLastLine(t *testing.T) {
	t.Parallel()
	noJS := bridgetest.StartServer(t, func(o *server.Options) { o.JetStream = false })
	plain := bridgetest.StartServer(t, nil)
	plain.JetStream(t, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}})
	q := bridgetest.NewQueue(t, 4, 128)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"-out against a server without JetStream (issue 17 item 9)",
			[]string{"-server", noJS.URL(), "-out", q.Name(), "-subject", "jobs.work"},
			"JetStream is not enabled on the server (or for this account): start nats-server with -js"},
		{"-in against a server without JetStream",
			[]string{"-server", noJS.URL(), "-in", q.Name(), "-stream", "JOBS", "-durable", "d"},
			"JetStream is not enabled on the server (or for this account): start nats-server with -js"},
		{"tls:// against a server without TLS (issue 17 item 10)",
			[]string{"-server", strings.Replace(plain.URL(), "nats://", "tls://", 1), "-out", q.Name(), "-subject", "jobs.work"},
			"the server does not offer it: use a nats:// URL without the TLS flags"},
		{"a subject no stream captures, after connecting",
			[]string{"-server", plain.URL(), "-out", q.Name(), "-subject", "nowhere"},
			"no stream captures subject"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// The old code's line came from a goroutine that raced the
			// exit: several runs, so that the test saw it fail.
			for range runs {
				p := bridgetest.StartBridge(t, append(c.args, "-journal", t.TempDir())...)
				if code := p.Exit(t); code != 1 {
					t.Fatalf("exit status %d, want 1:\n%s", code, p.Stderr)
				}
				if last := p.LastLine(); !strings.Contains(last, "level=ERROR") || !strings.Contains(last, c.want) {
					t.Fatalf("last line:\n%s\nwant the error, saying %q; all of it:\n%s", last, c.want, p.Stderr)
				}
				noOutage(t, p)
			}
		})
	}
}

// TestStoppedIsTheLastLine: after SIGINT the command exits 0 and its last
// line says it stopped (issue 17 item 11).
func TestStoppedIsTheLastLine(t *testing.T) {
	t.Parallel()
	ts := bridgetest.StartServer(t, nil)
	ts.JetStream(t, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}})
	q := bridgetest.NewQueue(t, 4, 128)
	for range runs {
		p := bridgetest.StartBridge(t, "-server", ts.URL(), "-out", q.Name(), "-subject", "jobs.work", "-journal", t.TempDir())
		p.WaitOutput(t, "stream checked")
		p.Stop(t)
		if last := p.LastLine(); !strings.Contains(last, "msg=stopped") {
			t.Fatalf("last line after SIGINT:\n%s\nwant msg=stopped; all of it:\n%s", last, p.Stderr)
		}
		noOutage(t, p)
	}
}

// runs is how many times the tests of the last line run the command.
const runs = 8

// noOutage fails t if the bridge logged a disconnection: the server stayed
// up, and the command's own close of the connection is no outage.
func noOutage(t *testing.T, p *bridgetest.Proc) {
	t.Helper()
	if strings.Contains(p.Stderr.String(), "disconnected") {
		t.Fatalf("the bridge logged a disconnection while the server was up:\n%s", p.Stderr)
	}
}
