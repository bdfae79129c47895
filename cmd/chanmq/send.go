package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/chanmq/chanmq"
)

// sendCmd queues messages.
var sendCmd = &command{
	name:    "send",
	args:    "/name [-priority P] [-timeout D | -nonblock] [-0 | -raw | -json] [msg ...]",
	summary: "queue messages from the arguments or standard input",
	help: `Queue each msg argument as one message. Without arguments, read standard
input: one message per line (the newline is not sent; an empty line is an
empty message), or as -0, -raw or -json say. "--" ends the flags, to send a
message that starts with "-".

While the queue is full, send waits until there is room; -timeout D waits at
most D for each message and -nonblock not at all (both exit 3, after saying
how many messages were sent).
`,
	bind: withOptions(sendFlags, runSend),
}

func sendFlags(fs *flag.FlagSet, o *sendOpts) {
	fs.UintVar(&o.priority, "priority", 0, fmt.Sprintf("message priority, 0 to %d (higher is received first)", chanmq.MaxPriority))
	o.wait.define(fs,
		"wait at most this long (such as 5s) for room for each message, then exit 3",
		"do not wait for room: exit 3 if the queue is full")
	o.format.define(fs,
		"read NUL-terminated messages from standard input",
		"send all of standard input as one message",
		`read JSON objects {"data":"<base64>","priority":N} (recv -json's output; without "priority", -priority applies)`)
}

type sendOpts struct {
	priority uint
	wait     waitFlags
	format   formatFlags
}

// outgoing is one message to send, or why the input could not be read.
type outgoing struct {
	data     []byte
	priority uint
	where    string // "argument 2", "line 3", ...: for error messages
	err      error
}

func runSend(c *cli, o *sendOpts, args []string) error {
	if len(args) == 0 {
		return usageErr("send", "missing queue name, such as /jobs")
	}
	name, msgs := args[0], args[1:]
	if err := checkSendOpts(o, msgs); err != nil {
		return err
	}

	q, err := chanmq.Open(name, chanmq.WriteOnly())
	if err != nil {
		return queueErr("send", name, err)
	}
	defer q.Close()

	var in <-chan outgoing
	if len(msgs) > 0 {
		in = fromArgs(msgs, o.priority)
	} else {
		// Reading stdin cannot be interrupted, so it runs in its own
		// goroutine: a signal then ends the command even while it waits
		// for input. The process exits right after, ending the goroutine.
		in = fromReader(c.stdin, o)
	}

	sent := 0
	for {
		var m outgoing
		var ok bool
		select {
		case m, ok = <-in:
		case <-c.ctx.Done():
			return interrupted("send %s: stopped by %v after sending %d message(s)", name, context.Cause(c.ctx), sent)
		}
		if !ok {
			return nil
		}
		if m.err != nil {
			return fmt.Errorf("send %s: %s: %v (%d message(s) sent before it)", name, m.where, m.err, sent)
		}
		err := o.wait.do(c.ctx,
			func(ctx context.Context) error { return q.Send(ctx, m.data, m.priority) },
			func() error { return q.TrySend(m.data, m.priority) })
		if err != nil {
			switch {
			case errors.Is(err, chanmq.ErrFull):
				return unfinished("send %s: queue full (capacity %d) at %s, after sending %d; drop -nonblock to wait for room, or receive some messages", name, q.Cap(), m.where, sent)
			case errors.Is(err, context.DeadlineExceeded) && c.ctx.Err() == nil:
				return unfinished("send %s: queue still full (capacity %d) after %v at %s, after sending %d; raise -timeout, or receive some messages", name, q.Cap(), o.wait.timeout, m.where, sent)
			case c.ctx.Err() != nil:
				return interrupted("send %s: stopped by %v after sending %d message(s); %s was not sent", name, context.Cause(c.ctx), sent, m.where)
			}
			return fmt.Errorf("%w (at %s, after sending %d)", queueErr("send", name, err), m.where, sent)
		}
		sent++
	}
}

func checkSendOpts(o *sendOpts, msgs []string) error {
	if err := o.format.check("send", "how to read standard input"); err != nil {
		return err
	}
	if o.format.given() && len(msgs) > 0 {
		return usageErr("send", "-0, -raw and -json read standard input; drop them or the message arguments")
	}
	if err := o.wait.check("send"); err != nil {
		return err
	}
	if o.priority > chanmq.MaxPriority {
		return usageErr("send", "-priority %d is out of range: 0 to %d", o.priority, chanmq.MaxPriority)
	}
	return nil
}

func fromArgs(msgs []string, priority uint) <-chan outgoing {
	ch := make(chan outgoing, len(msgs))
	for i, s := range msgs {
		ch <- outgoing{data: []byte(s), priority: priority, where: fmt.Sprintf("argument %d", i+1)}
	}
	close(ch)
	return ch
}

// fromReader reads messages from r in a goroutine, in the format o says,
// and closes the channel at the end of r or after an error.
func fromReader(r io.Reader, o *sendOpts) <-chan outgoing {
	ch := make(chan outgoing)
	go func() {
		defer close(ch)
		switch {
		case o.format.raw:
			data, err := io.ReadAll(r)
			ch <- outgoing{data: data, priority: o.priority, where: "standard input", err: err}
		case o.format.json:
			readJSON(r, o.priority, ch)
		default:
			sep, unit := byte('\n'), "line"
			if o.format.nul {
				sep, unit = 0, "record"
			}
			readRecords(r, sep, unit, o.priority, ch)
		}
	}()
	return ch
}

// readRecords sends each sep-terminated record of r (the last one may lack
// its terminator) without the terminator.
func readRecords(r io.Reader, sep byte, unit string, priority uint, ch chan<- outgoing) {
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		rec, err := br.ReadBytes(sep)
		if len(rec) > 0 {
			ch <- outgoing{data: bytes.TrimSuffix(rec, []byte{sep}), priority: priority, where: fmt.Sprintf("%s %d", unit, n)}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			ch <- outgoing{where: fmt.Sprintf("%s %d", unit, n), err: fmt.Errorf("reading standard input: %w", err)}
			return
		}
	}
}

// jsonMessage is what send -json reads: recv -json's output, with
// "priority" optional. encoding/json reads a []byte from standard base64.
type jsonMessage struct {
	Data     *[]byte `json:"data"`
	Priority *uint   `json:"priority"`
}

func readJSON(r io.Reader, priority uint, ch chan<- outgoing) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	for n := 1; ; n++ {
		var jm jsonMessage
		err := dec.Decode(&jm)
		if err == io.EOF {
			return
		}
		where := fmt.Sprintf("JSON object %d", n)
		if err != nil {
			ch <- outgoing{where: where, err: fmt.Errorf(`%v; each message must be an object such as {"data":"aGVsbG8=","priority":0}, with "data" in base64`, err)}
			return
		}
		if jm.Data == nil {
			ch <- outgoing{where: where, err: errors.New(`no "data" field; each message must be an object such as {"data":"aGVsbG8=","priority":0}`)}
			return
		}
		p := priority
		if jm.Priority != nil {
			p = *jm.Priority
		}
		if p > chanmq.MaxPriority {
			ch <- outgoing{where: where, err: fmt.Errorf("priority %d is out of range: 0 to %d", p, chanmq.MaxPriority)}
			return
		}
		ch <- outgoing{data: *jm.Data, priority: p, where: where}
	}
}
