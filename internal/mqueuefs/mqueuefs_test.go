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
)

// TestDirListsQueues creates a queue and finds its file in the directory
// Dir returns, and checks that release leaves no temporary mount point.
func TestDirListsQueues(t *testing.T) {
	t.Parallel()
	dir, release, temporary, err := mqueuefs.Dir()
	if err != nil {
		t.Skipf("mqueue filesystem not available here: %v", err)
	}
	q, err := chanmq.CreateTemp("/chanmq-test-mqueuefs-", chanmq.MaxMessages(1), chanmq.MessageSize(8))
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
