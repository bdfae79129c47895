//go:build !linux

package chanmq

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// POSIX message queues are a Linux feature here: on every other system the
// package compiles and each entry point fails with errUnsupported.

var errUnsupported = fmt.Errorf("POSIX message queues are not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)

type mqAttr struct {
	flags, maxMsg, msgSize, curMsgs int
	_                               [4]int
}

type timespec struct{}

var (
	errAgain    = errors.New("operation would block")
	errTimedOut = errors.New("timed out")
)

const (
	oNonblock = 0x800
	oCloexec  = 0x80000
	oCreat    = 0x40
	oExcl     = 0x80
	oRdonly   = 0x0
	oWronly   = 0x1
	oRdwr     = 0x2
)

func sysOpen(string, int, uint32, *mqAttr) (int, error)    { return -1, errUnsupported }
func sysUnlink(string) error                               { return errUnsupported }
func sysSend(int, []byte, uint, *timespec) error           { return errUnsupported }
func sysReceive(int, []byte, *timespec) (int, uint, error) { return 0, 0, errUnsupported }
func sysYield()                                            {}
func sysGetAttr(int) (mqAttr, error)                       { return mqAttr{}, errUnsupported }
func sysSetFlags(int, int) error                           { return errUnsupported }
func sysDup(int) (int, error)                              { return -1, errUnsupported }
func sysIdentity(int) (uint64, uint64, error)              { return 0, 0, errUnsupported }
func sysClose(int) error                                   { return errUnsupported }
func sysAccessMode(int) (int, error)                       { return 0, errUnsupported }
func sysFdName(int) string                                 { return "" }
func absTimespec(time.Time) timespec                       { return timespec{} }

var errMsgSize = errors.New("message size")
