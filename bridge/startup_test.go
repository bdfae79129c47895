//go:build linux

package mqbridge_test

import (
	"context"
	"errors"
	"fmt"
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
	// fix is a flag or a command, the message names it (advice). Each
	// case is an Out or an In, given the queue and a journal of its own.
	cases := []struct {
		name   string
		out    *mqbridge.Out
		in     *mqbridge.In
		is     error
		advice string
	}{
		{name: "out, no stream for the subject", out: &mqbridge.Out{Subject: "nowhere"},
			is: mqbridge.ErrStreamNotFound, advice: "`nats stream add STREAM --subjects nowhere --dupe-window 2h --max-msg-size 4352 --defaults`"},
		{name: "out, the stream named does not exist", out: &mqbridge.Out{Subject: "odd.$x", Stream: "JOBS"},
			is: mqbridge.ErrStreamNotFound, advice: "`nats stream add JOBS --subjects 'odd.$x' "},
		// Issue 17 item 16: the stream exists, so `nats stream add` would
		// fail; its subjects must be kept (--subjects replaces them).
		{name: "out, the stream named exists and does not capture the subject", out: &mqbridge.Out{Subject: "nowhere", Stream: "SMALL"},
			is: mqbridge.ErrStreamNotFound, advice: "`nats stream edit SMALL --subjects small --subjects nowhere`"},
		{name: "out, stream max message size below the queue's", out: &mqbridge.Out{Subject: "small"}, is: mqbridge.ErrSizeLimit, advice: "--max-msg-size"},
		{name: "out, wrong stream named", out: &mqbridge.Out{Subject: "small", Stream: "OTHER"}, is: mqbridge.ErrStreamMismatch},
		{name: "in, missing stream", in: &mqbridge.In{Stream: "NOPE", Durable: "d"}, is: mqbridge.ErrStreamNotFound},
		{name: "in, missing consumer", in: &mqbridge.In{Stream: "SMALL", Durable: "d"}, is: mqbridge.ErrConsumerNotFound, advice: "-create-consumer"},
	}
	for i, c := range cases {
		journal := filepath.Join(dir, fmt.Sprint(i))
		var err error
		if c.out != nil {
			c.out.Queue, c.out.Journal = q, journal
			err = c.out.Run(ctx, nc)
		} else {
			c.in.Queue, c.in.Journal = q, journal
			err = c.in.Run(ctx, nc)
		}
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
