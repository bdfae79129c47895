// Package cli is the chanmq-bridge command, as a function that the
// command's main calls and that tests run in re-executed processes.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/chanmq/chanmq"
	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/nats-io/nats.go"
)

// reconnectWait is the pause between reconnection attempts (the env var
// is for tests that restart the server).
var reconnectWait = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("CHANMQ_BRIDGE_RECONNECT_WAIT")); err == nil {
		return d
	}
	return time.Second
}()

const usage = `chanmq-bridge carries a local POSIX message queue over NATS JetStream.

Usage:
  chanmq-bridge -out /jobs -subject jobs.work [-stream JOBS] -journal DIR     queue -> JetStream
  chanmq-bridge -in /jobs -stream JOBS -durable workers -journal DIR          JetStream -> queue
  (give both -out and -in to run the two directions in one process)

out journals each message right after it leaves the queue, publishes it with a
message ID (JetStream de-duplicates within the stream's duplicate window) and
republishes what was not acknowledged after a restart: no duplicates, at most
one message lost per crash. in acknowledges a message only after the queue took
it and remembers what it sent: no loss, at most one duplicate per crash.

The connection reconnects forever; if the first connection fails the command
exits with status 1 (let the pod restart it). Status 2 is a usage error.

Environment (as the nats CLI): NATS_URL, NATS_CREDS, NATS_NKEY, NATS_USER,
NATS_PASSWORD, NATS_CERT, NATS_KEY, NATS_CA. Flags override them.

Flags:
`

// Main runs the command with args (without the program name), logging to
// stderr, until SIGINT or SIGTERM, and returns the exit status.
func Main(args []string, stderr io.Writer) int {
	return run(args, stderr)
}

