// Command chanmq-bridge carries a local POSIX message queue over NATS
// JetStream: -out forwards a queue to a subject, -in forwards a stream's
// durable consumer into a queue, and both can run in one process. Run it
// as a sidecar next to the program that uses the queue; see -h and the
// bridge module's README. Build it static with CGO_ENABLED=0.
package main

import (
	"os"

	"github.com/chanmq/chanmq/bridge/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stderr))
}
