//go:build !linux

package mqueuefs

import (
	"fmt"
	"runtime"
)

// Find fails: the mqueue filesystem is Linux's.
func Find() (*Mount, error) {
	return nil, fmt.Errorf("listing queues needs Linux's mqueue filesystem, not available on %s", runtime.GOOS)
}
