//go:build linux

package main

import (
	"strings"
	"testing"

	"github.com/chanmq/chanmq/internal/mqueuefs"
)

func TestCreateDefaultModeIsOwnerOnly(t *testing.T) {
	t.Parallel()
	name := newQueue(t)
	if _, release, _, err := mqueuefs.Dir(); err != nil {
		t.Skipf("mode not readable: %v", err)
	} else {
		release()
	}
	out := mustRun(t, nil, "stat", name)
	if !strings.Contains(out, "-rw------- (0600)") {
		t.Errorf("default mode is not 0600:\n%s", out)
	}
}

func TestCreateExisting(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "2", "-size", "32")
	mustRun(t, nil, "create", name)                             // exists: fine
	mustRun(t, nil, "create", name, "-max", "2", "-size", "32") // same attributes: fine
	wantFail(t, runCmd(t, nil, "create", name, "-excl"), 1, "already exists", "chanmq rm "+name)
	wantFail(t, runCmd(t, nil, "create", name, "-max", "3"), 1, "2 messages of 32 bytes", "-max 3")
}