func env(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("chanmq-bridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	var (
		outQ     = fs.String("out", "", "`queue` to forward to JetStream (e.g. /jobs)")
		inQ      = fs.String("in", "", "`queue` to fill from JetStream (e.g. /results)")
		servers  = fs.String("server", env("NATS_URL", nats.DefaultURL), "NATS server `URLs`, comma-separated ($NATS_URL)")
		subject  = fs.String("subject", "", "out: `subject` to publish to")
		stream   = fs.String("stream", "", "`name` of the stream; in: the stream to consume (required); out: the stream that must capture -subject (optional, checked)")
		durable  = fs.String("durable", "", "in: durable pull consumer `name`")
		create   = fs.Bool("create-consumer", false, "in: create the durable consumer if it does not exist")
		ackWait  = fs.Duration("ack-wait", 30*time.Second, "in: AckWait of a consumer that -create-consumer creates")
		filter   = fs.String("filter", "", "in: filter `subject` of a consumer that -create-consumer creates")
		dead     = fs.String("dead-letter", "", "in: `subject` that gets a copy of each message the queue cannot take, before it is terminated")
		journal  = fs.String("journal", "", "`directory` for the journals (out.journal, in.journal); keep it on a volume that survives restarts")
		fsync    = fs.Bool("fsync", false, "fsync every journal write (survive a host crash, not only a process crash; slower)")
		window   = fs.Int("window", mqbridge.DefaultWindow, "out: most publishes awaiting acknowledgement")
		prefetch = fs.Int("prefetch", mqbridge.DefaultPrefetch, "in: most messages pulled ahead")
		mkQueue  = fs.Bool("create", false, "create the queues if missing (mode 0600; -max and -size apply)")
		maxMsgs  = fs.Int("max", 0, "with -create: MaxMessages of a new queue (0: system default)")
		msgSize  = fs.Int("size", 0, "with -create: MessageSize of a new queue (0: system default)")
		creds    = fs.String("creds", os.Getenv("NATS_CREDS"), "NATS credentials `file` ($NATS_CREDS)")
		nkey     = fs.String("nkey", os.Getenv("NATS_NKEY"), "NATS nkey seed `file` ($NATS_NKEY)")
		user     = fs.String("user", os.Getenv("NATS_USER"), "NATS user ($NATS_USER; password in $NATS_PASSWORD)")
		tlsCert  = fs.String("tlscert", os.Getenv("NATS_CERT"), "TLS client certificate `file` ($NATS_CERT)")
		tlsKey   = fs.String("tlskey", os.Getenv("NATS_KEY"), "TLS client key `file` ($NATS_KEY)")
		tlsCA    = fs.String("tlsca", os.Getenv("NATS_CA"), "TLS CA `file` to verify the server ($NATS_CA)")
		name     = fs.String("name", "chanmq-bridge", "connection name shown by the server")
		verbose  = fs.Bool("v", false, "log debug messages")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "chanmq-bridge: "+format+" (see -h)\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case *outQ == "" && *inQ == "":
		return usageErr("give -out QUEUE, -in QUEUE or both")
	case *outQ != "" && *subject == "":
		return usageErr("-out needs -subject")
	case *inQ != "" && (*stream == "" || *durable == ""):
		return usageErr("-in needs -stream and -durable")
	case *journal == "":
		return usageErr("-journal DIR is required: the bridge's guarantees rest on it")
	case *outQ != "" && *inQ == *outQ:
		return usageErr("-out and -in name the same queue: the bridge would loop")
	case (*maxMsgs != 0 || *msgSize != 0) && !*mkQueue:
		return usageErr("-max and -size apply with -create")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	fail := func(err error) int {
		log.Error(err.Error())
		return 1
	}
	if err := os.MkdirAll(*journal, 0o700); err != nil {
		return fail(fmt.Errorf("journal directory: %w", err))
	}

	opts := []nats.Option{
		nats.Name(*name),
		// Keep reconnecting for as long as the process lives: while the
		// server is away the out window fills and local senders block, and
		// the in direction waits; both resume on reconnect.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("disconnected; reconnecting", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("reconnected", "server", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn("nats", "err", err) }),
	}
	if *creds != "" {
		opts = append(opts, nats.UserCredentials(*creds))
	}
	if *nkey != "" {
		o, err := nats.NkeyOptionFromSeed(*nkey)
		if err != nil {
			return fail(fmt.Errorf("-nkey %s: %w", *nkey, err))
		}
		opts = append(opts, o)
	}
	if *user != "" {
		opts = append(opts, nats.UserInfo(*user, os.Getenv("NATS_PASSWORD")))
	}
	if *tlsCert != "" || *tlsKey != "" {
		opts = append(opts, nats.ClientCert(*tlsCert, *tlsKey))
	}
	if *tlsCA != "" {
		opts = append(opts, nats.RootCAs(*tlsCA))
	}
	nc, err := nats.Connect(*servers, opts...)
	if err != nil {
		return fail(explainConnect(*servers, err))
	}
	defer nc.Close()
	log.Info("connected", "server", nc.ConnectedUrlRedacted())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var out *mqbridge.Out
	var in *mqbridge.In
	if *outQ != "" {
		q, err := openQueue(*outQ, *mkQueue, *maxMsgs, *msgSize, true)
		if err != nil {
			return fail(err)
		}
		defer q.Close()
		out = &mqbridge.Out{Queue: q, Subject: *subject, Stream: *stream, Journal: filepath.Join(*journal, "out.journal"),
			Fsync: *fsync, Window: *window, Log: log}
	}
	if *inQ != "" {
		q, err := openQueue(*inQ, *mkQueue, *maxMsgs, *msgSize, false)
		if err != nil {
			return fail(err)
		}
		defer q.Close()
		in = &mqbridge.In{Queue: q, Stream: *stream, Durable: *durable, CreateConsumer: *create, AckWait: *ackWait,
			FilterSubject: *filter, DeadLetter: *dead, Journal: filepath.Join(*journal, "in.journal"),
			Fsync: *fsync, Prefetch: *prefetch, Log: log}
	}
	if err := mqbridge.Run(ctx, nc, out, in); err != nil {
		return fail(err)
	}
	log.Info("stopped")
	return 0
}

// openQueue opens name for receiving (out) or sending (in), creating it
// with mode 0600 when create is set.
func openQueue(name string, create bool, maxMsgs, msgSize int, receive bool) (*chanmq.Queue, error) {
	dir := chanmq.WriteOnly()
	if receive {
		dir = chanmq.ReadOnly()
	}
	switch {
	case !create:
		return chanmq.Open(name, dir)
	case maxMsgs > 0 && msgSize > 0:
		return chanmq.Open(name, dir, chanmq.Create(0o600), chanmq.MaxMessages(maxMsgs), chanmq.MessageSize(msgSize))
	case maxMsgs > 0:
		return chanmq.Open(name, dir, chanmq.Create(0o600), chanmq.MaxMessages(maxMsgs))
	case msgSize > 0:
		return chanmq.Open(name, dir, chanmq.Create(0o600), chanmq.MessageSize(msgSize))
	default:
		return chanmq.Open(name, dir, chanmq.Create(0o600))
	}
}

// explainConnect adds what to do to the usual first-connection failures.
func explainConnect(servers string, err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(msg), "authorization"):
		return fmt.Errorf("connect to %s: %w: the server refused the credentials; check -creds/-nkey/-user and $NATS_PASSWORD (or the token in the URL)", servers, err)
	case errors.Is(err, nats.ErrNoServers):
		return fmt.Errorf("connect to %s: %w: no server answered; check -server/$NATS_URL and that the server is up (the bridge exits so that the pod restarts it)", servers, err)
	case strings.Contains(msg, "tls") || strings.Contains(msg, "x509") || strings.Contains(msg, "certificate"):
		return fmt.Errorf("connect to %s: %w: check -tlscert, -tlskey and -tlsca", servers, err)
	}
	return fmt.Errorf("connect to %s: %w", servers, err)
}
