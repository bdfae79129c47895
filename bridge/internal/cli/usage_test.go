//go:build linux

package cli_test

import (
	"strings"
	"testing"

	"github.com/chanmq/chanmq"
	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/chanmq/chanmq/internal/testutil"
)

// noServer is a URL where nothing listens: a command line that cannot
// work must be refused before the bridge tries to connect, so that the
// reason is the command line's, not "no servers".
const noServer = "nats://127.0.0.1:1"

// TestCommandLinesThatCannotWorkExit2 runs command lines that no restart
// can fix: each must exit 2 at once, before connecting, saying why.
func TestCommandLinesThatCannotWorkExit2(t *testing.T) {
	t.Parallel()
	q := bridgetest.NewQueue(t, 4, 128)
	for _, c := range []struct {
		name string
		args []string
		want []string // in the output
	}{
		{"a wildcard -subject publishes to a literal subject (issue 17 item 8)",
			[]string{"-out", q.Name(), "-subject", "jobs.*"}, []string{`-subject "jobs.*" has the wildcard "*"`}},
		{"a > -subject likewise",
			[]string{"-out", q.Name(), "-subject", "jobs.>"}, []string{`has the wildcard ">"`}},
		{"a -dead-letter subject is published to as well",
			[]string{"-in", q.Name(), "-stream", "S", "-durable", "d", "-dead-letter", "dead.>"}, []string{`-dead-letter "dead.>" has the wildcard`}},
		{"an empty subject token",
			[]string{"-out", q.Name(), "-subject", "jobs..work"}, []string{"empty token"}},
		{"-out with no queue takes the next flag (issue 17 item 13)",
			[]string{"-out", "-subject", "jobs.work"}, []string{"-out needs a queue name, such as /jobs; it took the next flag, -subject"}},
		{"-in likewise, with -flag=value",
			[]string{"-in", "-stream=S", "-durable", "d"}, []string{"-in needs a queue name"}},
		{"an -out queue name without the slash (issue 17 item 12)",
			[]string{"-out", "jobs", "-subject", "jobs.work"}, []string{"-out: ", "invalid queue name", `did you mean "/jobs"`}},
		{"an -in queue name with a second slash",
			[]string{"-in", "/a/b", "-stream", "S", "-durable", "d"}, []string{"-in: ", "invalid queue name"}},
		{"-create -size on an existing queue of another size (issue 17 item 15)",
			[]string{"-out", q.Name(), "-subject", "x", "-create", "-size", "100"},
			[]string{"exists with -max 4 -size 128, not the -size 100 asked", "drop -max and -size", "chanmq rm " + q.Name()}},
		{"-create -max on an existing queue of another capacity",
			[]string{"-in", q.Name(), "-stream", "S", "-durable", "d", "-create", "-max", "2", "-size", "128"},
			[]string{"exists with -max 4 -size 128, not the -max 2 -size 128 asked"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := bridgetest.StartBridge(t, append(c.args, "-server", noServer, "-journal", t.TempDir())...)
			if code := p.Exit(t); code != 2 {
				t.Fatalf("exit status %d, want 2:\n%s", code, p.Stderr)
			}
			out := p.Stderr.String()
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "connect to ") || strings.Contains(out, "msg=connected") {
				t.Errorf("the command tried to connect before refusing its command line:\n%s", out)
			}
		})
	}
}

// TestCreateWithTheQueuesOwnSizesIsAccepted: -create -max -size that an
// existing queue has are no conflict (the check compares, it does not
// refuse every -create on an existing queue).
func TestCreateWithTheQueuesOwnSizesIsAccepted(t *testing.T) {
	t.Parallel()
	q := bridgetest.NewQueue(t, 4, 128)
	p := bridgetest.StartBridge(t, "-out", q.Name(), "-subject", "x", "-create", "-max", "4", "-size", "128",
		"-server", noServer, "-journal", t.TempDir())
	if code := p.Exit(t); code != 1 || !strings.Contains(p.Stderr.String(), "no server answered") {
		t.Fatalf("exit status %d, want 1 for the missing server (the queue accepted):\n%s", code, p.Stderr)
	}
}

// TestMissingQueueNamesTheCommandsWayToCreateIt (issue 17 item 4): the
// advice is the command's -create or the chanmq command, not the
// library's chanmq.Create(0o600), and it comes before any connection.
func TestMissingQueueNamesTheCommandsWayToCreateIt(t *testing.T) {
	t.Parallel()
	name := testutil.QueueName(t, bridgetest.QueuePrefix, chanmq.Unlink)
	for _, args := range [][]string{
		{"-out", name, "-subject", "x"},
		{"-in", name, "-stream", "S", "-durable", "d"},
	} {
		p := bridgetest.StartBridge(t, append(args, "-server", noServer, "-journal", t.TempDir())...)
		if code := p.Exit(t); code != 1 {
			t.Fatalf("%v: exit status %d, want 1:\n%s", args, code, p.Stderr)
		}
		out := p.Stderr.String()
		if !strings.Contains(out, "add -create") || !strings.Contains(out, "chanmq create "+name) ||
			strings.Contains(out, "chanmq.Create") || strings.Contains(out, "no server") {
			t.Errorf("%v: want the -create and `chanmq create` advice, before connecting:\n%s", args, out)
		}
		if !strings.Contains(p.LastLine(), "level=ERROR") {
			t.Errorf("%v: the last line is not the error: %s", args, p.LastLine())
		}
	}
}
