// Package mqueuefs finds the mqueue filesystem, the directory through which
// Linux lists the POSIX message queues of an IPC namespace (one file per
// queue), for the chanmq command and for the tests.
//
// Each IPC namespace has its own mqueue filesystem, but mounts belong to
// mount namespaces: a process in an IPC namespace of its own (`unshare
// --ipc`, some service sandboxes) that shares the mount table still sees
// the mqueue filesystem of the namespace that mounted it, another
// namespace's queues. Find therefore checks that a mount is this
// namespace's before it uses it (see namespaceDev).
package mqueuefs

import "errors"

// Hint is how to mount the mqueue filesystem for good, for error messages.
const Hint = "mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue (as root)"

var (
	// ErrNotMounted means no mqueue filesystem of this IPC namespace is
	// mounted and this process may not mount one (that needs root).
	ErrNotMounted = errors.New("the mqueue filesystem of this IPC namespace is not mounted")
	// ErrOtherNamespace means the mqueue filesystems that are mounted
	// belong to other IPC namespaces (or Find cannot tell), and this
	// process may not mount its own namespace's (that needs root).
	ErrOtherNamespace = errors.New("no mounted mqueue filesystem is known to be this IPC namespace's")
)

// Mount is a directory where the mqueue filesystem of this process's IPC
// namespace is mounted. Call Release when done with it.
type Mount struct {
	// Dir is the directory: its files are this namespace's queues, "jobs"
	// for the queue "/jobs".
	Dir string
	// Temporary is true when Find mounted the filesystem on a temporary
	// directory, which Release unmounts and removes.
	Temporary bool
	// Foreign is an mqueue mount Find passed over because it belongs to
	// another IPC namespace, or "": it says why a temporary mount was
	// needed although one is mounted.
	Foreign string

	release func()
}

// Release unmounts a temporary mount; it does nothing for the others.
func (m *Mount) Release() { m.release() }

// Dir is Find for callers that need only the directory: it returns
// m.Dir, m.Release and m.Temporary.
func Dir() (dir string, release func(), temporary bool, err error) {
	m, err := Find()
	if err != nil {
		return "", nil, false, err
	}
	return m.Dir, m.Release, m.Temporary, nil
}
