// Package mqueuefs finds the mqueue filesystem, the directory through which
// Linux lists the POSIX message queues of an IPC namespace (one file per
// queue), for the chanmq command and for the tests.
package mqueuefs

// Hint is how to mount the mqueue filesystem for good, for error messages.
const Hint = "mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue (as root)"
