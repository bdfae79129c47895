//go:build !linux

package chanmq

import (
	"errors"
	"os"
	"testing"
)

// On systems without POSIX message queues every entry point must fail with
// an error matching errors.ErrUnsupported (CI type-checks this file with
// GOOS=darwin go vet; it runs wherever the tests run on such a system).
func TestEveryEntryPointIsUnsupported(t *testing.T) {
	if _, err := Open("/jobs", Create(0o600)); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Open = %v, want ErrUnsupported", err)
	}
	if _, err := CreateTemp("/jobs-"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CreateTemp = %v, want ErrUnsupported", err)
	}
	if err := Unlink("/jobs"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Unlink = %v, want ErrUnsupported", err)
	}
	if _, err := NewQueue(os.Stdin); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("NewQueue = %v, want ErrUnsupported", err)
	}
}
