package mqbridge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/chanmq/chanmq"
)

// queueCheckInterval is how often a running bridge checks that its
// queue's name still leads to the queue it holds. A check is an mq_open,
// two fstat and a close: about 10 µs.
const queueCheckInterval = time.Second

// queueGone is why watchQueue fired: the name of the queue a bridge holds
// leads to no queue, or to another one. It matches ErrQueueReplaced; each
// direction adds what it did about it and what to do.
type queueGone struct {
	name      string
	recreated bool // another queue has the name now (else none has)
}

func (g *queueGone) Error() string {
	what := "removed"
	if g.recreated {
		what = "removed and created again"
	}
	return fmt.Sprintf("%v: queue %s was %s, so no program can reach the queue the bridge holds by its name", ErrQueueReplaced, g.name, what)
}

func (g *queueGone) Unwrap() error { return ErrQueueReplaced }

// restart says how to go on once the bridge stopped: restart it, after
// creating the queue again if none has its name (exists is false).
func (g *queueGone) restart(exists bool) string {
	if exists {
		return fmt.Sprintf("restart the bridge to bridge the queue %s is now", g.name)
	}
	return fmt.Sprintf("create %s again and restart the bridge (or restart it with -create)", g.name)
}

// startQueueWatch runs watchQueue in a goroutine until ctx is done or it
// fired; stop ends it and waits for it.
func startQueueWatch(ctx context.Context, q *chanmq.Queue, access chanmq.OpenOption, log *slog.Logger, gone func(reason *queueGone)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchQueue(ctx, q, access, log, gone)
	}()
	return func() {
		cancel()
		<-done
	}
}

// watchQueue checks every queueCheckInterval, until ctx is done, that the
// name of q still leads to q, opening the name with access (the bridge's
// own direction, which its user may). A queue removed (and perhaps created
// again under its name) goes on existing for those who hold it open, but
// no one can open it any more: a bridge would go on using it while the
// programs beside it use the queue the name leads to now. When that
// happens watchQueue calls gone with the reason and returns. A check that
// cannot tell (the name cannot be opened for another reason) is logged
// once to log; the checks go on.
func watchQueue(ctx context.Context, q *chanmq.Queue, access chanmq.OpenOption, log *slog.Logger, gone func(reason *queueGone)) {
	t := time.NewTicker(queueCheckInterval)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		replaced, err := queueReplaced(q, access)
		switch {
		case replaced != nil:
			gone(replaced)
			return
		case err != nil && !warned:
			log.Warn("cannot check that the queue's name still leads to the queue the bridge holds; the bridge goes on and checks again", "err", err)
			warned = true
		}
	}
}

// queueReplaced opens the name of q again and compares the kernel queue
// it leads to with q (chanmq's SameQueue: device and inode). It returns
// the reason when they differ, or the error that kept it from telling.
func queueReplaced(q *chanmq.Queue, access chanmq.OpenOption) (replaced *queueGone, err error) {
	name := q.Name()
	fresh, err := chanmq.Open(name, access)
	if errors.Is(err, fs.ErrNotExist) {
		return &queueGone{name: name}, nil
	}
	if err != nil {
		return nil, err
	}
	defer fresh.Close()
	if q.SameQueue(fresh) {
		return nil, nil
	}
	if _, err := q.Attr(); err != nil {
		return nil, err // closed by its owner: the bridge's own calls say so
	}
	return &queueGone{name: name, recreated: true}, nil
}
