//go:build !linux

// Command bench measures chanmq against C and the pure-Go alternatives. It
// needs Linux: POSIX message queues are a Linux feature here.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "bench: POSIX message queues need Linux; this is %s\n", runtime.GOOS)
	os.Exit(1)
}
