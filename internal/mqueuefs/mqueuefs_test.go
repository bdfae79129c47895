//go:build linux

package mqueuefs_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chanmq/chanmq"
	"github.com/chanmq/chanmq/internal/mqueuefs"
	"github.com/chanmq/chanmq/internal/testutil"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

const testPrefix = testutil.QueuePrefix + "mqueuefs-"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestDirListsQueues creates a queue and finds its file in the directory
// Dir returns, and checks that release leaves no temporary mount point.
func TestDirListsQueues(t *testing.T) {
	t.Parallel()
	dir, release, temporary, err := mqueuefs.Dir()
	if err != nil {
		t.Skipf("mqueue filesystem not available here: %v", err)
	}
	q, err := chanmq.CreateTemp(testPrefix, chanmq.MaxMessages(1), chanmq.MessageSize(8))
	if err != nil {
		release()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close(); _ = chanmq.Unlink(q.Name()) })
	_, statErr := os.Stat(filepath.Join(dir, strings.TrimPrefix(q.Name(), "/")))
	release()
	if statErr != nil {
		t.Errorf("queue %s not in the mqueue filesystem at %s: %v", q.Name(), dir, statErr)
	}
	if _, err := os.Stat(dir); temporary && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary mount point %s still there after release: %v", dir, err)
	}
}

// hostQueueEnv names, for the child of TestFindInNewIPCNamespace, the
// queue its parent made in its own IPC namespace; noProbeEnv tells it to
// make Find's probe queue fail, as when RLIMIT_MSGQUEUE is spent.
const hostQueueEnv, noProbeEnv = "MQUEUEFS_TEST_HOST_QUEUE", "MQUEUEFS_TEST_NO_PROBE"

// TestFindInNewIPCNamespace runs a child in an IPC namespace of its own
// where the parent's mqueue filesystem is mounted (what `unshare --ipc`
// gives where /dev/mqueue is mounted): Find must not return that mount,
// which lists the parent's queues, but one that lists the child's.
// SweepQueues lists queues through Find, so it sweeps the right ones too.
// When Find cannot create a probe queue, the fresh mount is its probe.
func TestFindInNewIPCNamespace(t *testing.T) {
	if host := os.Getenv(hostQueueEnv); host != "" {
		findInNewNamespace(t, host, os.Getenv(noProbeEnv) != "")
		return
	}
	t.Parallel()
	host, err := chanmq.CreateTemp(testPrefix, chanmq.MaxMessages(1), chanmq.MessageSize(8))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close(); _ = chanmq.Unlink(host.Name()) })
	for _, probe := range []string{"probe queue", "no probe queue"} {
		t.Run(probe, func(t *testing.T) {
			t.Parallel()
			cmd := testutil.InNewIPCNamespace(t, os.Args[0], "-test.run=^TestFindInNewIPCNamespace$", "-test.v")
			cmd.Env = append(os.Environ(), hostQueueEnv+"="+host.Name())
			if probe == "no probe queue" {
				cmd.Env = append(cmd.Env, noProbeEnv+"=1")
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("in a new IPC namespace: %v\n%s", err, out)
			}
		})
	}
}

// findInNewNamespace is the child's side: host is a queue of the
// parent's namespace, whose mqueue filesystem is mounted. With noProbe,
// it lowers RLIMIT_MSGQUEUE to 0 once its own queue exists, so that no
// probe queue can be created.
func findInNewNamespace(t *testing.T, host string, noProbe bool) {
	own, err := chanmq.CreateTemp(testPrefix, chanmq.MaxMessages(1), chanmq.MessageSize(8))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = own.Close(); _ = chanmq.Unlink(own.Name()) })
	if noProbe {
		var lim unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_MSGQUEUE, &lim); err != nil {
			t.Fatal(err)
		}
		lim.Cur = 0
		if err := unix.Setrlimit(unix.RLIMIT_MSGQUEUE, &lim); err != nil {
			t.Fatal(err)
		}
		if _, err := chanmq.CreateTemp(testPrefix, chanmq.MaxMessages(1), chanmq.MessageSize(1)); err == nil {
			t.Fatal("a queue could still be created with RLIMIT_MSGQUEUE 0")
		}
	}
	m, err := mqueuefs.Find()
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	defer m.Release()
	if _, err := os.Stat(filepath.Join(m.Dir, strings.TrimPrefix(own.Name(), "/"))); err != nil {
		t.Errorf("this namespace's queue %s is not in %s: %v", own.Name(), m.Dir, err)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, strings.TrimPrefix(host, "/"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the other namespace's queue %s is in %s: %v", host, m.Dir, err)
	}
	if !m.Temporary || m.Foreign == "" {
		t.Errorf("Find gave %+v; want a temporary mount, and the other namespace's mount passed over", *m)
	}
}
