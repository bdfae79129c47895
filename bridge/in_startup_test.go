//go:build linux

package mqbridge_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/chanmq/chanmq/internal/testutil"
	"github.com/nats-io/nats.go/jetstream"
)

// A consumer the bridge cannot use as it is asked to is refused at start,
// with what the consumer has and the command that changes it: a push
// consumer (the bridge's own advice must be reached, not nats.go's "not a
// pull consumer"), and a filter other than -filter (which decides what
// arrives).
func TestInRefusesAConsumerItCannotUseSayingWhatToRun(t *testing.T) {
	t.Parallel()
	_, nc, js := startJetStream(t, jetstream.StreamConfig{Name: "CONS", Subjects: []string{"cons.>"}})
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience)
	defer cancel()
	if _, err := js.CreateOrUpdatePushConsumer(ctx, "CONS", jetstream.ConsumerConfig{Durable: "push", DeliverSubject: "push.here", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []jetstream.ConsumerConfig{
		{Durable: "a", FilterSubject: "cons.a", AckPolicy: jetstream.AckExplicitPolicy},
		{Durable: "all", AckPolicy: jetstream.AckExplicitPolicy},
	} {
		if _, err := js.CreateConsumer(ctx, "CONS", c); err != nil {
			t.Fatal(err)
		}
	}
	q := bridgetest.NewQueue(t, 2, 128)
	dir := t.TempDir()
	for _, c := range []struct {
		name, durable, filter string
		create                bool
		advice                []string
	}{
		{"push consumer", "push", "", false, []string{"push consumer", "--pull", "nats consumer rm CONS push"}},
		{"push consumer, -create-consumer", "push", "", true, []string{"push consumer", "--pull"}},
		{"other filter", "a", "cons.b", false, []string{`filters "cons.a"`, "nats consumer edit CONS a --filter cons.b"}},
		{"no filter", "all", "cons.b", true, []string{"takes every subject", "nats consumer edit CONS all --filter cons.b"}},
	} {
		in := &mqbridge.In{Queue: q, Stream: "CONS", Durable: c.durable, FilterSubject: c.filter, CreateConsumer: c.create,
			Journal: filepath.Join(dir, c.durable), Log: quietLog(t)}
		err := in.Run(ctx, nc)
		ok := errors.Is(err, mqbridge.ErrConsumerConfig)
		for _, a := range c.advice {
			ok = ok && err != nil && strings.Contains(err.Error(), a)
		}
		if !ok {
			t.Errorf("%s: got %v, want ErrConsumerConfig saying %q", c.name, err, c.advice)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
}

// An -ack-wait other than the existing consumer's is not silently
// ignored: the bridge warns, with both values and the command to change
// it, and runs with the consumer's (it keeps waiting messages alive by
// the consumer's AckWait).
func TestInWarnsWhenTheConsumerHasAnotherAckWait(t *testing.T) {
	t.Parallel()
	_, nc, js := startJetStream(t, jetstream.StreamConfig{Name: "WAIT", Subjects: []string{"wait"}})
	ctx := context.Background()
	if _, err := js.CreateConsumer(ctx, "WAIT", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "wait", payload(0, 64)); err != nil {
		t.Fatal(err)
	}
	q := bridgetest.NewQueue(t, 2, 128)
	log, rec := newLogRecorder(t)
	in := &mqbridge.In{Queue: q, Stream: "WAIT", Durable: "w", AckWait: 5 * time.Second,
		Journal: filepath.Join(t.TempDir(), "in"), Log: log}
	stop := runInBackground(t, func(ctx context.Context) error { return in.Run(ctx, nc) })
	receiveN(t, q, 1, testutil.Patience) // it runs
	if !rec.has(slog.LevelWarn, "AckWait", "consumer_ack_wait=1m0s", "asked=5s", "nats consumer edit WAIT w --wait 5s") {
		t.Error("no warning that the consumer's AckWait is not -ack-wait")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// A stream made as the README says (--max-msg-size 8448, for queues of
// 8192-byte messages: 256 bytes are for headers) gives no warning at
// start; one that takes larger messages does.
func TestInWarnsOfLargerMessagesOnlyWhenTheStreamTakesThem(t *testing.T) {
	t.Parallel()
	_, nc, _ := startJetStream(t,
		jetstream.StreamConfig{Name: "README", Subjects: []string{"readme"}, MaxMsgSize: 8448},
		jetstream.StreamConfig{Name: "LARGER", Subjects: []string{"larger"}, MaxMsgSize: 8449})
	q := bridgetest.NewQueue(t, 1, 8192)
	for _, c := range []struct {
		stream string
		warns  bool
	}{{"README", false}, {"LARGER", true}} {
		log, rec := newLogRecorder(t)
		in := &mqbridge.In{Queue: q, Stream: c.stream, Durable: "d", CreateConsumer: true,
			Journal: filepath.Join(t.TempDir(), "in"), Log: log}
		stop := runInBackground(t, func(ctx context.Context) error { return in.Run(ctx, nc) })
		testutil.WaitFor(t, "the bridge started", func() bool { return rec.has(slog.LevelInfo, "created the durable consumer") })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if warned := rec.has(slog.LevelWarn, "larger than the queue's MessageSize"); warned != c.warns {
			t.Errorf("stream %s: warned %v, want %v", c.stream, warned, c.warns)
		}
	}
}
