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

// watchQueue checks every queueCheckInterval, until ctx is done, that the
// name of q still leads to q. A queue removed (and perhaps created again
// under its name) goes on existing for those who hold it open, but no one
// can open it any more: a bridge would go on using it while the programs
// beside it use the queue the name leads to now. When that happens
// watchQueue calls gone with the reason (an error matching
// ErrQueueReplaced) and returns. A check that cannot tell (the name cannot
// be opened for another reason) is logged once to log; the checks go on.
func watchQueue(ctx context.Context, q *chanmq.Queue, log *slog.Logger, gone func(reason error)) {
	t := time.NewTicker(queueCheckInterval)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		replaced, err := queueReplaced(q)
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
func queueReplaced(q *chanmq.Queue) (replaced, err error) {
	name := q.Name()
	fresh, err := chanmq.Open(name, chanmq.ReadOnly())
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: queue %s was removed, so no program can reach the queue the bridge holds by its name; "+
			"create the queue again and restart the bridge (or restart it with -create)", ErrQueueReplaced, name), nil
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
	return fmt.Errorf("%w: queue %s was removed and created again, so no program can reach the queue the bridge holds by its name; "+
		"restart the bridge to bridge the new one", ErrQueueReplaced, name), nil
}
