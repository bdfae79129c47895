package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/chanmq/chanmq/internal/mqueuefs"
)

// lsCmd lists the queues of this IPC namespace.
var lsCmd = &command{
	name:    "ls",
	args:    "[-l]",
	summary: "list the queues",
	help: `List the queues of this IPC namespace, as its mqueue filesystem shows them.
When none of this namespace's is mounted (none at all, or only another
namespace's, as for a process started by 'unshare --ipc'), ls mounts one on
a temporary directory if it may (as root) and says so; otherwise it says why
it cannot list them and what to do.
`,
	bind: withOptions(lsFlags, runLs),
}

type lsOpts struct{ long bool }

func lsFlags(fs *flag.FlagSet, o *lsOpts) {
	fs.BoolVar(&o.long, "l", false, "long listing: count, capacity, message size, mode and owner")
}

func runLs(c *cli, o *lsOpts, args []string) error {
	if len(args) > 0 {
		return usageErr("ls", "ls takes no arguments, got %q", args)
	}
	m, err := mqueuefs.Find()
	if err != nil {
		return fmt.Errorf("ls: %v", err)
	}
	defer m.Release()
	switch {
	case m.Foreign != "":
		fmt.Fprintf(c.stderr, "chanmq: note: the mqueue filesystem mounted at %s is another IPC namespace's (this process has one of its own, as 'unshare --ipc' makes), so ls mounted this namespace's on a temporary directory\n", m.Foreign)
	case m.Temporary:
		fmt.Fprintf(c.stderr, "chanmq: note: no mqueue filesystem is mounted, so ls mounted one on a temporary directory; to mount it for good: %s\n", mqueuefs.Hint)
	}
	dir := m.Dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("ls: reading the mqueue filesystem %s: %v", dir, err)
	}
	if !o.long {
		for _, e := range entries {
			fmt.Fprintf(c.stdout, "/%s\n", e.Name())
		}
		return nil
	}
	w := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "MESSAGES\tMAX\tSIZE\tMODE\tOWNER\tNAME\n")
	for _, e := range entries {
		name := "/" + e.Name()
		msgs, max, size := "-", "-", "-"
		if a, err := attrOf(name); err == nil {
			msgs, max, size = strconv.Itoa(a.Messages), strconv.Itoa(a.MaxMessages), strconv.Itoa(a.MessageSize)
		}
		mode, owner := "-", "-"
		if info, err := statFS(dir, name); err == nil {
			mode = info.mode.String()
			if info.hasOwner {
				owner = info.user
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", msgs, max, size, mode, owner, name)
	}
	return w.Flush()
}
