//go:build linux

package mqbridge_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStartUpChecksSayWhatToDo(t *testing.T) {
	t.Parallel()
	_, nc, _ := startJetStream(t, jetstream.StreamConfig{Name: "SMALL", Subjects: []string{"small"}, MaxMsgSize: 1024})
	q := bridgetest.NewQueue(t, 4, 4096)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Each error is of a kind callers can test with errors.Is; where the
	// fix is a flag or a command, the message names it (advice).
	cases := []struct {
		name   string
		run    func() error
		is     error
		advice string
	}{
		{"out, no stream for the subject", func() error {
			return (&mqbridge.Out{Queue: q, Subject: "nowhere", Journal: filepath.Join(dir, "o1")}).Run(ctx, nc)
		}, mqbridge.ErrStreamNotFound, "`nats stream add STREAM --subjects nowhere --dupe-window 2h --max-msg-size 4352 --defaults`"},
		{"out, the stream named does not exist", func() error {
			return (&mqbridge.Out{Queue: q, Subject: "odd.$x", Stream: "JOBS", Journal: filepath.Join(dir, "o4")}).Run(ctx, nc)
		}, mqbridge.ErrStreamNotFound, "`nats stream add JOBS --subjects 'odd.$x' "},
		// Issue 17 item 16: the stream exists, so `nats stream add` would
		// fail; its subjects must be kept (--subjects replaces them).
		{"out, the stream named exists and does not capture the subject", func() error {
			return (&mqbridge.Out{Queue: q, Subject: "nowhere", Stream: "SMALL", Journal: filepath.Join(dir, "o5")}).Run(ctx, nc)
		}, mqbridge.ErrStreamNotFound, "`nats stream edit SMALL --subjects small --subjects nowhere`"},
		{"out, stream max message size below the queue's", func() error {
			return (&mqbridge.Out{Queue: q, Subject: "small", Journal: filepath.Join(dir, "o2")}).Run(ctx, nc)
		}, mqbridge.ErrSizeLimit, "--max-msg-size"},
		{"out, wrong stream named", func() error {
			return (&mqbridge.Out{Queue: q, Subject: "small", Stream: "OTHER", Journal: filepath.Join(dir, "o3")}).Run(ctx, nc)
		}, mqbridge.ErrStreamMismatch, ""},
		{"in, missing stream", func() error {
			return (&mqbridge.In{Queue: q, Stream: "NOPE", Durable: "d", Journal: filepath.Join(dir, "i1")}).Run(ctx, nc)
		}, mqbridge.ErrStreamNotFound, ""},
		{"in, missing consumer", func() error {
			return (&mqbridge.In{Queue: q, Stream: "SMALL", Durable: "d", Journal: filepath.Join(dir, "i2")}).Run(ctx, nc)
		}, mqbridge.ErrConsumerNotFound, "-create-consumer"},
	}
	for _, c := range cases {
		err := c.run()
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.advice) {
			t.Errorf("%s: got %v, want %v (saying %q)", c.name, err, c.is, c.advice)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
}

func TestTwoBridgesOnOneJournalIsRefused(t *testing.T) {
	t.Parallel()
	_, nc, js := startJetStream(t, jetstream.StreamConfig{Name: "LOCK", Subjects: []string{"lock"}})
	q := bridgetest.NewQueue(t, 4, 128)
	journal := filepath.Join(t.TempDir(), "sub", "out")
	first := &mqbridge.Out{Queue: q, Subject: "lock", Journal: journal, Log: quietLog(t)}
	stop := runInBackground(t, func(ctx context.Context) error { return first.Run(ctx, nc) })
	// A message through the first bridge proves it holds the journal.
	if err := q.Send(context.Background(), payload(0, 64), 0); err != nil {
		t.Fatal(err)
	}
	waitStream(t, js, "LOCK", 1, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := (&mqbridge.Out{Queue: q, Subject: "lock", Journal: journal, Log: quietLog(t)}).Run(ctx, nc)
	if !errors.Is(err, mqbridge.ErrJournalLocked) {
		t.Fatalf("second bridge on one journal: got %v, want it refused", err)
	}
	t.Logf("%v", err)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
