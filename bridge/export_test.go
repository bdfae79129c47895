//go:build linux

package mqbridge

import (
	"os"
	"strconv"
	"time"
)

// InCompactEnv, set in a bridge child's environment, makes its in journal
// compact every so many records instead of inCompactRecords, so that a
// test can aim a server crash at a compaction without moving 256k
// messages.
const InCompactEnv = "CHANMQ_BRIDGE_TEST_IN_COMPACT_RECORDS"

func init() {
	if n, err := strconv.Atoi(os.Getenv(InCompactEnv)); err == nil && n > 0 {
		inCompactRecords = n
	}
}

// SetInMoveTimeout sets how long an In moving out of a removed queue
// waits for room in the new one, and returns a func that restores it. Only
// a test that does not run in parallel may call it.
func SetInMoveTimeout(d time.Duration) (restore func()) {
	old := inMoveTimeout
	inMoveTimeout = d
	return func() { inMoveTimeout = old }
}
