//go:build linux

package chanmq

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPairRegistration is the measurement behind register's laziness
// (issue 11): Send then ReceiveInto in one goroutine, the fast path only,
// with the descriptor registered with the netpoller (as every Queue was
// before) or not (a Queue that never waited). "timer" adds what most real
// processes have, a pending timer, which keeps a runtime thread asleep in
// epoll_pwait; "parked" adds a goroutine parked on a pipe read, likewise.
// "none" is not quite none in a test binary: go test's -timeout timer is
// pending too, so the registered case pays there as well.
// Each op is one pair; ctxsw/op counts context switches of all threads.
func BenchmarkPairRegistration(b *testing.B) {
	for _, bg := range []string{"none", "timer", "parked"} {
		for _, size := range []int{256, 8192} {
			for _, registered := range []bool{false, true} {
				name := "bg=" + bg + "/size=" + strconv.Itoa(size) + "/registered=" + strconv.FormatBool(registered)
				b.Run(name, func(b *testing.B) { benchPair(b, bg, size, registered) })
			}
		}
	}
}

func benchPair(b *testing.B, bg string, size int, registered bool) {
	switch bg {
	case "timer":
		t := time.AfterFunc(time.Hour, func() {}) // in the timer heap at once
		defer t.Stop()
	case "parked":
		r, w, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() { var c [1]byte; _, _ = r.Read(c[:]); close(done) }()
		defer func() { w.Close(); <-done; r.Close() }()
	}
	q := newTestQueue(b, MessageSize(size))
	if registered {
		if _, err := q.register(); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	msg, buf := make([]byte, size), make([]byte, size)
	time.Sleep(10 * time.Millisecond) // let the other threads settle
	sw0, cpu0 := lzSwitches(), lzCPU()
	b.ResetTimer()
	for range b.N {
		if err := q.Send(ctx, msg, 0); err != nil {
			b.Fatal(err)
		}
		if _, _, err := q.ReceiveInto(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(lzSwitches()-sw0)/float64(b.N), "ctxsw/op")
	b.ReportMetric(float64(lzCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// lzCPU is the CPU time, user and system, of all this process's threads.
func lzCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// lzSwitches sums the voluntary and involuntary context switches of all
// this process's threads.
func lzSwitches() int {
	tasks, _ := os.ReadDir("/proc/self/task")
	n := 0
	for _, t := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + t.Name() + "/status")
		for _, key := range []string{"\nvoluntary_ctxt_switches:", "\nnonvoluntary_ctxt_switches:"} {
			s := string(b)
			if i := strings.Index(s, key); i >= 0 {
				s = s[i+len(key):]
				j := 0
				for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
					j++
				}
				k := j
				for k < len(s) && s[k] >= '0' && s[k] <= '9' {
					k++
				}
				v, _ := strconv.Atoi(s[j:k])
				n += v
			}
		}
	}
	return n
}
