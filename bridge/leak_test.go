//go:build linux

package mqbridge_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the chanmq-bridge command when the binary is re-executed
// as a child, and otherwise sweeps queues that crashed runs left behind
// and runs the tests, with goleak checking that no
// goroutine (the bridge's, nats.go's or the embedded server's) outlives
// them.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	sweepTestQueues()
	goleak.VerifyTestMain(m)
}
