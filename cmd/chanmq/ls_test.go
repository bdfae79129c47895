//go:build linux

package main

import (
	"strings"
	"testing"
)

// TestLsAndStatInANewIPCNamespace runs ls and stat in an IPC namespace of
// their own where the test's namespace's mqueue filesystem is mounted, as
// 'unshare --ipc' gives on a system with /dev/mqueue: ls must list the new
// namespace's queue and not the other namespace's, stat must read the
// mode of the new namespace's queue, and ls as a user who may not mount
// this namespace's filesystem must say it cannot list the queues rather
// than list the other namespace's.
func TestLsAndStatInANewIPCNamespace(t *testing.T) {
	t.Parallel()
	host := newQueue(t, "-max", "1", "-size", "8")
	own := queueName(t) // created in the new namespace, gone with it
	ran := inNewIPCNamespace(t, `
run create "$CHANMQ" create "$1" -max 1 -size 8 -mode 0640
run ls "$CHANMQ" ls
run stat "$CHANMQ" stat "$1"
run nobody-ls as_nobody "$CHANMQ" ls
`, own)

	if r := ran("create"); r.code != 0 {
		t.Fatalf("create in the new namespace: exit %d, stderr %q", r.code, r.stderr)
	}
	ls := ran("ls")
	if ls.code != 0 || !strings.Contains(ls.stdout, own+"\n") || strings.Contains(ls.stdout, host+"\n") {
		t.Errorf("ls in the new namespace: exit %d, stderr %q; listed\n%s\nwant %s, and not the other namespace's %s",
			ls.code, ls.stderr, ls.stdout, own, host)
	}
	if !strings.Contains(ls.stderr, "another IPC namespace's") {
		t.Errorf("ls in the new namespace does not say why it mounted one of its own: stderr %q", ls.stderr)
	}
	if st := ran("stat"); st.code != 0 || !strings.Contains(st.stdout, "-rw-r----- (0640)") {
		t.Errorf("stat in the new namespace: exit %d, stderr %q, printed\n%s\nwant mode 0640", st.code, st.stderr, st.stdout)
	}
	nobodyLs := ran("nobody-ls")
	wantFail(t, nobodyLs, 1, "IPC namespace", "another's")
	if strings.Contains(nobodyLs.stdout, host) {
		t.Errorf("ls as nobody in the new namespace listed the other namespace's %s:\n%s", host, nobodyLs.stdout)
	}
}
