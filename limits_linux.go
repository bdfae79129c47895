//go:build linux

package chanmq

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// This file turns errnos into sentences that say what to do, reading the
// kernel limits that most likely caused them.

const mqueueSysctlDir = "/proc/sys/fs/mqueue/"

// readLimit reads one /proc/sys/fs/mqueue value, or -1 when unreadable.
func readLimit(name string) int {
	b, err := os.ReadFile(mqueueSysctlDir + name)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// defaultAttr returns the capacity and message size the kernel gives a new
// queue when none is asked for (msg_default, msgsize_default).
func defaultAttr() (maxMsgs, msgSize int) {
	maxMsgs, msgSize = readLimit("msg_default"), readLimit("msgsize_default")
	if maxMsgs <= 0 {
		maxMsgs = 10
	}
	if msgSize <= 0 {
		msgSize = 8192
	}
	return maxMsgs, msgSize
}

// queueBytes is what a queue counts against RLIMIT_MSGQUEUE from its
// creation until it is freed, as the kernel computes it (mqueue_get_inode
// in ipc/mqueue.c): per message its bytes plus a struct msg_msg header,
// plus a priority-tree node per message up to one per priority. The sizes
// are a 64-bit kernel's (a 32-bit one's are half); the README's table of
// queue costs is checked against the kernel with it.
func queueBytes(maxMsgs, msgSize int) uint64 {
	const msgHeader, treeNode = 48, 48 // sizeof(struct msg_msg), sizeof(struct posix_msg_tree_node)
	return uint64(maxMsgs)*uint64(msgSize+msgHeader) + uint64(min(maxMsgs, MaxPriority+1))*treeNode
}

func limitErr(errno error, format string, args ...any) error {
	return &explained{msg: fmt.Sprintf(format, args...), errno: errno, also: ErrLimit}
}

// explainErrno gives err, an errno from op on name, a sentence that says
// what happened and what to do. c is the Open config, or nil.
func explainErrno(op, name string, err error, c *config) error {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return err
	}
	switch errno {
	case unix.ENOENT:
		switch op {
		case "open":
			return explain(errno, "queue does not exist (open it with chanmq.Create(0o600) to create it)")
		case "unlink":
			return explain(errno, "queue does not exist, so there is nothing to remove (errors.Is(err, fs.ErrNotExist) tells this case apart, to ignore it)")
		}
	case unix.EEXIST:
		if c != nil && c.endOfStream {
			// A producer that makes a fresh queue per stream found the
			// queue of an earlier one, which a crash (or a run that did
			// not remove it) left behind.
			return explain(errno, "queue already exists: it is an earlier stream's, still there. It may hold that stream's "+
				"end-of-stream marker, which would end this stream's receivers at once, and values no receiver took. "+
				"Look with `chanmq stat %[1]s` and `chanmq recv -nonblock -follow %[1]s`, then remove it with `chanmq rm %[1]s` "+
				"(or chanmq.Unlink), or give this stream another name", name)
		}
		return explain(errno, "queue already exists (drop Exclusive to open it, or Unlink it first)")
	case unix.EACCES, unix.EPERM:
		if op == "unlink" {
			// mq_unlink is an unlink in the mqueue filesystem's root
			// directory, which is mode 1777, sticky like /tmp: the queue's
			// own mode does not matter, its owner does (the kernel's
			// may_delete and check_sticky give EPERM).
			// The kernel says EPERM for "not the owner" and EACCES for a
			// directory that denies writing, but glibc's mq_unlink (and so
			// qemu-user, which runs on it) turns EPERM into EACCES: say both.
			return explain(errno, "permission denied: only the queue's owner, or a process with CAP_FOWNER such as root, may remove it, whatever the queue's mode (see `ls -l /dev/mqueue`; ask its owner); for its owner too, if the mqueue directory's mode (normally 1777) was changed to deny writing")
		}
		return explain(errno, "permission denied: the queue's mode or owner does not let this user open it this way (see `ls -l /dev/mqueue`; ask its owner, or open ReadOnly/WriteOnly if that is all you need)")
	case unix.ENOSPC:
		return limitErr(errno, "too many queues on this system: fs.mqueue.queues_max is %d (raise it with `sysctl -w fs.mqueue.queues_max=N` as root, or Unlink unused queues)", readLimit("queues_max"))
	case unix.EMFILE:
		return explainEMFILE(errno, c)
	case unix.ENFILE:
		return limitErr(errno, "the system-wide limit on open files was reached (fs.file-max)")
	case unix.ENOMEM:
		return limitErr(errno, "the kernel is out of memory for this queue; ask for fewer or smaller messages")
	case unix.EINVAL:
		if op == "open" && c != nil && c.create {
			return explainEINVAL(errno, c)
		}
	case unix.EBADF:
		return explain(errno, "bad descriptor: it is closed or not open for this direction")
	case unix.ENAMETOOLONG:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidName, maxNameLen)
	}
	return explain(errno, "%s", errno.Error())
}

