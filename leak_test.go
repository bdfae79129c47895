//go:build linux

package chanmq

import (
	"os"
	"testing"

	"github.com/chanmq/chanmq/internal/testutil"
	"go.uber.org/goleak"
)

// TestMain is the only TestMain of this package's test binary. It runs the
// child side of cross-process tests (the binary re-executed with
// CHANMQ_TEST_CHILD set), sweeps queues that crashed runs left behind, and
// then runs the tests with goleak verifying that no goroutine outlives them.
func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	testutil.SweepQueues(testPrefix, Unlink)
	goleak.VerifyTestMain(m)
}
