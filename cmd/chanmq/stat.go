package main

import (
	"errors"
	"fmt"
	"io/fs"
	"text/tabwriter"

	"github.com/chanmq/chanmq/internal/mqueuefs"
)

// statCmd prints what the kernel and the mqueue filesystem say about a queue.
var statCmd = &command{
	name:    "stat",
	args:    "/name",
	summary: "print a queue's capacity, message size, count, mode and owner",
	help: `Print the queue's capacity, message size and current count, and its mode,
owner and queued bytes when this IPC namespace's mqueue filesystem can be read
(/dev/mqueue or another mount of it, or a temporary mount when running as
root).
`,
	bind: withOptions(noFlags, runStat),
}

func runStat(c *cli, _ *noOpts, args []string) error {
	name, err := oneName("stat", args)
	if err != nil {
		return err
	}
	attr, err := attrOf(name)
	denied := errors.Is(err, fs.ErrPermission)
	if err != nil && !denied {
		return queueErr("stat", name, err)
	}

	var info fsInfo
	var fsErr error
	dir, release, _, err := mqueuefs.Dir()
	if err == nil {
		info, fsErr = statFS(dir, name)
		release()
	} else {
		fsErr = err
	}

	w := tabwriter.NewWriter(c.stdout, 0, 8, 1, ' ', 0)
	fmt.Fprintf(w, "name:\t%s\n", name)
	if denied {
		fmt.Fprintf(w, "messages:\tunknown: this user may not open the queue\n")
	} else {
		fmt.Fprintf(w, "messages:\t%d of %d\n", attr.Messages, attr.MaxMessages)
		fmt.Fprintf(w, "message size:\t%d bytes\n", attr.MessageSize)
	}
	if fsErr != nil {
		fmt.Fprintf(w, "mode, owner:\tunknown: %v\n", fsErr)
	} else {
		if info.queued >= 0 {
			fmt.Fprintf(w, "queued bytes:\t%d\n", info.queued)
		}
		fmt.Fprintf(w, "mode:\t%v (%#o)\n", info.mode, uint32(info.mode))
		if info.hasOwner {
			fmt.Fprintf(w, "owner:\t%s\n", info.owner)
		}
	}
	return w.Flush()
}
