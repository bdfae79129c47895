//go:build linux

package chanmq

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/chanmq/chanmq/internal/testutil"
)

// Values a stopped worker process gives back after the end-of-stream
// marker must still reach a worker that is running: with goroutines, a
// stopped worker's unread values are ahead of close(ch) and the others
// take them.

func init() {
	registerChild("eos-worker", eosWorkerChild)
}

// eosWorkerChild is a worker process with an EndOfStream receiver on
// $EOS_QUEUE and Buffer($EOS_BUFFER). With EOS_MODE=hold it reads nothing
// and stops (cancel, Wait; its Close puts back what it held) when its
// stdin closes. With EOS_MODE=gated it waits for a line on stdin, then
// prints every value of its range, then "end".
func eosWorkerChild() int {
	buffer, _ := strconv.Atoi(os.Getenv("EOS_BUFFER"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rx, err := OpenReceiverOf(ctx, os.Getenv("EOS_QUEUE"), String(), EndOfStream(), Buffer(buffer))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	in := bufio.NewReader(os.Stdin)
	if os.Getenv("EOS_MODE") == "hold" {
		_, _ = in.ReadString('\n') // until stdin closes
		cancel()
		if err := rx.Wait(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	_, _ = in.ReadString('\n')
	for v := range rx.C {
		fmt.Println(v)
	}
	if err := rx.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("end")
	return 0
}

func TestValuesAStoppedWorkerPutBackBehindTheMarkerReachARunningWorker(t *testing.T) {
	t.Parallel()
	skipWithoutSubprocesses(t)
	q := newTestQueue(t, MaxMessages(8))
	tx := Of(q, String()).Sender(context.Background(), EndOfStream())
	var sent []string
	for i := 1; i <= 7; i++ {
		sent = append(sent, fmt.Sprintf("v%d", i))
		tx.C <- sent[len(sent)-1]
	}
	close(tx.C)
	if err := tx.Wait(); err != nil {
		t.Fatal(err)
	}

	start := func(mode string, buffer int) (stdin func(string), closeStdin func(), wait func() error, stdout fmt.Stringer) {
		cmd, out, stderr := childCommand(t, "eos-worker", "EOS_QUEUE="+q.Name(), "EOS_MODE="+mode, "EOS_BUFFER="+strconv.Itoa(buffer))
		w, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		waitCmd := startCmd(t, cmd)
		return func(s string) { _, _ = w.Write([]byte(s)) }, func() { _ = w.Close() }, func() error {
			if err := waitCmd(); err != nil {
				return fmt.Errorf("%v: %s", err, stderr)
			}
			return nil
		}, out
	}
	// Worker 1 takes five (one offered, four read ahead); worker 2 takes
	// the sixth and waits, with the seventh and the marker still queued.
	_, stop1, wait1, _ := start("hold", 4)
	testutil.WaitFor(t, "worker 1 to take five", func() bool { return q.Len() == 3 })
	go2, stop2, wait2, out2 := start("gated", 0)
	defer stop2()
	testutil.WaitFor(t, "worker 2 to take one", func() bool { return q.Len() == 2 })
	// Worker 1 stops: its five go back behind the marker.
	stop1()
	if err := wait1(); err != nil {
		t.Fatalf("worker 1: %v", err)
	}
	if n := q.Len(); n != 7 {
		t.Fatalf("after worker 1 stopped the queue holds %d messages, want 7 (v7, the marker, v1..v5)", n)
	}
	go2("go\n")
	if err := wait2(); err != nil {
		t.Fatalf("worker 2: %v", err)
	}
	lines := strings.Fields(out2.String())
	if len(lines) == 0 || lines[len(lines)-1] != "end" {
		t.Fatalf("worker 2 printed %q, want its values then end", lines)
	}
	got := lines[:len(lines)-1]
	want := []string{"v6", "v7", "v1", "v2", "v3", "v4", "v5"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("worker 2 received %q, want %q: every value, the five put back behind the marker included", got, want)
	}
	wantMessages(t, "left in the queue after the stream ended", drainQueue(t, q), msg("", 0))
}
