//go:build linux

package mqueuefs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// namespaceDev returns the device number of this IPC namespace's mqueue
// filesystem: the st_dev of a message queue descriptor. mq_open always
// opens a queue of the caller's IPC namespace, through the kernel's own
// mount of that namespace's mqueue filesystem, and every mount of one
// namespace's mqueue filesystem shows the same superblock, so a mount
// whose root has this device lists this namespace's queues and one with
// another device lists another namespace's. Names prove nothing: two
// namespaces may each have a "/jobs".
//
// The descriptor is that of a queue of one 1-byte message that
// namespaceDev creates under a random name and unlinks at once or, when
// no queue can be created (fs.mqueue.queues_max reached, RLIMIT_MSGQUEUE
// spent: when listing the queues matters most), of any queue listed in
// dirs that this user may open.
func namespaceDev(dirs []string) (uint64, error) {
	fd, err := createProbe()
	if err != nil {
		var openErr error
		if fd, openErr = openListed(dirs); openErr != nil {
			return 0, fmt.Errorf("no queue could be created (%v) or opened (%v) to compare", err, openErr)
		}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("fstat of a queue descriptor: %w", err)
	}
	return uint64(st.Dev), nil
}

// createProbe creates a queue of one 1-byte message with a name no one
// else uses, unlinks it, and returns its descriptor.
func createProbe() (int, error) {
	name := fmt.Sprintf("/chanmq-probe-%d-%016x", os.Getpid(), rand.Uint64())
	// struct mq_attr is eight C longs, the size of a uintptr on every
	// Linux port of Go: flags, maxmsg, msgsize, curmsgs, 4 reserved.
	attr := [8]uintptr{1: 1, 2: 1}
	fd, err := mqOpen(name, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL, 0o600, &attr)
	if err != nil {
		return -1, fmt.Errorf("creating %s: %w", name, err)
	}
	_ = mqUnlink(name)
	return fd, nil
}

// openListed opens, read-only or else write-only, the first queue listed
// in dirs that this user may open in this namespace, and returns its
// descriptor. A name listed in another namespace's filesystem may name a
// queue of this one too: it is still this namespace's queue that opens.
func openListed(dirs []string) (int, error) {
	for _, dir := range dirs {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			for _, access := range []int{unix.O_RDONLY, unix.O_WRONLY} {
				if fd, err := mqOpen("/"+e.Name(), access, 0, nil); err == nil {
					return fd, nil
				}
			}
		}
	}
	return -1, errors.New("no listed queue that this user may open")
}

// mqOpen calls mq_open. The kernel takes the name without its slash:
// like glibc, it passes a pointer one byte into "/name\0" (qemu-user reads
// the byte before the pointer).
func mqOpen(name string, flags int, perm uint32, attr *[8]uintptr) (int, error) {
	buf := append([]byte(name), 0)
	for {
		fd, _, errno := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(&buf[1])),
			uintptr(flags|unix.O_CLOEXEC), uintptr(perm), uintptr(unsafe.Pointer(attr)), 0, 0)
		switch errno {
		case 0:
			return int(fd), nil
		case unix.EINTR:
			continue
		}
		return -1, errno
	}
}

// mqUnlink calls mq_unlink, passing the name as mqOpen does.
func mqUnlink(name string) error {
	buf := append([]byte(name), 0)
	if _, _, errno := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(&buf[1])), 0, 0); errno != 0 {
		return errno
	}
	return nil
}
