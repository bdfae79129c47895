package mqbridge

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/chanmq/chanmq"
)

// What the in direction does when its queue is removed under it.
//
// A queue removed (and perhaps created again under its name) goes on
// existing for those who hold it open, and no program can open it any
// more. What the bridge delivered into it and no program took would die
// with it when the bridge exits, although JetStream was told the queue
// took it (acknowledged). So the bridge stops pulling and sending at once
// (what it pulled and did not send is not acknowledged: JetStream
// redelivers it after the restart), takes back what is left in the queue
// it holds, one message at a time, and sends each, in the order the queue
// gives them and with its priority, into the queue the name leads to now:
// the one someone created again, or, if there is none, one the bridge
// creates with the removed queue's sizes and mode 0600 (as -create
// would). A message it cannot move (larger than the new queue's messages,
// the new queue full for inMoveTimeout or not to be opened, the bridge
// stopped meanwhile) is logged with its bytes (base64): the only copy
// left. Then Run ends with ErrQueueReplaced, saying how many it moved;
// the restarted bridge delivers into the new queue.
//
// Why move rather than leave them: a restart cannot bring them back (they
// are acknowledged, and journaled as sent), and the programs beside the
// bridge read the queue the name leads to. A crash while moving loses the
// message in hand (taken from the old queue, not yet in the new one): one
// per crash, as on the out side.

// inMoveTimeout bounds how long moving waits for room in the new queue
// (a variable for a test).
var inMoveTimeout = 30 * time.Second

// moveOrphaned moves what is left in the queue In holds, whose name leads
// elsewhere now (gone says how), into the queue the name leads to, and
// returns the error Run ends with.
func (b *inBridge) moveOrphaned(ctx context.Context, gone *queueGone) error {
	old := b.cfg.Queue
	mctx, cancel := context.WithTimeout(ctx, inMoveTimeout)
	defer cancel()
	var (
		to            *chanmq.Queue // opened at the first message: an empty queue needs no successor
		created       bool
		openErr       error
		moved, logged int
		lastWhy       error // why the last message logged could not be moved
	)
	defer func() {
		if to != nil {
			to.Close()
		}
	}()
	for {
		data, prio, err := old.TryReceive()
		if errors.Is(err, chanmq.ErrEmpty) {
			break
		}
		if err == nil && to == nil && openErr == nil {
			to, created, openErr = successor(old)
		}
		if err != nil {
			// Write-only (the user may not receive from it), or closed by
			// its owner: what is left cannot be taken back.
			if rest := old.Len(); rest > 0 {
				return fmt.Errorf("%w; the bridge stopped, moved %d messages it had delivered into that queue and no program had taken, "+
					"and cannot take back the %d left (%v): they are lost with it; %s", gone, moved, rest, err, gone.restart(gone.recreated || to != nil))
			}
			break
		}
		var why error
		switch {
		case to == nil:
			why = openErr
		case len(data) > to.MessageSize():
			why = fmt.Errorf("a message of %d bytes does not fit queue %s's MessageSize %d", len(data), to.Name(), to.MessageSize())
		default:
			why = to.TrySend(data, prio)
			if errors.Is(why, chanmq.ErrFull) {
				why = to.Send(mctx, data, prio)
			}
			switch {
			case why == nil:
			case ctx.Err() != nil:
				why = fmt.Errorf("the bridge was stopped while it waited for room in queue %s", to.Name())
			case mctx.Err() != nil:
				why = fmt.Errorf("queue %s stayed full for %v", to.Name(), inMoveTimeout)
			}
		}
		if why == nil {
			moved++
			continue
		}
		logged, lastWhy = logged+1, why
		b.log.Error("a message the bridge delivered into the removed queue could not be moved into the queue its name leads to now; it is acknowledged to JetStream, and these bytes are its only copy",
			"priority", prio, "bytes", len(data), "base64", base64.StdEncoding.EncodeToString(data), "err", why)
	}
	var what strings.Builder
	if moved+logged == 0 {
		return fmt.Errorf("%w; the bridge stopped (it had delivered nothing into that queue that no program took); what it pulled and did not deliver is not acknowledged, "+
			"and JetStream redelivers it: %s", gone, gone.restart(gone.recreated))
	}
	fmt.Fprintf(&what, "; the bridge stopped, and moved %d messages it had delivered into that queue and no program had taken into %s", moved, old.Name())
	if created {
		fmt.Fprintf(&what, ", which it created again (%d messages of %d bytes, mode 0600)", to.Cap(), to.MessageSize())
	}
	what.WriteString(", in their order and with their priorities")
	if logged > 0 {
		fmt.Fprintf(&what, "; %d could not be moved (the last: %v) and are logged above with their bytes (base64)", logged, lastWhy)
	}
	fmt.Fprintf(&what, "; what it pulled and did not deliver is not acknowledged, and JetStream redelivers it: %s", gone.restart(gone.recreated || to != nil))
	return fmt.Errorf("%w%s", gone, what.String())
}

// successor opens, for sending, the queue that old's name leads to now,
// or creates it, with old's sizes and mode 0600, if there is none (then
// created is true).
func successor(old *chanmq.Queue) (q *chanmq.Queue, created bool, err error) {
	name := old.Name()
	for range 3 { // the name may come and go meanwhile
		q, err = chanmq.Open(name, chanmq.WriteOnly())
		if !errors.Is(err, fs.ErrNotExist) {
			return q, false, err
		}
		q, err = chanmq.Open(name, chanmq.WriteOnly(), chanmq.Create(0o600), chanmq.Exclusive(),
			chanmq.MaxMessages(old.Cap()), chanmq.MessageSize(old.MessageSize()))
		if !errors.Is(err, fs.ErrExist) {
			return q, err == nil, err
		}
	}
	return nil, false, err
}
