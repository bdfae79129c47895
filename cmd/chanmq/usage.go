package main

import (
	"fmt"
	"io"
	"strings"
)

// generalHelp is what 'chanmq -h' says about every command.
const generalHelp = `Queue names are "/" followed by a name with no other slash, as in "/jobs".
Flags may come before or after the name; "--" ends the flags (to send a
message that starts with "-"). POSIX message queues are a Linux feature: on
other systems every command fails saying so.
`

// exitHelp is the exit status of every command: -h prints it, and the
// exit* constants are its codes.
const exitHelp = `Exit status: 0 done; 1 error; 2 usage error; 3 timeout, or queue empty (recv)
or full (send) with -nonblock, before the work was done; 130 stopped by SIGINT
or SIGTERM before the work was done (recv -follow ends with 0 in both cases).
Errors are one line on standard error, starting with "chanmq: ", that says
what to do.
`

func topUsage(w io.Writer) {
	fmt.Fprintf(w, "chanmq %s\n\nUsage:\n\n", synopsis)
	for _, cmd := range commands {
		fmt.Fprintf(w, "\tchanmq %-6s %s\n", cmd.name, cmd.args)
	}
	fmt.Fprintf(w, "\nCommands:\n\n")
	for _, cmd := range commands {
		fmt.Fprintf(w, "\t%-6s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "\n%s\nRun 'chanmq COMMAND -h' for a command's flags.\n\n%s", generalHelp, exitHelp)
}

func cmdUsage(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "Usage: %s\n\n%s", usageLine(cmd), cmd.help)
	if flags := flagHelp(cmd); flags != "" {
		fmt.Fprintf(w, "\nFlags:\n%s", flags)
	}
	fmt.Fprintf(w, "\n%s", exitHelp)
}

// usageLine is cmd's synopsis, "chanmq NAME ARGS".
func usageLine(cmd *command) string {
	return "chanmq " + cmd.name + " " + cmd.args
}

// flagHelp returns what the flag package says about cmd's flags, or ""
// when it has none.
func flagHelp(cmd *command) string {
	fs := newFlagSet(cmd)
	cmd.bind(fs)
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}
