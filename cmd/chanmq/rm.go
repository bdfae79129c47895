package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"

	"github.com/chanmq/chanmq"
)

// rmCmd removes queues.
var rmCmd = &command{
	name:    "rm",
	args:    "[-f] /name ...",
	summary: "remove queues",
	help: `Remove each queue. Processes that have it open keep using it until they
close it; the name is free at once.
`,
	bind: withOptions(rmFlags, runRm),
}

type rmOpts struct{ force bool }

func rmFlags(fs *flag.FlagSet, o *rmOpts) {
	fs.BoolVar(&o.force, "f", false, "ignore queues that do not exist")
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
		switch {
		case errors.Is(err, fs.ErrNotExist):
			err = fmt.Errorf("rm %s: queue does not exist (see 'chanmq ls'; -f ignores missing queues)", name)
		case dirDenied(err):
			// EACCES: the mqueue directory itself denies this user write
			// access; no one but root may then remove queues.
			err = fmt.Errorf("rm %s: permission denied: the mqueue directory does not let this user remove queues (its mode is 1777 unless someone changed it; see 'ls -ld' on the mqueue mount); ask root", name)
		case errors.Is(err, fs.ErrPermission):
			// EPERM: the mqueue directory is sticky, like /tmp.
			err = fmt.Errorf("rm %s: permission denied: only the queue's owner may remove it, or root (the owner of the mqueue directory, or a process with CAP_FOWNER); the directory is sticky, like /tmp, so the queue's own mode does not matter; see its owner with 'chanmq stat %s'", name, name)
		default:
			err = queueErr("rm", name, err)
		}
		report(c.stderr, err)
	}
	if failed > 0 {
		return &exitError{code: exitFailure} // already reported, one line each
	}
	return nil
}
