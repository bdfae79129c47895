package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// synopsis says what the command does: the package documentation and
// 'chanmq -h' begin with it.
const synopsis = "creates, inspects, feeds and drains Linux POSIX message queues."

// commands are the subcommands, in the order the usage lists them. Each
// is defined, with its help text, in its own file.
var commands = []*command{createCmd, sendCmd, recvCmd, statCmd, lsCmd, rmCmd}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

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
				cmdUsage(stdout, cmd)
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