// explainEMFILE tells RLIMIT_MSGQUEUE (which the kernel also reports as
// EMFILE) apart from running out of file descriptors.
func explainEMFILE(errno unix.Errno, c *config) error {
	var nofile unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile) == nil {
		// With every descriptor in use, listing them fails with EMFILE
		// too; and opening an existing queue charges no queue bytes.
		fds, err := os.ReadDir("/proc/self/fd")
		if errors.Is(err, unix.EMFILE) || (err == nil && uint64(len(fds))+1 >= nofile.Cur) || c == nil || !c.create {
			return limitErr(errno, "too many open files: RLIMIT_NOFILE is %d (raise it with `ulimit -n`, or close descriptors)", nofile.Cur)
		}
	}
	var mq unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MSGQUEUE, &mq); err != nil {
		return limitErr(errno, "too many open files or message queue bytes for this user")
	}
	need := ""
	if c != nil && c.create {
		maxMsgs, msgSize := c.maxMsgs, c.msgSize
		dm, ds := defaultAttr()
		if maxMsgs == 0 {
			maxMsgs = dm
		}
		if msgSize == 0 {
			msgSize = ds
		}
		need = fmt.Sprintf(" this queue needs %d bytes (%d messages of %d bytes, plus the kernel's bookkeeping);", queueBytes(maxMsgs, msgSize), maxMsgs, msgSize)
	}
	return limitErr(errno, "message queue bytes for this user exceed RLIMIT_MSGQUEUE:%s the limit is %d bytes, shared by all of this user's queues (raise it with `ulimit -q BYTES`, LimitMSGQUEUE= in systemd, or make queues smaller; Unlink unused queues)", need, mq.Cur)
}

// explainEINVAL names the size limit that a create request exceeded.
func explainEINVAL(errno unix.Errno, c *config) error {
	msgMax, msgsizeMax := readLimit("msg_max"), readLimit("msgsize_max")
	switch {
	case c.maxMsgs > 0 && msgMax > 0 && c.maxMsgs > msgMax:
		return limitErr(errno, "MaxMessages(%d) exceeds fs.mqueue.msg_max, which is %d (raise it as root with `sysctl -w fs.mqueue.msg_max=%d`, or ask for fewer messages)", c.maxMsgs, msgMax, c.maxMsgs)
	case c.msgSize > 0 && msgsizeMax > 0 && c.msgSize > msgsizeMax:
		return limitErr(errno, "MessageSize(%d) exceeds fs.mqueue.msgsize_max, which is %d (raise it as root with `sysctl -w fs.mqueue.msgsize_max=%d`, or send smaller messages)", c.msgSize, msgsizeMax, c.msgSize)
	}
	return limitErr(errno, "the kernel refused the queue attributes (MaxMessages %d, MessageSize %d; limits: fs.mqueue.msg_max %d, fs.mqueue.msgsize_max %d, hard ceilings 65536 messages and 16 MiB)", c.maxMsgs, c.msgSize, msgMax, msgsizeMax)
}
