//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chanmq/chanmq"
	"golang.org/x/sys/unix"
)

// This file is the child side: the bench binary re-executed with
// childEnv naming a role and argsEnv its arguments. Each role does one
// measurement and prints one "key=value ..." line on stdout.

const (
	childEnv = "CHANMQ_BENCH_CHILD"
	argsEnv  = "CHANMQ_BENCH_ARGS"
	// profileEnv (traceEnv), when set to a directory, makes each child
	// write a CPU profile (an execution trace) there, named after its
	// role, arguments and process id.
	profileEnv = "CHANMQ_BENCH_CPUPROFILE"
	traceEnv   = "CHANMQ_BENCH_TRACE"
)

// childMain runs the role named in the environment, if any, and reports
// whether it did; the caller then exits with code.
func childMain() (code int, ok bool) {
	role := os.Getenv(childEnv)
	if role == "" {
		return 0, false
	}
	args := strings.Fields(os.Getenv(argsEnv))
	name := fmt.Sprintf("%s-%s-%d", role, strings.ReplaceAll(strings.Join(args, "_"), "/", ""), os.Getpid())
	if dir := os.Getenv(profileEnv); dir != "" {
		f, err := os.Create(filepath.Join(dir, name+".pprof"))
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
		}
	}
	if dir := os.Getenv(traceEnv); dir != "" {
		f, err := os.Create(filepath.Join(dir, name+".trace"))
		if err == nil && trace.Start(f) == nil {
			defer func() { trace.Stop(); _ = f.Close() }()
		}
	}
	if err := runRole(role, args, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench child %s %v: %v\n", role, args, err)
		return 1, true
	}
	return 0, true
}

func runRole(role string, args []string, out io.Writer) error {
	a := argList(args)
	switch role {
	case "pair":
		return rolePair(out, a.str(0), a.int(1), a.int(2), a.str(3))
	case "send":
		if kind, ok := typedKind(a.str(0)); ok {
			return typedSend(kind, a.int(1), a.int(2), a.str(3))
		}
		return roleSend(a.str(0), a.int(1), a.int(2), a.str(3))
	case "recv":
		if kind, ok := typedKind(a.str(0)); ok {
			return typedRecv(out, kind, a.int(1), a.int(2), a.str(3))
		}
		return roleRecv(out, a.str(0), a.int(1), a.int(2), a.str(3))
	case "ping":
		return rolePing(out, a.str(0), a.int(1), a.int(2), a.int(3), a.str(4), a.str(5))
	case "pong":
		return rolePong(out, a.str(0), a.int(1), a.int(2), a.str(3), a.str(4))
	case "cancel":
		return roleCancel(out, a.str(0), a.int(1))
	case "idle":
		return roleIdle(out, a.int(0), a.int(1), time.Duration(a.int(2))*time.Millisecond)
	case "memory":
		return roleMemory(out, a.int(0))
	}
	return fmt.Errorf("unknown role %q", role)
}

type argList []string

func (a argList) str(i int) string {
	if i < len(a) {
		return a[i]
	}
	return ""
}

func (a argList) int(i int) int {
	n, _ := strconv.Atoi(a.str(i))
	return n
}

// endpoint is one side of a message transport, as a Go user would write it.
type endpoint interface {
	send(msg []byte) error
	recv(buf []byte) (int, error) // buf is the message size
	close() error
}

// mqEnd is a chanmq Queue used with Send and ReceiveInto, under a
// cancellable context as real code would pass.
type mqEnd struct {
	q   *chanmq.Queue
	ctx context.Context
	buf []byte
}

func openMQ(ctx context.Context, name string) (*mqEnd, error) {
	q, err := chanmq.Open(name)
	if err != nil {
		return nil, err
	}
	return &mqEnd{q: q, ctx: ctx, buf: make([]byte, q.MessageSize())}, nil
}

func (e *mqEnd) send(msg []byte) error { return e.q.Send(e.ctx, msg, 0) }

