package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/chanmq/chanmq"
)

const recvHelp = `Take messages from the queue, highest priority first, and print each on its
own line. recv waits for one message; -n COUNT waits for COUNT, and -follow
prints messages until SIGINT or SIGTERM (exit 0).

-json prints one object per line, {"data":"aGVsbG8=","priority":0}, where
"data" is the message in standard base64, so binary messages survive: decode
it with 'jq -r .data | base64 -d', or pipe the lines into 'chanmq send -json'.

-timeout D gives up when no message arrives within D (of the start or of
the previous message) and -nonblock when the queue is empty: exit 3 when
fewer than COUNT messages were printed, exit 0 with -follow (so
'chanmq recv /q -follow -nonblock' drains a queue). A signal stops recv
between messages: a message taken from the queue is always printed first.
`

func recvFlags(fs *flag.FlagSet, o *recvOpts) {
	fs.IntVar(&o.n, "n", 1, "number of messages to print")
	fs.BoolVar(&o.follow, "follow", false, "print messages until interrupted (or until -timeout/-nonblock stop it)")
	fs.DurationVar(&o.timeout, "timeout", 0, "wait at most this long (such as 5s) for each message")
	fs.BoolVar(&o.nonblock, "nonblock", false, "do not wait: stop when the queue is empty")
	fs.BoolVar(&o.priority, "priority", false, "print each message's priority and a tab before it")
	fs.BoolVar(&o.json, "json", false, `print {"data":"<base64>","priority":N} lines`)
	fs.BoolVar(&o.nul, "0", false, "end each message with a NUL byte instead of a newline")
	fs.BoolVar(&o.raw, "raw", false, "print the message bytes with nothing after them")
}

type recvOpts struct {
	n              int
	follow         bool
	timeout        time.Duration
	nonblock       bool
	priority       bool
	json, nul, raw bool
}

// jsonOut is what recv -json prints. encoding/json writes a []byte as
// standard base64.
type jsonOut struct {
	Data     []byte `json:"data"`
	Priority uint   `json:"priority"`
}

func runRecv(c *cli, o *recvOpts, args []string) error {
	name, err := oneName("recv", args)
	if err != nil {
		return err
	}
	if err := checkRecvOpts(o, c.given["n"]); err != nil {
		return err
	}
	q, err := openQueue("recv", name, chanmq.ReadOnly())
	if err != nil {
		return err
	}
	defer q.Close()

	out := bufio.NewWriter(c.stdout)
	got := 0
	for o.follow || got < o.n {
		msg, prio, err := recvOne(c.ctx, q, o)
		if err != nil {
			return recvErr(c.ctx, name, err, o, got)
		}
		// The message is out of the queue: print it whatever happens next.
		if err := writeMessage(out, msg, prio, o); err != nil {
			return fmt.Errorf("recv %s: writing a message taken from the queue to standard output: %v", name, err)
		}
		got++
	}
	return nil
}

func checkRecvOpts(o *recvOpts, givenN bool) error {
	n := 0
	for _, b := range []bool{o.nul, o.raw, o.json} {
		if b {
			n++
		}
	}
	switch {
	case n > 1:
		return usageErr("recv", "-json, -0 and -raw choose the output format; give at most one")
	case o.priority && o.raw:
		return usageErr("recv", "-raw prints the bytes alone, with no room for -priority; use -json")
	case o.follow && givenN:
		return usageErr("recv", "-follow and -n conflict; give one")
	case o.n < 1:
		return usageErr("recv", "-n must be at least 1 (use -follow for no limit)")
	case o.nonblock && o.timeout != 0:
		return usageErr("recv", "-nonblock and -timeout conflict; give one")
	case o.timeout < 0:
		return usageErr("recv", "-timeout must be positive, such as 5s")
	}
	return nil
}

func recvOne(ctx context.Context, q *chanmq.Queue, o *recvOpts) ([]byte, uint, error) {
	switch {
	case o.nonblock:
		return q.TryReceive()
	case o.timeout > 0:
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		return q.Receive(ctx)
	}
	return q.Receive(ctx)
}

// recvErr says why recv stopped after got messages: nil when -follow was
// stopped by a signal, -timeout or -nonblock (the ways a follow ends).
func recvErr(ctx context.Context, name string, err error, o *recvOpts, got int) error {
	progress := fmt.Sprintf("%d of %d message(s) received", got, o.n)
	switch {
	case ctx.Err() != nil:
		if o.follow {
			return nil
		}
		return interrupted("recv %s: stopped by %v; %s", name, context.Cause(ctx), progress)
	case errors.Is(err, chanmq.ErrEmpty):
		if o.follow {
			return nil
		}
		return unfinished("recv %s: queue empty, %s; drop -nonblock to wait for messages", name, progress)
	case errors.Is(err, context.DeadlineExceeded):
		if o.follow {
			return nil
		}
		return unfinished("recv %s: no message within %v, %s; raise -timeout to wait longer", name, o.timeout, progress)
	}
	return queueErr("recv", name, err)
}

func writeMessage(out *bufio.Writer, msg []byte, prio uint, o *recvOpts) error {
	if o.json {
		line, err := json.Marshal(jsonOut{Data: msg, Priority: prio})
		if err != nil {
			return err
		}
		out.Write(line)
		out.WriteByte('\n')
		return out.Flush()
	}
	if o.priority {
		out.WriteString(strconv.FormatUint(uint64(prio), 10))
		out.WriteByte('\t')
	}
	out.Write(msg)
	switch {
	case o.nul:
		out.WriteByte(0)
	case !o.raw:
		out.WriteByte('\n')
	}
	return out.Flush()
}
