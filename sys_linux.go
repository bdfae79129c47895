//go:build linux

package chanmq

import (
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file is the syscall core: plain values in, raw errnos out. It knows
// nothing of contexts, channels or options, so it can be tested against C.

// mqAttr mirrors the kernel's struct mq_attr: four C longs followed by four
// reserved longs. A C long on Linux is one machine word, as is Go's int, so
// the layout is right on 32-bit (386, arm) and 64-bit (amd64, arm64) alike.
type mqAttr struct {
	flags   int // 0 or O_NONBLOCK
	maxMsg  int // capacity in messages
	msgSize int // largest message in bytes
	curMsgs int // messages currently queued
	_       [4]int
}

// timespec is the kernel's timeout type for mq_timedsend/mq_timedreceive.
type timespec = unix.Timespec

// errAgain is what a nonblocking call returns when it would have to wait.
var errAgain error = unix.EAGAIN

// errTimedOut is what a timed call returns when its absolute timeout passed.
var errTimedOut error = unix.ETIMEDOUT

const (
	oNonblock = unix.O_NONBLOCK
	oCloexec  = unix.O_CLOEXEC
	oCreat    = unix.O_CREAT
	oExcl     = unix.O_EXCL
	oRdonly   = unix.O_RDONLY
	oWronly   = unix.O_WRONLY
	oRdwr     = unix.O_RDWR
)

// ignoringEINTR calls f, which makes one syscall, again for as long as it
// fails with EINTR: the one retry loop of this file. f makes the syscall
// itself, so that each uintptr(unsafe.Pointer(p)) stays inside the
// syscall's own argument list, the one place where the compiler keeps p's
// object alive and in place for the call (rule 4 of unsafe.Pointer); a
// helper that took the uintptrs would lose that. A closure that does not
// escape costs no allocation.
func ignoringEINTR(f func() (uintptr, unix.Errno)) (uintptr, error) {
	for {
		r, e := f()
		switch e {
		case 0:
			return r, nil
		case unix.EINTR:
			continue
		default:
			return r, e
		}
	}
}

// sysOpen calls mq_open. name starts with "/" and holds no NUL. The kernel
// wants the name without its slash; like glibc we pass a pointer one byte
// into a NUL-terminated "/name" buffer (qemu-user reads the byte before).
func sysOpen(name string, flags int, perm uint32, attr *mqAttr) (int, error) {
	buf := make([]byte, len(name)+1)
	copy(buf, name)
	fd, err := ignoringEINTR(func() (uintptr, unix.Errno) {
		r, _, e := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(&buf[1])),
			uintptr(flags), uintptr(perm), uintptr(unsafe.Pointer(attr)), 0, 0)
		return r, e
	})
	if err != nil {
		return -1, err
	}
	return int(fd), nil
}

// sysUnlink calls mq_unlink, passing the name as sysOpen does.
func sysUnlink(name string) error {
	buf := make([]byte, len(name)+1)
	copy(buf, name)
	_, err := ignoringEINTR(func() (uintptr, unix.Errno) {
		_, _, e := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(&buf[1])), 0, 0)
		return 0, e
	})
	return err
}

// mayBlock reports whether a timed call with timeout abs can block: only
// the fallback wait passes a future timeout. A nil abs on a nonblocking
// descriptor, or the zero (long past) timeout, returns at once, and such
// calls use RawSyscall6, which skips telling the scheduler about a
// syscall that cannot block.
func mayBlock(abs *timespec) bool { return abs != nil && (abs.Sec != 0 || abs.Nsec != 0) }

// sysSend calls mq_timedsend. abs is nil for "no timeout", which on a
// nonblocking descriptor means "return EAGAIN when full".
func sysSend(fd int, msg []byte, prio uint, abs *timespec) error {
	block := mayBlock(abs)
	_, err := ignoringEINTR(func() (uintptr, unix.Errno) {
		if block {
			_, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDSEND, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(msg))),
				uintptr(len(msg)), uintptr(prio), uintptr(unsafe.Pointer(abs)), 0)
			return 0, e
		}
		_, _, e := unix.RawSyscall6(unix.SYS_MQ_TIMEDSEND, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(msg))),
			uintptr(len(msg)), uintptr(prio), uintptr(unsafe.Pointer(abs)), 0)
		return 0, e
	})
	return err
}

// sysReceive calls mq_timedreceive into buf, which must hold at least the
// queue's message size or the kernel refuses with EMSGSIZE (and keeps the
// message). abs is as for sysSend.
func sysReceive(fd int, buf []byte, abs *timespec) (int, uint, error) {
	var prio uint32
	block := mayBlock(abs)
	n, err := ignoringEINTR(func() (uintptr, unix.Errno) {
		if block {
			r, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDRECEIVE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(buf))),
				uintptr(len(buf)), uintptr(unsafe.Pointer(&prio)), uintptr(unsafe.Pointer(abs)), 0)
			return r, e
		}
		r, _, e := unix.RawSyscall6(unix.SYS_MQ_TIMEDRECEIVE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(buf))),
			uintptr(len(buf)), uintptr(unsafe.Pointer(&prio)), uintptr(unsafe.Pointer(abs)), 0)
		return r, e
	})
	if err != nil {
		return 0, 0, err
	}
	return int(n), uint(prio), nil
}

// sysYield calls sched_yield, letting another thread that is runnable on
// this CPU (a peer process just woken, say) run first.
func sysYield() { unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// sysGetAttr calls mq_getsetattr to read the attributes. It fails with EBADF
// for a descriptor that is not a message queue.
func sysGetAttr(fd int) (mqAttr, error) {
	var attr mqAttr
	_, _, e := unix.Syscall(unix.SYS_MQ_GETSETATTR, uintptr(fd), 0, uintptr(unsafe.Pointer(&attr)))
	if e != 0 {
		return attr, e
	}
	return attr, nil
}

// sysSetFlags calls mq_getsetattr to set the descriptor's flags (only
// O_NONBLOCK is settable).
func sysSetFlags(fd int, flags int) error {
	attr := mqAttr{flags: flags}
	_, _, e := unix.Syscall(unix.SYS_MQ_GETSETATTR, uintptr(fd), uintptr(unsafe.Pointer(&attr)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// sysIdentity returns the device and inode of the queue behind fd (an mq
// descriptor supports fstat): two descriptors with the same pair are the
// same kernel queue, whatever name or process opened them.
func sysIdentity(fd int) (dev, ino uint64, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Dev), uint64(st.Ino), nil
}

// sysDup duplicates fd with close-on-exec set on the copy.
func sysDup(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}

// sysClose closes a descriptor that was never handed to an os.File.
func sysClose(fd int) error { return unix.Close(fd) }

// sysAccessMode reports the descriptor's O_ACCMODE bits.
func sysAccessMode(fd int) (int, error) {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return 0, err
	}
	return fl & unix.O_ACCMODE, nil
}

// sysFdName returns the queue name behind an mq descriptor, as the kernel
// shows it in /proc/self/fd ("/jobs"), or "" when it cannot tell.
func sysFdName(fd int) string {
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil || len(target) < 2 || target[0] != '/' {
		return ""
	}
	return target
}

// absTimespec converts a wall-clock instant to the CLOCK_REALTIME timespec
// the timed calls take. Only the blocking fallback uses it.
func absTimespec(t time.Time) timespec {
	return unix.NsecToTimespec(t.UnixNano())
}

// errMsgSize is EMSGSIZE: a message longer than the queue's message size,
// or a receive buffer shorter than it.
var errMsgSize error = unix.EMSGSIZE
