package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/chanmq/chanmq"
)

// recvCmd takes messages and prints them.
var recvCmd = &command{
	name:    "recv",
	args:    "/name [-n COUNT | -follow] [-timeout D | -nonblock] [-priority] [-json | -0 | -raw]",
	summary: "take messages from a queue and print them",
	help: `Take messages from the queue, highest priority first, and print each on its
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

A message that cannot be written (the reader of a pipe has exited, the disk
is full) goes back into the queue with its priority, behind the messages of
that priority queued since, and recv exits 1. recv opens the queue
read-write for that; when this user may only read the queue, such a message
cannot go back, and recv prints its bytes in base64 on standard error.
Bytes already written into a pipe are its reader's: messages a reader such
as 'head -1' did not read are gone when it exits, so use -n COUNT rather
than '-follow | head'.
`,
	bind: withOptions(recvFlags, runRecv),
}

func recvFlags(fs *flag.FlagSet, o *recvOpts) {
	fs.IntVar(&o.n, "n", 1, "number of messages to print")
	fs.BoolVar(&o.follow, "follow", false, "print messages until interrupted (or until -timeout/-nonblock stop it)")
	o.wait.define(fs,
		"wait at most this long (such as 5s) for each message",
		"do not wait: stop when the queue is empty")
	fs.BoolVar(&o.priority, "priority", false, "print each message's priority and a tab before it")
	o.format.define(fs,
		"end each message with a NUL byte instead of a newline",
		"print the message bytes with nothing after them",
		`print {"data":"<base64>","priority":N} lines`)
}

type recvOpts struct {
	n        int
	follow   bool
	wait     waitFlags
	priority bool
	format   formatFlags
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
	// A write to a closed pipe must fail with EPIPE, so that the message
	// being written can be put back, instead of raising SIGPIPE, which
	// would kill the process with the message in hand. Go raises it for
	// writes to standard output unless the program handles the signal.
	signal.Ignore(syscall.SIGPIPE)
	// Read-write, so that a message recv took but could not print can be
	// put back; read-only when this user may not write to the queue.
	q, err := openAllowed(name, readWrite, chanmq.ReadOnly())
	if err != nil {
		return queueErr("recv", name, err)
	}
	defer q.Close()

	out := bufio.NewWriter(c.stdout)
	got := 0
	for o.follow || got < o.n {
		// A signal stops recv between messages: look before taking one,
		// since the message taken next would have to be printed.
		if err := c.ctx.Err(); err != nil {
			return recvErr(c.ctx, name, err, o, got)
		}
		msg, prio, err := recvOne(c.ctx, q, o.wait)
		if err != nil {
			return recvErr(c.ctx, name, err, o, got)
		}
		if err := writeMessage(out, msg, prio, o); err != nil {
			return unprinted(c.ctx, q, msg, prio, err, got)
		}
		got++
	}
	return nil
}

// putBackPatience bounds how long recv waits for room to put back a
// message it could not print (there is none only if a sender filled the
// queue since recv took it); a signal ends the wait too.
const putBackPatience = 10 * time.Second

// unprinted handles a message taken from q that could not be written to
// standard output (writeErr; the reader of a pipe may have exited). It
// puts the message back with its priority, behind the messages of that
// priority queued since, and returns an error that says so. As a last
// resort, when the message cannot be put back (q is read-only, or stays
// full), the error carries its bytes in base64.
func unprinted(ctx context.Context, q *chanmq.Queue, msg []byte, prio uint, writeErr error, printed int) error {
	why := fmt.Sprintf("writing to standard output: %v", writeErr)
	if errors.Is(writeErr, syscall.EPIPE) {
		why = "standard output is a pipe whose reader has gone (broken pipe)"
	}
	err := q.TrySend(msg, prio)
	if errors.Is(err, chanmq.ErrFull) && ctx.Err() == nil {
		wait, cancel := context.WithTimeout(ctx, putBackPatience)
		err = q.Send(wait, msg, prio)
		cancel()
	}
	if err == nil {
		return fmt.Errorf("recv %s: %s; the message it had taken was put back into the queue, with priority %d, behind any messages of that priority queued since (%d message(s) printed before it)",
			q.Name(), why, prio, printed)
	}
	reason := err.Error()
	switch {
	case errors.Is(err, chanmq.ErrReadOnly):
		reason = "this user may only read the queue"
	case errors.Is(err, chanmq.ErrFull), errors.Is(err, context.DeadlineExceeded):
		reason = "the queue stayed full"
	case ctx.Err() != nil:
		reason = fmt.Sprintf("stopped by %v while waiting for room", context.Cause(ctx))
	}
	return fmt.Errorf("recv %s: %s; the message it had taken cannot be put back (%s), so here are its %d bytes, priority %d, in base64: %s (%d message(s) printed before it)",
		q.Name(), why, reason, len(msg), prio, base64.StdEncoding.EncodeToString(msg), printed)
}

func checkRecvOpts(o *recvOpts, givenN bool) error {
	if err := o.format.check("recv", "the output format"); err != nil {
		return err
	}
	switch {
	case o.priority && o.format.raw:
		return usageErr("recv", "-raw prints the bytes alone, with no room for -priority; use -json")
	case o.follow && givenN:
		return usageErr("recv", "-follow and -n conflict; give one")
	case o.n < 1:
		return usageErr("recv", "-n must be at least 1 (use -follow for no limit)")
	}
	return o.wait.check("recv")
}

// recvOne takes one message, waiting as -timeout and -nonblock say.
func recvOne(ctx context.Context, q *chanmq.Queue, w waitFlags) (msg []byte, prio uint, err error) {
	err = w.do(ctx,
		func(ctx context.Context) (err error) { msg, prio, err = q.Receive(ctx); return err },
		func() (err error) { msg, prio, err = q.TryReceive(); return err })
	return msg, prio, err
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
		return unfinished("recv %s: no message within %v, %s; raise -timeout to wait longer", name, o.wait.timeout, progress)
	}
	return queueErr("recv", name, err)
}

func writeMessage(out *bufio.Writer, msg []byte, prio uint, o *recvOpts) error {
	if o.format.json {
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
	case o.format.nul:
		out.WriteByte(0)
	case !o.format.raw:
		out.WriteByte('\n')
	}
	return out.Flush()
}
