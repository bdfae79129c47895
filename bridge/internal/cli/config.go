package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/nats-io/nats.go"
)

// config is the command line, parsed.
type config struct {
	out, in string // the queues, by direction

	// NATS
	servers, name                             string
	creds, nkey, user, tlsCert, tlsKey, tlsCA string

	// JetStream
	subject, stream, durable string
	createConsumer           bool
	ackWait                  time.Duration
	filter, deadLetter       string

	// the bridges
	journal          string
	fsync            bool
	window, prefetch int

	// the queues
	createQueue      bool
	maxMsgs, msgSize int

	verbose bool
}

// usageError is a command line that cannot work: the command says so and
// exits 2.
type usageError string

func (e usageError) Error() string { return string(e) }

func usagef(format string, a ...any) error { return usageError(fmt.Sprintf(format, a...)) }

// parse reads the flags (and the environment variables that give their
// defaults) into a config and validates it. Its error is flag.ErrHelp for
// -h, a usageError, or the flag package's error, which the flag package
// has already printed to stderr.
func parse(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("chanmq-bridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&c.out, "out", "", "`queue` to forward to JetStream (e.g. /jobs)")
	fs.StringVar(&c.in, "in", "", "`queue` to fill from JetStream (e.g. /results)")
	fs.StringVar(&c.servers, "server", env("NATS_URL", nats.DefaultURL), "NATS server `URLs`, comma-separated ($NATS_URL)")
	fs.StringVar(&c.subject, "subject", "", "out: `subject` to publish to")
	fs.StringVar(&c.stream, "stream", "", "`name` of the stream; in: the stream to consume (required); out: the stream that must capture -subject (optional, checked)")
	fs.StringVar(&c.durable, "durable", "", "in: durable pull consumer `name`")
	fs.BoolVar(&c.createConsumer, "create-consumer", false, "in: create the durable consumer if it does not exist")
	fs.DurationVar(&c.ackWait, "ack-wait", mqbridge.DefaultAckWait, "in: AckWait of a consumer that -create-consumer creates; given, it is compared with an existing consumer's (a warning if they differ)")
	fs.StringVar(&c.filter, "filter", "", "in: filter `subject` of a consumer that -create-consumer creates")
	fs.StringVar(&c.deadLetter, "dead-letter", "", "in: `subject` that gets a copy of each message the queue cannot take, before it is terminated")
	fs.StringVar(&c.journal, "journal", "", "`directory` for the journals (out.journal, in.journal); keep it on a volume that survives restarts")
	fs.BoolVar(&c.fsync, "fsync", false, "fsync every journal write (survive a host crash, not only a process crash; slower)")
	fs.IntVar(&c.window, "window", mqbridge.DefaultWindow, "out: most publishes awaiting acknowledgement")
	fs.IntVar(&c.prefetch, "prefetch", mqbridge.DefaultPrefetch, "in: most messages pulled ahead")
	fs.BoolVar(&c.createQueue, "create", false, "create the queues if missing (mode 0600; -max and -size apply)")
	fs.IntVar(&c.maxMsgs, "max", 0, "with -create: MaxMessages of a new queue (0: system default)")
	fs.IntVar(&c.msgSize, "size", 0, "with -create: MessageSize of a new queue (0: system default)")
	fs.StringVar(&c.creds, "creds", os.Getenv("NATS_CREDS"), "NATS credentials `file` ($NATS_CREDS)")
	fs.StringVar(&c.nkey, "nkey", os.Getenv("NATS_NKEY"), "NATS nkey seed `file` ($NATS_NKEY)")
	fs.StringVar(&c.user, "user", os.Getenv("NATS_USER"), "NATS user ($NATS_USER; password in $NATS_PASSWORD)")
	fs.StringVar(&c.tlsCert, "tlscert", os.Getenv("NATS_CERT"), "TLS client certificate `file` ($NATS_CERT)")
	fs.StringVar(&c.tlsKey, "tlskey", os.Getenv("NATS_KEY"), "TLS client key `file` ($NATS_KEY)")
	fs.StringVar(&c.tlsCA, "tlsca", os.Getenv("NATS_CA"), "TLS CA `file` to verify the server ($NATS_CA)")
	fs.StringVar(&c.name, "name", "chanmq-bridge", "connection name shown by the server")
	fs.BoolVar(&c.verbose, "v", false, "log debug messages")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := tookAFlag(fs); err != nil {
		return nil, err
	}
	if !given(fs, "ack-wait") {
		// Not asked for: the bridge creates a consumer with its default
		// and has nothing to compare an existing consumer's with.
		c.ackWait = 0
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q", fs.Arg(0))
	}
	return c, c.validate()
}

// tookAFlag refuses a flag that took the next flag as its value, as
// `-out -subject jobs.work` gives -out the value "-subject": the flag
// package would only complain later, of an unexpected "jobs.work".
func tookAFlag(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		name, _, _ := strings.Cut(strings.TrimLeft(v, "-"), "=")
		if err != nil || !strings.HasPrefix(v, "-") || fs.Lookup(name) == nil {
			return
		}
		what := "a value"
		if f.Name == "out" || f.Name == "in" {
			what = "a queue name, such as /jobs"
		}
		err = usagef("-%s needs %s; it took the next flag, %s, as its value", f.Name, what, v)
	})
	return err
}

// given reports whether the command line set the flag name.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// validate refuses, before anything connects, a command line that cannot
// work. Every check of the flags alone belongs here.
func (c *config) validate() error {
	switch {
	case c.out == "" && c.in == "":
		return usagef("give -out QUEUE, -in QUEUE or both")
	case c.out != "" && c.subject == "":
		return usagef("-out needs -subject")
	case c.in != "" && (c.stream == "" || c.durable == ""):
		return usagef("-in needs -stream and -durable")
	case c.journal == "":
		return usagef("-journal DIR is required: the bridge's guarantees rest on it; " +
			"give a directory this user can write that survives restarts, such as ~/.local/state/chanmq-bridge (in a pod, a volume)")
	case c.out != "" && c.in == c.out:
		return usagef("-out and -in name the same queue: the bridge would loop")
	case (c.maxMsgs != 0 || c.msgSize != 0) && !c.createQueue:
		return usagef("-max and -size apply with -create")
	}
	if c.out != "" {
		if err := publishSubject("-subject", c.subject); err != nil {
			return err
		}
	}
	if c.deadLetter != "" {
		return publishSubject("-dead-letter", c.deadLetter)
	}
	return nil
}

// publishSubject refuses a subject the bridge cannot publish to: NATS
// takes "*" and ">" tokens as wildcards in a subscription and as plain
// text in a publish, so `-subject 'jobs.*'` would publish every message
// to the literal subject "jobs.*".
func publishSubject(flagName, s string) error {
	if strings.ContainsAny(s, " \t\r\n") {
		return usagef("%s %q contains white space, which NATS subjects cannot", flagName, s)
	}
	for tok := range strings.SplitSeq(s, ".") {
		switch tok {
		case "":
			return usagef("%s %q has an empty token (a leading, trailing or double dot)", flagName, s)
		case "*", ">":
			return usagef("%s %q has the wildcard %q: the bridge publishes to one subject, so give a literal one, such as jobs.work "+
				"(wildcards belong in the stream's subjects, such as jobs.>)", flagName, s, tok)
		}
	}
	return nil
}

// env returns the environment variable k, or d if it is empty.
func env(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}