func (e *mqEnd) recv(buf []byte) (int, error) {
	n, _, err := e.q.ReceiveInto(e.ctx, e.buf)
	copy(buf, e.buf[:n])
	return n, err
}

func (e *mqEnd) close() error { return e.q.Close() }

// pumpEnd is a chanmq Queue used through the channel adapter: a Receiver
// to read, a Sender to write, with the default Buffer(0) (impl pumps) or
// Buffer(16) (impl pumps-buf16, stream only); impl pumps-gmp1 is pumps in
// processes run with GOMAXPROCS=1.
type pumpEnd struct {
	q      *chanmq.Queue
	r      *chanmq.Receiver
	s      *chanmq.Sender
	cancel context.CancelFunc
}

func openPumps(ctx context.Context, name string, reads, writes bool, buffer int) (*pumpEnd, error) {
	q, err := chanmq.Open(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &pumpEnd{q: q, cancel: cancel}
	if reads {
		e.r = q.Receiver(ctx, chanmq.Buffer(buffer))
	}
	if writes {
		e.s = q.Sender(ctx, chanmq.Buffer(buffer))
	}
	return e, nil
}

// send hands msg to the pump. The benchmark never modifies msg, so it may
// send the same slice again.
func (e *pumpEnd) send(msg []byte) error {
	select {
	case e.s.C <- msg:
		return nil
	case <-e.s.Done():
		return e.s.Wait()
	}
}

func (e *pumpEnd) recv(buf []byte) (int, error) {
	m, ok := <-e.r.C
	if !ok {
		if err := e.r.Err(); err != nil {
			return 0, err
		}
		return 0, errors.New("receive pump stopped")
	}
	return copy(buf, m), nil
}

func (e *pumpEnd) close() error {
	var errs []error
	if e.s != nil {
		close(e.s.C)
		errs = append(errs, e.s.Wait())
	}
	e.cancel()
	if e.r != nil {
		for range e.r.C {
		}
		errs = append(errs, e.r.Err())
	}
	errs = append(errs, e.q.Close())
	return errors.Join(errs...)
}

// fileEnd is a pipe (stream, so each message is read in full) or a
// SOCK_SEQPACKET socket (one read, one message), both on the netpoller.
type fileEnd struct {
	r, w   io.ReadWriter
	stream bool
	closer []io.Closer
}

func (e *fileEnd) send(msg []byte) error { _, err := e.w.Write(msg); return err }

func (e *fileEnd) recv(buf []byte) (int, error) {
	if e.stream {
		return io.ReadFull(e.r, buf)
	}
	return e.r.Read(buf)
}

func (e *fileEnd) close() error {
	var errs []error
	for _, c := range e.closer {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// inheritedFile wraps descriptor fd from the parent, nonblocking so that
// it waits on the netpoller as os.Pipe's files do.
func inheritedFile(fd int, name string) (*os.File, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// peerEnd opens this process's end of impl. For pipe, fd 3 is the file it
// writes to (or reads from, with one pipe) and fd 4 the other; seqpacket
// is one socket at fd 3.
func peerEnd(ctx context.Context, impl, name string, reads, writes bool) (endpoint, error) {
	switch impl {
	case "chanmq":
		return openMQ(ctx, name)
	case "pumps", "pumps-gmp1":
		return openPumps(ctx, name, reads, writes, 0)
	case "pumps-buf16":
		return openPumps(ctx, name, reads, writes, 16)
	case "pipe":
		e := &fileEnd{stream: true}
		fd := 3
		if reads {
			f, err := inheritedFile(fd, "pipe-r")
			if err != nil {
				return nil, err
			}
			e.r, e.closer, fd = f, append(e.closer, f), fd+1
		}
		if writes {
			f, err := inheritedFile(fd, "pipe-w")
			if err != nil {
				return nil, err
			}
			e.w, e.closer = f, append(e.closer, f)
		}
		return e, nil
	case "seqpacket":
		f := os.NewFile(3, "seqpacket")
		c, err := net.FileConn(f) // dups the descriptor, nonblocking
		_ = f.Close()
		if err != nil {
			return nil, err
		}
		return &fileEnd{r: c, w: c, closer: []io.Closer{c}}, nil
	}
	return nil, fmt.Errorf("unknown impl %q", impl)
}

// rolePair times n Send+ReceiveInto pairs (or write+read pairs) in one
// goroutine on one queue (or pipe, or socket pair).
func rolePair(out io.Writer, impl string, size, n int, name string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var s, r endpoint
	switch impl {
	case "chanmq":
		e, err := openMQ(ctx, name)
		if err != nil {
			return err
		}
		s, r = e, e
	case "pipe":
		pr, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		e := &fileEnd{r: pr, w: pw, stream: true, closer: []io.Closer{pr, pw}}
		s, r = e, e
	case "seqpacket":
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		var ends [2]endpoint
		for i, fd := range fds {
			f := os.NewFile(uintptr(fd), "seqpacket")
			c, err := net.FileConn(f)
			_ = f.Close()
			if err != nil {
				return err
			}
			ends[i] = &fileEnd{r: c, w: c, closer: []io.Closer{c}}
		}
		s, r = ends[0], ends[1]
		defer ends[1].close()
	default:
		return fmt.Errorf("unknown impl %q", impl)
	}
	defer s.close()
	msg, buf := make([]byte, size), make([]byte, size)
	for range n / 10 { // warm up
		if err := s.send(msg); err != nil {
			return err
		}
		if _, err := r.recv(buf); err != nil {
			return err
		}
	}
	t0 := time.Now()
	for range n {
		if err := s.send(msg); err != nil {
			return err
		}
		if _, err := r.recv(buf); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "ns_per_op=%.1f\n", float64(time.Since(t0).Nanoseconds())/float64(n))
	return nil
}

func roleSend(impl string, size, n int, name string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, err := peerEnd(ctx, impl, name, false, true)
	if err != nil {
		return err
	}
	defer e.close()
	msg := make([]byte, size)
	for range n {
		if err := e.send(msg); err != nil {
			return err
		}
	}
	return nil
}

// roleRecv receives n messages and times the first to the last, so that
// process start-up is not counted.
func roleRecv(out io.Writer, impl string, size, n int, name string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, err := peerEnd(ctx, impl, name, true, false)
	if err != nil {
		return err
	}
	defer e.close()
	buf := make([]byte, size)
	var t0 time.Time
	for i := range n {
		got, err := e.recv(buf)
		if err != nil {
			return err
		}
		if got != size {
			return fmt.Errorf("message %d: %d bytes, want %d", i, got, size)
		}
		if i == 0 {
			t0 = time.Now()
		}
	}
	fmt.Fprintf(out, "msgs=%d elapsed_ns=%d\n", n-1, time.Since(t0).Nanoseconds())
	return nil
}

// rolePing sends on A and waits for the echo on B, warm+n times, and
// prints the round-trip percentiles of the last n.
func rolePing(out io.Writer, impl string, size, n, warm int, nameA, nameB string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b, err := pingEnds(ctx, impl, nameA, nameB, true)
	if err != nil {
		return err
	}
	defer closeEnds(a, b)
	msg, buf := make([]byte, size), make([]byte, size)
	lat := make([]time.Duration, 0, n)
	for i := range warm + n {
		t0 := time.Now()
		if err := a.send(msg); err != nil {
			return err
		}
		if _, err := b.recv(buf); err != nil {
			return err
		}
		if i >= warm {
			lat = append(lat, time.Since(t0))
		}
	}
	p50, p99 := percentiles(lat)
	fmt.Fprintf(out, "p50_ns=%d p99_ns=%d\n", p50.Nanoseconds(), p99.Nanoseconds())
	return nil
}

// rolePong echoes k messages from A to B.
func rolePong(out io.Writer, impl string, size, k int, nameA, nameB string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b, err := pingEnds(ctx, impl, nameA, nameB, false)
	if err != nil {
		return err
	}
	defer closeEnds(a, b)
	buf := make([]byte, size)
	for range k {
		got, err := a.recv(buf)
		if err != nil {
			return err
		}
		if err := b.send(buf[:got]); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "echoed=%d\n", k)
	return nil
}

// pingEnds returns the ends that ping writes to (a) and reads from (b)
// when ping is true, and pong's reading (a) and writing (b) ends if not.
// Pipes: fd 3 and 4 are ping's write end of pipe A and read end of pipe B,
// or pong's read end of A and write end of B.
func pingEnds(ctx context.Context, impl, nameA, nameB string, ping bool) (a, b endpoint, err error) {
	switch impl {
	case "chanmq":
		if a, err = openMQ(ctx, nameA); err != nil {
			return nil, nil, err
		}
		if b, err = openMQ(ctx, nameB); err != nil {
			_ = a.close()
			return nil, nil, err
		}
		return a, b, nil
	case "pumps":
		if a, err = openPumps(ctx, nameA, !ping, ping, 0); err != nil {
			return nil, nil, err
		}
		if b, err = openPumps(ctx, nameB, ping, !ping, 0); err != nil {
			_ = a.close()
			return nil, nil, err
		}
		return a, b, nil
	case "pipe":
		e, err := peerEnd(ctx, impl, "", true, true)
		if err != nil {
			return nil, nil, err
		}
		fe := e.(*fileEnd)
		if ping { // fd 3 writes A, fd 4 reads B: peerEnd took 3 as r, 4 as w
			fe.r, fe.w = fe.w, fe.r
		}
		return fe, nopClose{fe}, nil
	case "seqpacket":
		e, err := peerEnd(ctx, impl, "", true, true)
		if err != nil {
			return nil, nil, err
		}
		return e, nopClose{e}, nil
	}
	return nil, nil, fmt.Errorf("unknown impl %q", impl)
}

type nopClose struct{ endpoint }

func (nopClose) close() error { return nil }

func closeEnds(es ...endpoint) {
	for _, e := range es {
		_ = e.close()
	}
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

// aLongTimeAgo is a past deadline, to wake a pipe reader on cancel.
var aLongTimeAgo = time.Unix(1, 0)

// roleCancel times, n times, from cancel() to the return of a Receive
// blocked on an empty queue (impl chanmq), or of a pipe Read woken by a
// past deadline that context.AfterFunc sets (impl pipe, what a Go user
// would write).
func roleCancel(out io.Writer, impl string, n int) error {
	var block func(ctx context.Context) error
	switch impl {
	case "chanmq":
		q, err := chanmq.CreateTemp(queuePrefix, chanmq.MaxMessages(1), chanmq.MessageSize(64))
		if err != nil {
			return err
		}
		defer func() { _ = q.Close(); _ = chanmq.Unlink(q.Name()) }()
		buf := make([]byte, q.MessageSize())
		block = func(ctx context.Context) error {
			_, _, err := q.ReceiveInto(ctx, buf)
			return err
		}
	case "pipe":
		pr, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		defer func() { _ = pr.Close(); _ = pw.Close() }()
		buf := make([]byte, 64)
		block = func(ctx context.Context) error {
			stop := context.AfterFunc(ctx, func() { _ = pr.SetReadDeadline(aLongTimeAgo) })
			defer stop()
			_, err := pr.Read(buf)
			_ = pr.SetReadDeadline(time.Time{})
			return err
		}
	default:
		return fmt.Errorf("unknown impl %q", impl)
	}
	lat := make([]time.Duration, 0, n)
	done := make(chan time.Time)
	for range n {
		ctx, cancel := context.WithCancel(context.Background())
		var blockErr error
		go func() {
			blockErr = block(ctx)
			done <- time.Now()
		}()
		time.Sleep(300 * time.Microsecond) // let it park
		t0 := time.Now()
		cancel()
		t1 := <-done
		if blockErr == nil {
			return errors.New("the blocked call returned without error")
		}
		lat = append(lat, t1.Sub(t0))
	}
	p50, p99 := percentiles(lat)
	fmt.Fprintf(out, "p50_ns=%d p99_ns=%d\n", p50.Nanoseconds(), p99.Nanoseconds())
	return nil
}

// procStatus returns the Threads and VmRSS (KiB) lines of /proc/self/status.
func procStatus() (threads, rssKiB int) {
	data, _ := os.ReadFile("/proc/self/status")
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Threads:":
			threads, _ = strconv.Atoi(f[1])
		case "VmRSS:":
			rssKiB, _ = strconv.Atoi(f[1])
		}
	}
	return threads, rssKiB
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// roleIdle blocks per goroutines in Receive on each of nq queues, then
// reports OS threads, RSS and the CPU burnt while they all wait for idle.
func roleIdle(out io.Writer, nq, per int, idle time.Duration) error {
	queues := make([]*chanmq.Queue, 0, nq)
	defer func() {
		for _, q := range queues {
			_ = q.Close()
			_ = chanmq.Unlink(q.Name())
		}
	}()
	for range nq {
		q, err := chanmq.CreateTemp(queuePrefix, chanmq.MaxMessages(1), chanmq.MessageSize(16))
		if err != nil {
			return fmt.Errorf("queue %d of %d: %w", len(queues)+1, nq, err)
		}
		queues = append(queues, q)
	}
	runtime.GC()
	threads0, rss0 := procStatus()
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, nq*per)
	for _, q := range queues {
		for range per {
			wg.Go(func() {
				buf := make([]byte, 16)
				if _, _, err := q.ReceiveInto(ctx, buf); !errors.Is(err, context.Canceled) {
					errs <- fmt.Errorf("blocked Receive returned %v", err)
				}
			})
		}
	}
	for runtime.NumGoroutine() < base+nq*per {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let every one park
	cpu0, t0 := cpuTime(), time.Now()
	time.Sleep(idle)
	cpuPct := 100 * float64(cpuTime()-cpu0) / float64(time.Since(t0))
	threads, rss := procStatus()
	cancel()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Fprintf(out, "threads_before=%d threads=%d rss_before_kib=%d rss_kib=%d idle_cpu_pct=%.2f\n",
		threads0, threads, rss0, rss, cpuPct)
	return nil
}

// roleMemory reports RSS before and after pairs Send+Receive pairs, with
// the allocating Receive and a cancellable context.
func roleMemory(out io.Writer, pairs int) error {
	q, err := chanmq.CreateTemp(queuePrefix, chanmq.MaxMessages(10), chanmq.MessageSize(256))
	if err != nil {
		return err
	}
	defer func() { _ = q.Close(); _ = chanmq.Unlink(q.Name()) }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msg := make([]byte, 256)
	loop := func(n int) error {
		for range n {
			if err := q.Send(ctx, msg, 0); err != nil {
				return err
			}
			got, _, err := q.Receive(ctx)
			if err != nil {
				return err
			}
			if len(got) != len(msg) {
				return fmt.Errorf("received %d bytes, want %d", len(got), len(msg))
			}
		}
		return nil
	}
	// Warm up until the heap has gone through a few collections (the
	// garbage collector's first target is 4 MiB): RSS then shows growth per
	// message, not the heap reaching its steady size.
	if err := loop(max(100000, pairs/10)); err != nil {
		return err
	}
	_, rss0 := procStatus()
	if err := loop(pairs); err != nil {
		return err
	}
	_, rss := procStatus()
	fmt.Fprintf(out, "pairs=%d rss_before_kib=%d rss_after_kib=%d\n", pairs, rss0, rss)
	return nil
}
