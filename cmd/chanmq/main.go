// Command chanmq creates, inspects, feeds and drains Linux POSIX message
// queues from the shell.
//
// Install it with
//
//	go install github.com/chanmq/chanmq/cmd/chanmq@latest
//
// Usage:
//
//	chanmq create /name [-max N] [-size N] [-mode 0600] [-excl]
//	chanmq send   /name [-priority P] [-timeout D | -nonblock] [-0 | -raw | -json] [msg ...]
//	chanmq recv   /name [-n COUNT | -follow] [-timeout D | -nonblock] [-priority] [-json | -0 | -raw]
//	chanmq stat   /name
//	chanmq ls     [-l]
//	chanmq rm     [-f] /name ...
//
// Every subcommand takes -h. Queue names are "/" followed by a name with no
// other slash, as in "/jobs". Flags may come before or after the name;
// "--" ends the flags (to send a message that starts with "-").
//
// create makes a queue, by default with mode 0600 (owner only) and the
// system's default capacity and message size (fs.mqueue.msg_default and
// fs.mqueue.msgsize_default, usually 10 messages of 8192 bytes). The mode is
// applied exactly: the umask does not apply. Creating a queue that exists
// succeeds unless -excl is given or -max/-size differ from the queue's.
//
// send queues each msg argument as one message. Without arguments it reads
// standard input: one message per line (the newline is not sent), with -0
// one per NUL-terminated record, with -raw all of standard input as one
// message, with -json one message per JSON object in recv -json's format
// (a missing "priority" means -priority). While the queue is full send
// waits, for ever, for at most -timeout D per message, or not at all with
// -nonblock.
//
// recv prints messages, by default one message per line. It waits for
// one message (-n COUNT: COUNT messages; -follow: until interrupted).
// -priority puts each message's priority and a tab before it. -0 ends each
// message with a NUL instead of a newline, -raw prints the bytes alone,
// and -json prints one JSON object per line,
//
//	{"data":"aGVsbG8=","priority":0}
//
// where "data" is the message in standard base64 (padded), so any bytes
// survive: decode it with `jq -r .data | base64 -d`, or feed the lines to
// `chanmq send -json`. -timeout D gives up when no message comes within D
// (of the start, or of the previous message); -nonblock gives up when the
// queue is empty. SIGINT and SIGTERM stop recv between messages: a message
// it took from the queue is always printed first. A message that cannot be
// written (a pipe whose reader exited, a full disk) is put back into the
// queue with its priority, behind the messages of that priority queued
// since, and recv exits 1; recv opens the queue read-write for that, and
// when this user may only read it, prints such a message in base64 on
// standard error. Bytes written into a pipe are its reader's: messages a
// reader such as head -1 did not read are gone when it exits, so prefer
// -n COUNT to -follow | head.
//
// stat prints a queue's capacity, message size and current count, and its
// mode, owner and queued bytes when the mqueue filesystem can be read
// (/dev/mqueue, or a temporary mount when running as root). ls lists the
// queues in the mqueue filesystem (-l: with their count, capacity, size,
// mode and owner). rm removes queues (-f: ignore missing ones); processes
// that have a queue open keep using it until they close it.
//
// Exit status: 0 success; 1 error; 2 usage error; 3 timeout, or queue empty
// (recv) or full (send) with -nonblock, before the requested work was done
// (recv -follow ends with 0 when -timeout or -nonblock stops it, as that is
// how one drains a queue); 130 when SIGINT or SIGTERM stopped the command
// before it was done (recv -follow: 0). Errors are one line on standard
// error, starting with "chanmq: ", that says what to do.
//
// POSIX message queues are a Linux feature: on other systems the command
// builds, and every subcommand fails saying so.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/chanmq/chanmq"
)

// Exit codes; see the package documentation.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitUnfinished  = 3 // timeout, or empty/full with -nonblock
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// A command is one subcommand.
type command struct {
	name    string
	args    string // synopsis after the name
	summary string // one line for the top-level usage
	help    string // what -h prints after the synopsis and before the flags
	// bind defines the command's flags on fs, bound to a fresh options
	// value of the command's own type, and returns the command's work:
	// run it, after fs has parsed the arguments, with the positional ones.
	bind func(fs *flag.FlagSet) (run func(c *cli, args []string) error)
}

// withOptions makes a command's bind from define, which defines flags
// bound to the fields of an options struct O, and run, which does the work
// with them: the compiler checks that both speak of the same O.
func withOptions[O any](define func(*flag.FlagSet, *O), run func(*cli, *O, []string) error) func(*flag.FlagSet) func(*cli, []string) error {
	return func(fs *flag.FlagSet) func(*cli, []string) error {
		o := new(O)
		define(fs, o)
		return func(c *cli, args []string) error { return run(c, o, args) }
	}
}

// commands are the subcommands, in the order the usage lists them.
var commands = []*command{
	{
		name:    "create",
		args:    "/name [-max N] [-size N] [-mode 0600] [-excl]",
		summary: "create a queue",
		help:    createHelp,
		bind:    withOptions(createFlags, runCreate),
	},
	{
		name:    "send",
		args:    "/name [-priority P] [-timeout D | -nonblock] [-0 | -raw | -json] [msg ...]",
		summary: "queue messages from the arguments or standard input",
		help:    sendHelp,
		bind:    withOptions(sendFlags, runSend),
	},
	{
		name:    "recv",
		args:    "/name [-n COUNT | -follow] [-timeout D | -nonblock] [-priority] [-json | -0 | -raw]",
		summary: "take messages from a queue and print them",
		help:    recvHelp,
		bind:    withOptions(recvFlags, runRecv),
	},
	{
		name:    "stat",
		args:    "/name",
		summary: "print a queue's capacity, message size, count, mode and owner",
		help:    statHelp,
		bind:    withOptions(noFlags, runStat),
	},
	{
		name:    "ls",
		args:    "[-l]",
		summary: "list the queues",
		help:    lsHelp,
		bind:    withOptions(lsFlags, runLs),
	},
	{
		name:    "rm",
		args:    "[-f] /name ...",
		summary: "remove queues",
		help:    rmHelp,
		bind:    withOptions(rmFlags, runRm),
	},
}

