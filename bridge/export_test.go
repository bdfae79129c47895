//go:build linux

package mqbridge

import (
	"os"
	"strconv"
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
