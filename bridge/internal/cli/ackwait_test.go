//go:build linux

package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/chanmq/chanmq/internal/testutil"
	"github.com/nats-io/nats.go/jetstream"
)

// TestAckWaitIsComparedOnlyWhenGiven: -ack-wait used to default to 30s,
// so the command always passed one; the in-bridge then warned for every
// existing consumer whose AckWait is not 30s, and its `nats consumer add`
// advice always said --wait 30s. Without the flag there is nothing to
// compare and nothing to advise; with it, both stay.
func TestAckWaitIsComparedOnlyWhenGiven(t *testing.T) {
	t.Parallel()
	ts := bridgetest.StartServer(t, nil)
	// Messages of at most the queues' 128 bytes, headers aside: no other
	// warning at start.
	_, js := ts.JetStream(t, jetstream.StreamConfig{Name: "WAIT", Subjects: []string{"wait"}, MaxMsgSize: 128 + 256})
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
	defer cancel()
	for _, d := range []string{"minute", "minute-asked"} {
		if _, err := js.CreateConsumer(ctx, "WAIT", jetstream.ConsumerConfig{Durable: d, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, "wait", []byte("m0")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, durable string
		flags         []string
		delivers      bool     // the bridge delivers, then is stopped (else it exits 1)
		want, unwant  []string // in its output
		ackWait       time.Duration
	}{
		{"an existing consumer with another AckWait, no -ack-wait: no warning", "minute", nil, true,
			nil, []string{"AckWait", "level=WARN"}, 0},
		{"the same with -ack-wait 5s: a warning with both values", "minute-asked", []string{"-ack-wait", "5s"}, true,
			[]string{"level=WARN", "AckWait", "consumer_ack_wait=1m0s", "asked=5s", "nats consumer edit WAIT minute-asked --wait 5s"}, nil, 0},
		{"a missing consumer, no -ack-wait: the advice has no --wait", "none", nil, false,
			[]string{"`nats consumer add WAIT none --pull --ack explicit --deliver all --defaults`"}, []string{"--wait"}, 0},
		{"a missing consumer, -ack-wait 5s: the advice has it", "none-asked", []string{"-ack-wait", "5s"}, false,
			[]string{"`nats consumer add WAIT none-asked --pull --ack explicit --deliver all --wait 5s --defaults`"}, nil, 0},
		{"-create-consumer without -ack-wait creates the consumer with the default", "created", []string{"-create-consumer"}, true,
			[]string{"created the durable consumer"}, []string{"level=WARN"}, 30 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := bridgetest.NewQueue(t, 4, 128)
			args := append([]string{"-server", ts.URL(), "-in", q.Name(), "-stream", "WAIT", "-durable", c.durable, "-journal", t.TempDir()}, c.flags...)
			p := bridgetest.StartBridge(t, args...)
			if c.delivers {
				if _, _, err := q.Receive(ctx); err != nil {
					t.Fatalf("the bridge delivered nothing (%v):\n%s", err, p.Stderr)
				}
				p.Stop(t)
			} else if code := p.Exit(t); code != 1 {
				t.Fatalf("exit status %d, want 1:\n%s", code, p.Stderr)
			}
			out := p.Stderr.String()
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("the output does not say %q:\n%s", w, out)
				}
			}
			for _, u := range c.unwant {
				if strings.Contains(out, u) {
					t.Errorf("the output says %q:\n%s", u, out)
				}
			}
			if c.ackWait != 0 {
				cons, err := js.Consumer(ctx, "WAIT", c.durable)
				if err != nil {
					t.Fatal(err)
				}
				if got := cons.CachedInfo().Config.AckWait; got != c.ackWait {
					t.Errorf("the consumer's AckWait is %v, want %v", got, c.ackWait)
				}
			}
		})
	}
}