// noOpts are the options of a command that has no flags.
type noOpts struct{}

func noFlags(*flag.FlagSet, *noOpts) {}

// cli is one run of the command: its streams and context.
type cli struct {
	ctx    context.Context // done on SIGINT or SIGTERM
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	given  map[string]bool // the flags set on the command line, by name
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		topUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if cmd := lookup(args[1]); cmd != nil {
				cmdUsage(stdout, cmd, newFlagSet(cmd))
				return exitOK
			}
		}
		topUsage(stdout)
		return exitOK
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "chanmq: unknown command %q; run 'chanmq -h' for the list of commands\n", args[0])
		return exitUsage
	}
	err := c.runCommand(cmd, args[1:])
	return report(stderr, err)
}

func lookup(name string) *command {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd
		}
	}
	return nil
}

func newFlagSet(cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet("chanmq "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // we report errors ourselves, on one line
	return fs
}

func (c *cli) runCommand(cmd *command, args []string) error {
	fs := newFlagSet(cmd)
	runWith := cmd.bind(fs)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		cmdUsage(c.stdout, cmd, fs)
		return nil
	}
	if err != nil {
		return usageErr(cmd.name, "%v", err)
	}
	c.given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { c.given[f.Name] = true })
	return runWith(c, pos)
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments (the flag package stops at the first positional
// one), and returns the positional ones. After "--" everything is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func topUsage(w io.Writer) {
	fmt.Fprintf(w, "chanmq works with Linux POSIX message queues.\n\nUsage:\n\n")
	for _, cmd := range commands {
		fmt.Fprintf(w, "\tchanmq %-6s %s\n", cmd.name, cmd.args)
	}
	fmt.Fprintf(w, "\nCommands:\n\n")
	for _, cmd := range commands {
		fmt.Fprintf(w, "\t%-6s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "\nRun 'chanmq COMMAND -h' for a command's flags.\n\n%s", exitHelp)
}

const exitHelp = `Exit status: 0 ok; 1 error; 2 usage error; 3 timeout, or queue empty (recv)
or full (send) with -nonblock; 130 stopped by SIGINT/SIGTERM before done.
`

func cmdUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: chanmq %s %s\n\n%s", cmd.name, cmd.args, cmd.help)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	fmt.Fprintf(w, "\n%s", exitHelp)
}

// exitError is an error that ends the command with a given exit code. Its
// message is one line, without the "chanmq: " prefix.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErr(cmd, format string, args ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf("%s: %s (run 'chanmq %s -h' for usage)", cmd, fmt.Sprintf(format, args...), cmd)}
}

func unfinished(format string, args ...any) error {
	return &exitError{code: exitUnfinished, msg: fmt.Sprintf(format, args...)}
}

func interrupted(format string, args ...any) error {
	return &exitError{code: exitInterrupted, msg: fmt.Sprintf(format, args...)}
}

// report prints err as one line on stderr and returns the exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := strings.ReplaceAll(err.Error(), "\n", " "); msg != "" {
		fmt.Fprintf(stderr, "chanmq: %s\n", msg)
	}
	return code
}

// queueErr turns an error from the chanmq package into a one-line message
// for the subcommand cmd on queue name, with a hint that speaks of this
// command's flags and subcommands rather than of the Go API.
func queueErr(cmd, name string, err error) error {
	cause := err
	var qe *chanmq.Error
	if errors.As(err, &qe) {
		cause = qe.Err
	}
	text := cause.Error()
	switch {
	case errors.Is(err, chanmq.ErrInvalidName):
		// The package's text already says what a name looks like.
	case errors.Is(err, fs.ErrNotExist):
		text = fmt.Sprintf("queue does not exist; create it with 'chanmq create %s' (or see 'chanmq ls')", name)
	case errors.Is(err, fs.ErrExist):
		text = fmt.Sprintf("queue already exists; drop -excl to use it, or remove it first with 'chanmq rm %s'", name)
	case errors.Is(err, fs.ErrPermission):
		text = fmt.Sprintf("permission denied: this user may not open the queue this way; see its mode and owner with 'chanmq stat %s'", name)
	case errors.Is(err, chanmq.ErrMessageTooLarge):
		text += fmt.Sprintf("; a queue's message size is fixed when it is created: recreate it with 'chanmq create %s -size N'", name)
	case errors.Is(err, errors.ErrUnsupported):
		text = "POSIX message queues need Linux: " + text
	}
	return fmt.Errorf("%s %s: %s", cmd, name, text)
}

// openQueue opens name for cmd, turning errors into queueErr's messages.
func openQueue(cmd, name string, opts ...chanmq.OpenOption) (*chanmq.Queue, error) {
	q, err := chanmq.Open(name, opts...)
	if err != nil {
		return nil, queueErr(cmd, name, err)
	}
	return q, nil
}

// oneName checks that args is exactly one queue name.
func oneName(cmd string, args []string) (string, error) {
	switch len(args) {
	case 0:
		return "", usageErr(cmd, "missing queue name, such as /jobs")
	case 1:
		return args[0], nil
	}
	return "", usageErr(cmd, "too many arguments after the queue name %s: %q", args[0], args[1:])
}
