package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/chanmq/chanmq"
)

// createCmd makes a queue, or checks that an existing one is as asked.
var createCmd = &command{
	name:    "create",
	args:    "/name [-max N] [-size N] [-mode 0600] [-excl]",
	summary: "create a queue",
	help: `Create the queue /name. Without -max and -size it gets the system's defaults
(/proc/sys/fs/mqueue/msg_default and msgsize_default: usually 10 messages of
8192 bytes); without CAP_SYS_RESOURCE they may be at most msg_max and
msgsize_max. -mode is applied exactly (the umask does not apply).

If the queue exists, create succeeds and leaves it as it is, unless -excl is
given or -max/-size differ from the existing queue's (exit 1).
`,
	bind: withOptions(createFlags, runCreate),
}

func createFlags(fs *flag.FlagSet, o *createOpts) {
	o.mode = 0o600
	fs.IntVar(&o.max, "max", 0, "capacity in messages (default: the system's msg_default)")
	fs.IntVar(&o.size, "size", 0, "largest message in bytes (default: the system's msgsize_default)")
	fs.Var(&o.mode, "mode", "permission bits, in octal")
	fs.BoolVar(&o.excl, "excl", false, "fail if the queue already exists")
}

type createOpts struct {
	max, size int
	mode      modeFlag
	excl      bool
}

// modeFlag is an octal permission such as 0600, 600 or 0o600.
type modeFlag fs.FileMode

func (m *modeFlag) String() string { return fmt.Sprintf("%#o", uint32(*m)) }

func (m *modeFlag) Set(s string) error {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O"), 8, 32)
	if err != nil || v > 0o777 {
		return fmt.Errorf("%q is not an octal permission between 0 and 0777, such as 0600", s)
	}
	*m = modeFlag(v)
	return nil
}

func runCreate(c *cli, o *createOpts, args []string) error {
	name, err := oneName("create", args)
	if err != nil {
		return err
	}
	if o.max < 0 || (o.max == 0 && c.given["max"]) {
		return usageErr("create", "-max must be at least 1")
	}
	if o.size < 0 || (o.size == 0 && c.given["size"]) {
		return usageErr("create", "-size must be at least 1")
	}
	perm := fs.FileMode(o.mode)
	qopts := []chanmq.OpenOption{chanmq.Create(perm), chanmq.Exclusive()}
	if o.max > 0 {
		qopts = append(qopts, chanmq.MaxMessages(o.max))
	}
	if o.size > 0 {
		qopts = append(qopts, chanmq.MessageSize(o.size))
	}
	restore := clearUmask()
	q, err := chanmq.Open(name, qopts...)
	restore()
	if errors.Is(err, fs.ErrExist) && !o.excl {
		// It exists: fine, if it is what was asked for.
		return checkExisting(name, o)
	}
	if err != nil {
		return queueErr("create", name, err)
	}
	return q.Close()
}

func checkExisting(name string, o *createOpts) error {
	q, err := openAllowed(name, chanmq.ReadOnly(), chanmq.WriteOnly())
	if err != nil {
		return queueErr("create", name, err)
	}
	defer q.Close()
	if (o.max > 0 && o.max != q.Cap()) || (o.size > 0 && o.size != q.MessageSize()) {
		return fmt.Errorf("create %s: queue already exists with %d messages of %d bytes, not %s; use it as it is, or remove it with 'chanmq rm %s' and create it again",
			name, q.Cap(), q.MessageSize(), wanted(o), name)
	}
	return nil
}

func wanted(o *createOpts) string {
	var parts []string
	if o.max > 0 {
		parts = append(parts, fmt.Sprintf("-max %d", o.max))
	}
	if o.size > 0 {
		parts = append(parts, fmt.Sprintf("-size %d", o.size))
	}
	return strings.Join(parts, " ")
}
