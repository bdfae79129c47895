package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/chanmq/chanmq"
	"github.com/chanmq/chanmq/internal/mqueuefs"
)

const statHelp = `Print the queue's capacity, message size and current count, and its mode,
owner and queued bytes when the mqueue filesystem can be read (/dev/mqueue or
another mqueue mount, or a temporary mount when running as root).
`

const lsHelp = `List the queues of this IPC namespace, as the mqueue filesystem shows them.
When none is mounted, ls mounts one on a temporary directory if it may (as
root) and says so; otherwise it prints the command that mounts it.
`

type lsOpts struct{ long bool }

func lsFlags(fs *flag.FlagSet, o *lsOpts) {
	fs.BoolVar(&o.long, "l", false, "long listing: count, capacity, message size, mode and owner")
}

const rmHelp = `Remove each queue. Processes that have it open keep using it until they
close it; the name is free at once.
`

type rmOpts struct{ force bool }

func rmFlags(fs *flag.FlagSet, o *rmOpts) {
	fs.BoolVar(&o.force, "f", false, "ignore queues that do not exist")
}

// fsInfo is what the mqueue filesystem says about a queue.
type fsInfo struct {
	mode     fs.FileMode
	owner    string // "root (uid 0), group root (gid 0)", or "" if unknown
	user     string // the owner's name, or uid
	queued   int64  // bytes queued (QSIZE), or -1 if unknown
	hasOwner bool
}

// statFS reads name's entry in the mqueue filesystem mounted on dir.
func statFS(dir, name string) (fsInfo, error) {
	path := filepath.Join(dir, strings.TrimPrefix(name, "/"))
	fi, err := os.Stat(path)
	if err != nil {
		return fsInfo{}, err
	}
	info := fsInfo{mode: fi.Mode().Perm(), queued: -1}
	if uid, gid, ok := ownerOf(fi); ok {
		info.hasOwner = true
		info.user = strconv.FormatUint(uint64(uid), 10)
		if u, err := user.LookupId(info.user); err == nil {
			info.user = u.Username
		}
		group := strconv.FormatUint(uint64(gid), 10)
		if g, err := user.LookupGroupId(group); err == nil {
			group = g.Name
		}
		info.owner = fmt.Sprintf("%s (uid %d), group %s (gid %d)", info.user, uid, group, gid)
	}
	// Reading the file gives "QSIZE:129 NOTIFY:0 SIGNO:0 NOTIFY_PID:0".
	if b, err := os.ReadFile(path); err == nil {
		for _, field := range strings.Fields(string(b)) {
			if v, ok := strings.CutPrefix(field, "QSIZE:"); ok {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					info.queued = n
				}
			}
		}
	}
	return info, nil
}

// attrOf opens name read-only (or write-only, if that is all this user
// may do) and reads its attributes.
func attrOf(name string) (chanmq.Attr, error) {
	q, err := chanmq.Open(name, chanmq.ReadOnly())
	if errors.Is(err, fs.ErrPermission) {
		q, err = chanmq.Open(name, chanmq.WriteOnly())
	}
	if err != nil {
		return chanmq.Attr{}, err
	}
	defer q.Close()
	return q.Attr()
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

func runLs(c *cli, o *lsOpts, args []string) error {
	if len(args) > 0 {
		return usageErr("ls", "ls takes no arguments, got %q", args)
	}
	dir, release, temporary, err := mqueuefs.Dir()
	if err != nil {
		return fmt.Errorf("ls: %v", err)
	}
	defer release()
	if temporary {
		fmt.Fprintf(c.stderr, "chanmq: note: no mqueue filesystem is mounted, so ls mounted one on a temporary directory; to mount it for good: %s\n", mqueuefs.Hint)
	}
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

func runRm(c *cli, o *rmOpts, args []string) error {
	if len(args) == 0 {
		return usageErr("rm", "missing queue name, such as /jobs")
	}
	failed := 0
	for _, name := range args {
		err := chanmq.Unlink(name)
		if err == nil || (o.force && errors.Is(err, fs.ErrNotExist)) {
			continue
		}
		failed++
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("rm %s: queue does not exist (see 'chanmq ls'; -f ignores missing queues)", name)
		} else {
			err = queueErr("rm", name, err)
		}
		report(c.stderr, err)
	}
	if failed > 0 {
		return &exitError{code: exitFailure} // already reported, one line each
	}
	return nil
}
