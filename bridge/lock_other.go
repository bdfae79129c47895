//go:build !unix

package mqbridge

import "os"

// lockJournal does nothing where flock(2) does not exist (the bridge runs
// on Linux only; chanmq.Open reports errors.ErrUnsupported elsewhere).
func lockJournal(string) (*os.File, error) { return nil, nil }
