//go:build linux

package cli_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chanmq/chanmq/bridge/internal/bridgetest"
	"github.com/nats-io/nats-server/v2/server"
)

func TestCommandWrongCredentialsSaysSo(t *testing.T) {
	t.Parallel()
	ts := bridgetest.StartServer(t, func(o *server.Options) { o.Username, o.Password = "bridge", "right" })
	q := bridgetest.NewQueue(t, 4, 128)
	p := bridgetest.StartBridge(t, "-server", ts.URL(), "-user", "bridge", "-out", q.Name(), "-subject", "x", "-journal", t.TempDir())
	var err error
	select {
	case err = <-p.Done:
		p.Done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("the command did not exit in 30s with wrong credentials")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(p.Stderr.String(), "refused the credentials") {
		t.Fatalf("exit %v, stderr:\n%s\nwant status 1 and a message about the credentials", err, p.Stderr)
	}
	t.Logf("%s", p.Stderr)
}

func TestCommandHelp(t *testing.T) {
	t.Parallel()
	p := bridgetest.StartBridge(t, "-h")
	if err := <-p.Done; err != nil {
		t.Fatalf("-h: %v\n%s", err, p.Stderr)
	}
	p.Done <- nil
	for _, want := range []string{"-out", "-in", "-server", "NATS_URL", "-creds", "-tlscert", "-journal", "-fsync", "-durable"} {
		if !strings.Contains(p.Stderr.String(), want) {
			t.Errorf("-h does not mention %s", want)
		}
	}
}
