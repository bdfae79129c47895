//go:build linux

package mqbridge_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/chanmq/chanmq/internal/testutil"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The server (in a process of its own, file storage) is SIGKILLed right
// after the in-bridge rewrote its journal: just after the bridge
// restarted (its start-up rewrite), and just after a compaction while it
// runs. A server writes its consumer state lazily, so after the crash it
// redelivers what it had acknowledged in its last ~100 ms; a journal that
// forgot those sequences on the word of the floor the server reported
// would send them again. The guarantee is at most one duplicate per crash
// (bridge crashes and server crashes alike), and no loss. Kills spaced at
// random never land in these windows: each kill here is aimed at one, a
// journal rewrite seen within a millisecond.
func TestInServerSIGKILLAfterJournalRewritesAtMostOneDuplicatePerCrash(t *testing.T) {
	t.Parallel()
	const (
		n         = 20000
		compactAt = 1500 // records between the bridge's compactions (normally 256k)
		restarts  = 2    // bridge restarts, each followed by a server kill
		compacts  = 3    // server kills after a compaction
	)
	srv := bridgetest.StartServerProc(t)
	nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SKILL", Subjects: []string{"skill"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	publishNumbered(t, js, "skill", 0, n, 128)
	// A clean restart writes every message to the store: the kills below
	// then test the consumer's state, not the stream's last writes.
	srv.Stop()
	srv.Start()

	q := bridgetest.NewQueue(t, 10, 256)
	received := countQueue(t, q)

	dir := t.TempDir()
	journal := filepath.Join(dir, "in.journal")
	env := []string{fmt.Sprintf("%s=%d", mqbridge.InCompactEnv, compactAt)}
	args := []string{"-server", srv.URL(), "-in", q.Name(), "-stream", "SKILL", "-durable", "skill",
		"-create-consumer", "-ack-wait", "1s", "-journal", dir}
	p := bridgetest.StartBridgeEnv(t, env, args...)
	t0 := time.Now()
	waitProgress := func(min int64) {
		t.Helper()
		testutil.WaitFor(t, fmt.Sprintf("%d messages delivered", min), func() bool {
			if err, done := p.Exited(); done {
				t.Fatalf("bridge exited (%v):\n%s", err, p.Stderr)
			}
			return received.Unique() >= min
		})
	}
	// killAtRewrite SIGKILLs the server as soon as the journal is
	// rewritten (its inode changes), and starts it again.
	killAtRewrite := func(before uint64, what string) {
		t.Helper()
		testutil.WaitFor(t, "a journal rewrite "+what, func() bool {
			if err, done := p.Exited(); done {
				t.Fatalf("bridge exited (%v):\n%s", err, p.Stderr)
			}
			return journalInodeOr(journal, before) != before
		})
		seenAt := time.Now()
		srv.Kill()
		t.Logf("server SIGKILLed %v after the journal rewrite %s (at %d delivered)", time.Since(seenAt).Round(time.Microsecond), what, received.Unique())
		srv.Start()
	}
	bridgeKills, serverKills := 0, 0
	waitProgress(n / 10)
	for range restarts {
		// Keep the acknowledgements flowing until the kill: the server's
		// reported floor is then ahead of what it wrote.
		inode := journalInodeOr(journal, 0)
		p.Kill(t)
		bridgeKills++
		p = bridgetest.StartBridgeEnv(t, env, args...)
		killAtRewrite(inode, "at the bridge's start")
		serverKills++
		waitProgress(received.Unique() + n/10)
	}
	for range compacts {
		killAtRewrite(journalInodeOr(journal, 0), "at a compaction")
		serverKills++
		waitProgress(received.Unique() + n/10)
	}
	waitProgress(n)
	bridgetest.WaitAllAcked(t, js, "SKILL", "skill")
	p.Stop(t)
	testutil.WaitFor(t, "the queue drained", func() bool { return q.Len() == 0 })
	c := received.Stop(n)
	t.Logf("in: %v; bridge kills %d, server kills %d, in %v", c, bridgeKills, serverKills, time.Since(t0).Round(time.Millisecond))
	if c.lost != 0 || c.duplicates > bridgeKills+serverKills {
		t.Errorf("want no loss and at most one duplicate per crash (%d): %v", bridgeKills+serverKills, c)
	}
}
