//go:build linux

package main

import "testing"

// TestRmOfAnotherUsersQueue removes root's queue as nobody: mq_unlink
// refuses (EPERM: the mqueue directory is sticky), whatever the queue's
// mode, and rm says who may remove it, not that the queue cannot be
// opened.
func TestRmOfAnotherUsersQueue(t *testing.T) {
	t.Parallel()
	attr := asNobody(t)
	name := newQueue(t, "-max", "1", "-size", "8", "-mode", "0666")
	wantFail(t, runCmdAs(t, attr, nil, "rm", name), 1, "only the queue's owner may remove it", "sticky", "chanmq stat "+name)
	mustRun(t, nil, "stat", name) // still there
}

// TestRmWhereTheMqueueDirectoryDeniesWriting removes nobody's own queue,
// as nobody, in an IPC namespace whose mqueue directory's mode was changed
// from 1777 to 0755: mq_unlink refuses (EACCES) even the owner, and rm
// says that the directory is why.
func TestRmWhereTheMqueueDirectoryDeniesWriting(t *testing.T) {
	t.Parallel()
	ran := inNewIPCNamespace(t, `
run create as_nobody "$CHANMQ" create "$1" -max 1 -size 8
mount -t mqueue none "$2" && chmod 0755 "$2" || exit
run rm as_nobody "$CHANMQ" rm "$1"
`, queueName(t), t.TempDir())
	if r := ran("create"); r.code != 0 {
		t.Fatalf("create as nobody in the new namespace: exit %d, stderr %q", r.code, r.stderr)
	}
	wantFail(t, ran("rm"), 1, "the mqueue directory does not let this user remove queues", "1777")
}
