package mqbridge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/chanmq/chanmq"
)

// queueCheckInterval is how often a running Out checks that its queue's
// name still leads to the queue it holds. A check is an mq_open, two fstat
// and a close: about 10 µs.
const queueCheckInterval = time.Second

// watchQueue checks every queueCheckInterval, until ctx is done, that the
// queue's name still leads to the queue b holds. A queue removed (and
// perhaps created again under its name) goes on existing for those who
// hold it open, but no one can open it any more: the bridge would wait on
// it for ever while new messages pile up, unforwarded, in the queue the
// name leads to now. When that happens watchQueue calls gone with the
// reason (an error matching ErrQueueReplaced) and returns.
func (b *outBridge) watchQueue(ctx context.Context, gone context.CancelCauseFunc) {
	t := time.NewTicker(queueCheckInterval)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		replaced, err := b.queueReplaced()
		switch {
		case replaced != nil:
			b.log.Warn("the queue's name no longer leads to the queue the bridge holds; forwarding what is left in it, then stopping", "err", replaced)
			gone(replaced)
			return
		case err != nil && !warned:
			b.log.Warn("cannot check that the queue's name still leads to the queue the bridge holds; the bridge goes on and checks again", "err", err)
			warned = true
		}
	}
}

// queueReplaced opens the queue's name again and compares the kernel
// queue it leads to with the one b holds (chanmq's SameQueue: device and
// inode). It returns the reason when they differ, or the error that kept
// it from telling (then it cannot say, and the caller goes on).
func (b *outBridge) queueReplaced() (replaced, err error) {
	q := b.cfg.Queue
	name := q.Name()
	fresh, err := chanmq.Open(name, chanmq.ReadOnly())
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: queue %s was removed, so no one can send to the queue the bridge holds; "+
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
		return nil, err // closed by its owner: the receive says so
	}
	return fmt.Errorf("%w: queue %s was removed and created again, so no one can send to the queue the bridge holds; "+
		"restart the bridge to forward the new one", ErrQueueReplaced, name), nil
}
