package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/chanmq/chanmq"
	mqbridge "github.com/chanmq/chanmq/bridge"
)

// bridges opens the queues and builds the bridges of the directions c
// asks for (nil for the other), with a func that closes the queues. On
// error no queue stays open; the error is a usageError when the command
// line cannot work (a bad queue name, sizes an existing queue has not).
func (c *config) bridges(log *slog.Logger) (out *mqbridge.Out, in *mqbridge.In, closeQueues func(), err error) {
	var opened []*chanmq.Queue
	closeQueues = func() {
		for _, q := range opened {
			q.Close()
		}
	}
	if c.out != "" {
		q, err := c.openQueue("-out", c.out, chanmq.ReadOnly())
		if err != nil {
			return nil, nil, nil, err
		}
		opened = append(opened, q)
		out = &mqbridge.Out{Queue: q, Subject: c.subject, Stream: c.stream, Journal: filepath.Join(c.journal, "out.journal"),
			Fsync: c.fsync, Window: c.window, Log: log}
	}
	if c.in != "" {
		// The in-bridge only sends, but it opens its queue for receiving
		// too where it may: if the queue is removed under it, it takes back
		// what it delivered into it and no program took, and moves it into
		// the queue the name leads to (mqbridge.ErrQueueReplaced).
		q, err := c.openQueue("-in", c.in)
		if errors.Is(err, fs.ErrPermission) {
			if q, err = c.openQueue("-in", c.in, chanmq.WriteOnly()); err == nil {
				log.Warn("this user may send to the queue but not receive from it, so the bridge holds it write-only: if the queue is removed under the bridge, "+
					"what it delivered into it and no program took cannot be moved, and is lost with it", "queue", c.in)
			}
		}
		if err != nil {
			closeQueues()
			return nil, nil, nil, err
		}
		opened = append(opened, q)
		in = &mqbridge.In{Queue: q, Stream: c.stream, Durable: c.durable, CreateConsumer: c.createConsumer, AckWait: c.ackWait,
			FilterSubject: c.filter, DeadLetter: c.deadLetter, Journal: filepath.Join(c.journal, "in.journal"),
			Fsync: c.fsync, Prefetch: c.prefetch, Log: log}
	}
	return out, in, closeQueues, nil
}

// openQueue opens name, given by flagName, with access (ReadOnly or
// WriteOnly; none: for both), creating it with mode 0600, and -max and
// -size, when -create is set. Its errors say what to do in the command's
// terms (its flags, the chanmq command), not in the library's.
func (c *config) openQueue(flagName, name string, access ...chanmq.OpenOption) (*chanmq.Queue, error) {
	opts := slices.Clone(access)
	if c.createQueue {
		opts = append(opts, chanmq.Create(0o600))
		if c.maxMsgs > 0 {
			opts = append(opts, chanmq.MaxMessages(c.maxMsgs))
		}
		if c.msgSize > 0 {
			opts = append(opts, chanmq.MessageSize(c.msgSize))
		}
	}
	q, err := chanmq.Open(name, opts...)
	switch {
	case err == nil:
		return q, nil
	case errors.Is(err, chanmq.ErrInvalidName):
		return nil, usagef("%s: %v", flagName, err)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("queue %s does not exist: add -create to create it (mode 0600; -max and -size give its sizes), "+
			"or create it first (`chanmq create %s`)", name, name)
	case errors.Is(err, chanmq.ErrAttrMismatch):
		return nil, c.sizesDiffer(flagName, name, access)
	}
	return nil, err
}

// sizesDiffer is the usage error for -create with -max or -size on an
// existing queue of other sizes: the kernel keeps a queue's sizes for its
// life, so the flags can never be met while it exists.
func (c *config) sizesDiffer(flagName, name string, access []chanmq.OpenOption) error {
	asked := ""
	if c.maxMsgs > 0 {
		asked += fmt.Sprintf(" -max %d", c.maxMsgs)
	}
	if c.msgSize > 0 {
		asked += fmt.Sprintf(" -size %d", c.msgSize)
	}
	has := "other sizes"
	if q, err := chanmq.Open(name, access...); err == nil {
		has = fmt.Sprintf("-max %d -size %d", q.Cap(), q.MessageSize())
		q.Close()
	}
	return usagef("%s %s: the queue exists with %s, not the%s asked, and a queue keeps its sizes for its life: "+
		"drop -max and -size to bridge it as it is, or remove it (`chanmq rm %s`, which loses the messages in it) "+
		"so that -create makes it with the sizes asked", flagName, name, has, asked, name)
}
