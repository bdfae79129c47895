//go:build !linux

package main

import (
	"fmt"
	"io/fs"
	"runtime"
)

// mqueueFS fails: the mqueue filesystem is Linux's.
func mqueueFS() (dir string, release func(), temporary bool, err error) {
	return "", nil, false, fmt.Errorf("listing queues needs Linux's mqueue filesystem, not available on %s", runtime.GOOS)
}

func ownerOf(fs.FileInfo) (uid, gid uint32, ok bool) { return 0, 0, false }

func clearUmask() (restore func()) { return func() {} }
