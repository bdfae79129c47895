package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/chanmq/chanmq"
)

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

// readWrite is Open's default access, for openAllowed: a nil option is
// ignored.
var readWrite chanmq.OpenOption

// openAllowed opens name with the first of accesses (readWrite,
// chanmq.ReadOnly(), chanmq.WriteOnly()) that the queue's mode and owner
// allow this user, and returns the last error if none is allowed.
func openAllowed(name string, accesses ...chanmq.OpenOption) (*chanmq.Queue, error) {
	var err error
	for _, access := range accesses {
		var q *chanmq.Queue
		if q, err = chanmq.Open(name, access); !errors.Is(err, fs.ErrPermission) {
			return q, err
		}
	}
	return nil, err
}

// attrOf opens name read-only (or write-only, if that is all this user
// may do) and reads its attributes.
func attrOf(name string) (chanmq.Attr, error) {
	q, err := openAllowed(name, chanmq.ReadOnly(), chanmq.WriteOnly())
	if err != nil {
		return chanmq.Attr{}, err
	}
	defer q.Close()
	return q.Attr()
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
