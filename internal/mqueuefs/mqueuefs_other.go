//go:build !linux

package mqueuefs

import (
	"fmt"
	"runtime"
)

// Dir fails: the mqueue filesystem is Linux's.
func Dir() (dir string, release func(), temporary bool, err error) {
	return "", nil, false, fmt.Errorf("listing queues needs Linux's mqueue filesystem, not available on %s", runtime.GOOS)
}
