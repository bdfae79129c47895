//go:build !linux

package mqbridge

import (
	"errors"
	"os"
)

func mapJournal(*os.File, int64) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapJournal([]byte) error { return nil }
