package cli

import (
	"log/slog"
	"path/filepath"

	"github.com/chanmq/chanmq"
	mqbridge "github.com/chanmq/chanmq/bridge"
)

// bridges opens the queues and builds the bridges of the directions c
// asks for (nil for the other), with a func that closes the queues. On
// error no queue stays open.
func (c *config) bridges(log *slog.Logger) (out *mqbridge.Out, in *mqbridge.In, closeQueues func(), err error) {
	var opened []*chanmq.Queue
	closeQueues = func() {
		for _, q := range opened {
			q.Close()
		}
	}
	if c.out != "" {
		q, err := c.openQueue(c.out, chanmq.ReadOnly())
		if err != nil {
			return nil, nil, nil, err
		}
		opened = append(opened, q)
		out = &mqbridge.Out{Queue: q, Subject: c.subject, Stream: c.stream, Journal: filepath.Join(c.journal, "out.journal"),
			Fsync: c.fsync, Window: c.window, Log: log}
	}
	if c.in != "" {
		q, err := c.openQueue(c.in, chanmq.WriteOnly())
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

// openQueue opens name in direction dir (ReadOnly for out, WriteOnly for
// in), creating it with mode 0600, and -max and -size, when -create is
// set.
func (c *config) openQueue(name string, dir chanmq.OpenOption) (*chanmq.Queue, error) {
	opts := []chanmq.OpenOption{dir}
	if c.createQueue {
		opts = append(opts, chanmq.Create(0o600))
		if c.maxMsgs > 0 {
			opts = append(opts, chanmq.MaxMessages(c.maxMsgs))
		}
		if c.msgSize > 0 {
			opts = append(opts, chanmq.MessageSize(c.msgSize))
		}
	}
	return chanmq.Open(name, opts...)
}
