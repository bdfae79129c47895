//go:build linux

package mqbridge_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chanmq/chanmq"
	"github.com/chanmq/chanmq/internal/testutil"
)

// logRecorder is a slog handler that keeps the messages of the records it
// gets (at Info and above) and passes them on to the test's log.
type logRecorder struct {
	t    testing.TB
	mu   *sync.Mutex
	msgs *[]string
}

func newLogRecorder(t testing.TB) (*slog.Logger, *logRecorder) {
	r := &logRecorder{t: t, mu: &sync.Mutex{}, msgs: &[]string{}}
	return slog.New(r), r
}

func (r *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	line := b.String()
	r.mu.Lock()
	*r.msgs = append(*r.msgs, line)
	r.mu.Unlock()
	r.t.Log(line)
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r } // the direction, queue…: not needed here
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// has reports whether a record at level (or above) whose line contains
// every one of subs was logged.
func (r *logRecorder) has(level slog.Level, subs ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range *r.msgs {
		lv, _, _ := strings.Cut(m, " ")
		var l slog.Level
		if l.UnmarshalText([]byte(lv)) != nil || l < level {
			continue
		}
		all := true
		for _, s := range subs {
			all = all && strings.Contains(m, s)
		}
		if all {
			return true
		}
	}
	return false
}

// runLikeAPod runs fn (a bridge's Run) in a goroutine until t ends, and
// starts it again, as a pod restarts its container, each time it returns
// an error that matches one of restartOn (the documented exits of a
// bridge whose stream or consumer went away). Any other error fails t.
// It returns the count of restarts.
func runLikeAPod(t testing.TB, fn func(ctx context.Context) error, restartOn ...error) *atomic.Int64 {
	ctx, cancel := context.WithCancel(context.Background())
	var restarts atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			err := fn(ctx)
			if err == nil || ctx.Err() != nil {
				return
			}
			if !slices.ContainsFunc(restartOn, func(e error) bool { return errors.Is(err, e) }) {
				t.Errorf("Run: %v", err)
				return
			}
			t.Logf("Run ended as documented, restarting it: %v", err)
			restarts.Add(1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(testutil.Patience):
			t.Error("the bridge did not stop after its context was cancelled")
		}
	})
	return &restarts
}

// drainQueue takes what q holds without waiting.
func drainQueue(t testing.TB, q *chanmq.Queue, seen map[int]int) {
	t.Helper()
	for {
		b, _, err := q.TryReceive()
		if errors.Is(err, chanmq.ErrEmpty) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[msgNumber(b)]++
	}
}

// journalInode is the inode of the journal at path: a rewrite renames a
// new file over it.
func journalInode(t testing.TB, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// journalInodeOr is journalInode, or or if the journal is not there (yet).
func journalInodeOr(path string, or uint64) uint64 {
	fi, err := os.Stat(path)
	if err != nil {
		return or
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
