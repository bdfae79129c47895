// Command demo shows two processes talking through a POSIX message queue:
// it builds examples/receiver and examples/sender, starts them as two
// child processes on a fresh queue, lets their output through, and removes
// the queue when both are done. From the repository:
//
//	go run ./examples/demo
//
// It ends by itself after -n messages (or -timeout, or Ctrl-C).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/chanmq/chanmq"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("demo: ")
	n := flag.Int("n", 5, "number of messages")
	interval := flag.Duration("interval", 200*time.Millisecond, "pause between messages")
	timeout := flag.Duration("timeout", time.Minute, "stop the children if they are not done by then")
	flag.Parse()
	if err := run(*n, *interval, *timeout); err != nil {
		log.Fatal(err)
	}
}

func run(n int, interval, timeout time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "chanmq-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Println("demo: building examples/receiver and examples/sender")
	build := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator),
		"github.com/chanmq/chanmq/examples/receiver", "github.com/chanmq/chanmq/examples/sender")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %v (run the demo from the chanmq repository: go run ./examples/demo)", err)
	}

	// A queue of our own, so that the demo never mixes with another run.
	queue := fmt.Sprintf("/chanmq-demo-%d", os.Getpid())
	defer chanmq.Unlink(queue)

	receiver := child(ctx, filepath.Join(dir, "receiver"), "-queue", queue, "-n", strconv.Itoa(n))
	sender := child(ctx, filepath.Join(dir, "sender"), "-queue", queue, "-n", strconv.Itoa(n), "-interval", interval.String())
	fmt.Printf("demo: starting receiver and sender on %s\n", queue)
	if err := receiver.Start(); err != nil {
		return err
	}
	if err := sender.Start(); err != nil {
		_ = receiver.Process.Kill()
		_ = receiver.Wait()
		return err
	}
	errS, errR := sender.Wait(), receiver.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("stopped: %v", context.Cause(ctx))
	}
	if err := errors.Join(errS, errR); err != nil {
		return err
	}
	fmt.Printf("demo: both processes are done; removed %s\n", queue)
	return nil
}

// child returns a command that shares our output (each line the children
// print is one write, so lines do not mix) and gets SIGTERM when ctx ends.
func child(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second // then it is killed
	return cmd
}
