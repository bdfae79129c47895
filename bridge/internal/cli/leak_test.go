//go:build linux

package cli_test

import (
	"testing"

	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/chanmq/chanmq/bridge/internal/cli"
)

// TestMain runs the command when the binary is re-executed as a child
// (bridgetest.StartBridge), and otherwise runs the tests with goleak
// checking that no goroutine outlives them.
func TestMain(m *testing.M) { bridgetest.Main(m, cli.Main) }
