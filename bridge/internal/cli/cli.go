// Package cli is the chanmq-bridge command, as a function that the
// command's main calls and that tests run in re-executed processes.
//
// A run has three steps: config.go parses the flags into a config and
// refuses what cannot work (a usage error, exit 2); nats.go builds the
// connection's options; serve.go connects and starts the bridges that
// bridges.go builds, with their queues.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

const usage = `chanmq-bridge carries a local POSIX message queue over NATS JetStream.

Usage:
  chanmq-bridge -out /jobs -subject jobs.work [-stream JOBS] -journal DIR     queue -> JetStream
  chanmq-bridge -in /jobs -stream JOBS -durable workers -journal DIR          JetStream -> queue
  (give both -out and -in to run the two directions in one process, on two
  queues; -create makes a missing queue)

out journals each message right after it leaves the queue, publishes it with a
message ID (JetStream de-duplicates within the stream's duplicate window) and
republishes what was not acknowledged after a restart: no duplicates, at most
one message lost per crash. in acknowledges a message only after the queue took
it and remembers what it sent: no loss, at most one duplicate per crash.

The connection reconnects forever; if the first connection fails the command
exits with status 1 (let the pod restart it), as for any fault a restart may
outlive (a missing queue or stream, the queue removed under the bridge). Status
2 is a command line no restart fixes (a flag, a queue name or subject, -create
-max/-size that an existing queue has not), found before connecting.

Environment (as the nats CLI): NATS_URL, NATS_CREDS, NATS_NKEY, NATS_USER,
NATS_PASSWORD, NATS_CERT, NATS_KEY, NATS_CA. Flags override them.

Flags:
`

// Main runs the command with args (without the program name), logging to
// stderr, until SIGINT or SIGTERM, and returns the exit status.
func Main(args []string, stderr io.Writer) int {
	return run(args, stderr)
}

// run parses args, then runs the bridges until a signal or a fault, and
// returns the exit status: 0 after a signal (or -h), 1 for a fault (logged
// with what to do), 2 for a usage error: flags that cannot work, or that a
// queue cannot meet (a bad name, other sizes), which no restart fixes.
func run(args []string, stderr io.Writer) int {
	c, err := parse(args, stderr)
	var usageErr usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "chanmq-bridge: %v (see -h)\n", usageErr)
		return 2
	case err != nil:
		return 2 // the flag package said why
	}
	log := c.logger(stderr)
	if err := serve(c, log); err != nil {
		if errors.As(err, &usageErr) {
			fmt.Fprintf(stderr, "chanmq-bridge: %v\n", usageErr)
			return 2
		}
		log.Error(err.Error())
		return 1
	}
	log.Info("stopped")
	return 0
}

// logger logs to w, with debug messages if -v is set.
func (c *config) logger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
