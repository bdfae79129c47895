//go:build linux

package chanmq

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// This file is the soak test: several processes share one queue for a
// while, each with many goroutines sending and receiving directly and
// through pumps, cancelling at random and closing its Queue at random. At
// the end every message sent is accounted for exactly once.

// soakDuration is how long each process works: CHANMQ_SOAK (such as
// "60s") when set, else 3 s, or 1 s with -short.
func soakDuration(t testing.TB) time.Duration {
	if s := os.Getenv("CHANMQ_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("CHANMQ_SOAK=%q: %v", s, err)
		}
		return d
	}
	if testing.Short() {
		return time.Second
	}
	return 3 * time.Second
}

// soakStats is what one process reports.
type soakStats struct {
	Proc          uint64   `json:"proc"`
	Epochs        int      `json:"epochs"` // Queues opened and closed
	Sent          int64    `json:"sent"`
	Received      int64    `json:"received"`
	Undelivered   int64    `json:"undelivered"`
	Canceled      int64    `json:"canceled"` // calls ended by a context
	Damaged       int64    `json:"damaged"`
	Unexpected    []string `json:"unexpected,omitempty"`
	RSSMidKB      int64    `json:"rss_mid_kb"` // after a quarter of the run
	RSSEndKB      int64    `json:"rss_end_kb"`
	GoroutinesIn  int      `json:"goroutines_in"`
	GoroutinesOut int      `json:"goroutines_out"`
}

// soakLog appends message ids, by fate, to files in a directory, so that a
// long soak holds no growing list in memory.
type soakLog struct {
	mu    sync.Mutex
	files []*os.File
	w     [3]*bufio.Writer // sent, received, undelivered
}

const (
	soakSent = iota
	soakReceived
	soakUndelivered
)

var soakKinds = [3]string{"sent", "received", "undelivered"}

func newSoakLog(dir string, proc uint64) (*soakLog, error) {
	l := &soakLog{}
	for i, kind := range soakKinds {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.ids", kind, proc)))
		if err != nil {
			return nil, err
		}
		l.files = append(l.files, f)
		l.w[i] = bufio.NewWriter(f)
	}
	return l, nil
}

func (l *soakLog) add(kind int, id uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], id)
	l.mu.Lock()
	l.w[kind].Write(b[:])
	l.mu.Unlock()
}

func (l *soakLog) close() error {
	var errs []error
	for i, f := range l.files {
		errs = append(errs, l.w[i].Flush(), f.Close())
	}
	return errors.Join(errs...)
}

// readIDs reads every id of kind logged in dir, sorted.
func readIDs(t testing.TB, dir, kind string) []uint64 {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, kind+"-*.ids"))
	var ids []uint64
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+8 <= len(b); i += 8 {
			ids = append(ids, binary.LittleEndian.Uint64(b[i:]))
		}
	}
	slices.Sort(ids)
	return ids
}

// rssKB returns this process's resident set size in KiB.
func rssKB() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return -1
}

// soakWorker works on the queue called name for d; proc makes its message
// ids unique across processes.
func soakWorker(name string, proc uint64, d time.Duration, dir string) (*soakStats, error) {
	st := &soakStats{Proc: proc, GoroutinesIn: runtime.NumGoroutine()}
	log, err := newSoakLog(dir, proc)
	if err != nil {
		return nil, err
	}
	var seq atomic.Uint64
	newMsg := func() (uint64, Message) {
		id := proc<<48 | seq.Add(1)
		return id, Message{Data: encodeCheckedMsg(id, checkedMsgHeader+rand.IntN(1024-checkedMsgHeader+1)), Priority: uint(rand.IntN(MaxPriority + 1))}
	}
	var mu sync.Mutex // guards st's slices
	var sent, received, undelivered, canceled, damaged atomic.Int64
	recv := func(b []byte) {
		id, err := decodeCheckedMsg(b)
		if err != nil {
			damaged.Add(1)
			mu.Lock()
			st.Unexpected = append(st.Unexpected, err.Error())
			mu.Unlock()
			return
		}
		received.Add(1)
		log.add(soakReceived, id)
	}
	keepUndelivered := func(err error) bool {
		msgs := carriedMessages(err)
		if msgs == nil {
			return false
		}
		for _, m := range msgs {
			id, derr := decodeCheckedMsg(m.Data)
			if derr != nil {
				damaged.Add(1)
				continue
			}
			undelivered.Add(1)
			log.add(soakUndelivered, id)
		}
		return true
	}
	unexpected := func(err error) {
		if errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		mu.Lock()
		st.Unexpected = append(st.Unexpected, err.Error())
		mu.Unlock()
	}
	// opCtx gives a call a context: none, a short timeout, or the epoch's.
	opCtx := func(ctx context.Context) (context.Context, context.CancelFunc) {
		switch rand.IntN(4) {
		case 0:
			return context.WithTimeout(ctx, time.Duration(rand.IntN(3000))*time.Microsecond)
		default:
			return ctx, func() {}
		}
	}
	ended := func(err error) bool { return errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) }
	// stopped reports whether a direct call's error ends its loop: the end
	// of the epoch does, quietly; any other error does and is reported.
	stopped := func(err error) bool {
		if err != nil && !ended(err) {
			unexpected(err)
		}
		return err != nil
	}

	start := time.Now()
	deadline := start.Add(d)
	midDone := false
	for time.Now().Before(deadline) {
		if !midDone && time.Since(start) > d/4 {
			runtime.GC()
			st.RSSMidKB, midDone = rssKB(), true
		}
		st.Epochs++
		q, err := Open(name)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 2 { // direct senders
			wg.Go(func() {
				for {
					id, m := newMsg()
					var err error
					if rand.IntN(8) == 0 {
						err = q.TrySend(m.Data, m.Priority)
						if errors.Is(err, ErrFull) {
							continue
						}
					} else {
						c, stop := opCtx(ctx)
						err = q.Send(c, m.Data, m.Priority)
						stop()
						if errors.Is(err, context.DeadlineExceeded) {
							canceled.Add(1)
							continue
						}
					}
					if stopped(err) {
						return
					}
					sent.Add(1)
					log.add(soakSent, id)
				}
			})
		}
		for i := range 2 { // direct receivers: Receive, ReceiveInto, TryReceive
			wg.Go(func() {
				buf := make([]byte, q.MessageSize())
				for {
					var b []byte
					var err error
					switch {
					case rand.IntN(8) == 0:
						b, _, err = q.TryReceive()
						if errors.Is(err, ErrEmpty) {
							runtime.Gosched()
							continue
						}
					default:
						c, stop := opCtx(ctx)
						if i == 0 {
							b, _, err = q.Receive(c)
						} else {
							var n int
							n, _, err = q.ReceiveInto(c, buf)
							b = buf[:n]
						}
						stop()
						if errors.Is(err, context.DeadlineExceeded) {
							canceled.Add(1)
							continue
						}
					}
					if stopped(err) {
						return
					}
					recv(b)
				}
			})
		}
		// A send pump and a receive pump, each with a context that may end
		// before the Queue closes.
		pctx, pcancel := context.WithTimeout(ctx, time.Duration(rand.IntN(400))*time.Millisecond)
		s := q.MessageSender(pctx, Buffer(rand.IntN(4)))
		wg.Go(func() {
			for {
				id, m := newMsg()
				select {
				case s.C <- m:
					sent.Add(1)
					log.add(soakSent, id)
					continue
				case <-s.Done():
				}
				break
			}
			close(s.C)
			if err := s.Wait(); err != nil && !keepUndelivered(err) {
				unexpected(err)
			}
		})
		rctx, rcancel := context.WithTimeout(ctx, time.Duration(rand.IntN(400))*time.Millisecond)
		r := q.MessageReceiver(rctx, Buffer(rand.IntN(4)))
		wg.Go(func() {
			for m := range r.C {
				recv(m.Data)
			}
			if err := r.Err(); err != nil {
				unexpected(err)
			}
		})
		// Close after a random while, sometimes from two goroutines, with
		// or without cancelling first.
		life := time.Duration(20+rand.IntN(180)) * time.Millisecond
		if rest := time.Until(deadline); rest < life {
			life = max(rest, 0)
		}
		closers := 1 + rand.IntN(2)
		for range closers {
			wg.Go(func() {
				time.Sleep(life)
				if rand.IntN(3) == 0 {
					cancel()
				}
				if err := q.Close(); err != nil && !keepUndelivered(err) {
					unexpected(err)
				}
			})
		}
		wg.Wait()
		pcancel()
		rcancel()
		cancel()
	}
	if err := log.close(); err != nil {
		return nil, err
	}
	runtime.GC()
	st.RSSEndKB = rssKB()
	st.Sent, st.Received, st.Undelivered = sent.Load(), received.Load(), undelivered.Load()
	st.Canceled, st.Damaged = canceled.Load(), damaged.Load()
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st.GoroutinesOut = runtime.NumGoroutine()
		if st.GoroutinesOut <= st.GoroutinesIn || time.Now().After(end) {
			break
		}
	}
	return st, nil
}

func init() {
	registerChild("soak-peer", func() int {
		proc, _ := strconv.ParseUint(os.Getenv("CHANMQ_T_PROC"), 10, 64)
		d, _ := time.ParseDuration(os.Getenv("CHANMQ_T_DURATION"))
		st, err := soakWorker(os.Getenv("CHANMQ_T_NAME"), proc, d, os.Getenv("CHANMQ_T_DIR"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		b, _ := json.Marshal(st)
		os.Stdout.Write(b)
		return 0
	})
}

// TestSoakProcessesConserveMessages runs three processes (this one and two
// re-executed peers) on one queue for soakDuration, each with direct
// senders and receivers, a send pump and a receive pump, random timeouts,
// cancels and Closes, messages of 12 to 1024 bytes at random priorities.
// At the end the multiset of ids sent equals the multiset received (while
// running, or left in the kernel queue) plus those returned in
// *UndeliveredErrors; every message arrived intact; goroutines are back to
// their count at the start; RSS did not grow. It is serial, for the
// goroutine counts.
func TestSoakProcessesConserveMessages(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	d := soakDuration(t)
	q := newTestQueue(t, MaxMessages(10), MessageSize(1024))
	dir := t.TempDir()
	const peers = 2
	var cmds []*exec.Cmd
	var outs, errs []*bytes.Buffer
	for p := 1; p <= peers; p++ {
		cmd, stdout, stderr := childCommand(t, "soak-peer", "CHANMQ_T_NAME="+q.Name(), "CHANMQ_T_PROC="+strconv.Itoa(p),
			"CHANMQ_T_DURATION="+d.String(), "CHANMQ_T_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs, errs = append(cmds, cmd), append(outs, stdout), append(errs, stderr)
	}
	self, err := soakWorker(q.Name(), 0, d, dir)
	if err != nil {
		t.Fatal(err)
	}
	all := []*soakStats{self}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("soak peer %d: %v\n%s", i+1, err, errs[i])
		}
		var st soakStats
		if err := json.Unmarshal(outs[i].Bytes(), &st); err != nil {
			t.Fatalf("soak peer %d printed %q: %v", i+1, outs[i], err)
		}
		all = append(all, &st)
	}

	// What is left in the kernel queue counts as received.
	left, err := os.Create(filepath.Join(dir, "received-left.ids"))
	if err != nil {
		t.Fatal(err)
	}
	leftLog := &soakLog{files: []*os.File{left}}
	leftLog.w[soakReceived] = bufio.NewWriter(left)
	queued := 0
	for _, m := range drainQueue(t, q) {
		id, err := decodeCheckedMsg(m.Data)
		if err != nil {
			t.Error(err)
			continue
		}
		leftLog.add(soakReceived, id)
		queued++
	}
	if err := leftLog.w[soakReceived].Flush(); err != nil {
		t.Fatal(err)
	}
	if err := left.Close(); err != nil {
		t.Fatal(err)
	}

	sent := readIDs(t, dir, "sent")
	accounted := append(readIDs(t, dir, "received"), readIDs(t, dir, "undelivered")...)
	slices.Sort(accounted)
	if !slices.Equal(sent, accounted) {
		lost, extra := diffSorted(sent, accounted)
		t.Errorf("messages not conserved: %d sent, %d accounted for; %d lost (first %x), %d duplicated or never sent (first %x)",
			len(sent), len(accounted), len(lost), lost[:min(len(lost), 5)], len(extra), extra[:min(len(extra), 5)])
	}

	var total soakStats
	for _, st := range all {
		total.Sent += st.Sent
		total.Received += st.Received
		total.Undelivered += st.Undelivered
		total.Canceled += st.Canceled
		total.Epochs += st.Epochs
		if st.Damaged != 0 {
			t.Errorf("process %d received %d damaged messages", st.Proc, st.Damaged)
		}
		for _, u := range st.Unexpected {
			t.Errorf("process %d: unexpected error: %s", st.Proc, u)
		}
		if st.GoroutinesOut > st.GoroutinesIn {
			t.Errorf("process %d: %d goroutines at the end, %d at the start", st.Proc, st.GoroutinesOut, st.GoroutinesIn)
		}
		// Generous bound: a leak of even a few bytes per message would
		// exceed it over a long soak; GC noise over a short one does not.
		// Only the peers are judged: this process runs other tests too.
		if st.Proc != 0 && st.RSSMidKB > 0 && st.RSSEndKB > st.RSSMidKB*3/2+32<<10 {
			t.Errorf("process %d: RSS grew from %d KiB to %d KiB", st.Proc, st.RSSMidKB, st.RSSEndKB)
		}
		t.Logf("process %d: %d Queues opened and closed, sent %d, received %d, undelivered %d, calls ended by a deadline %d; RSS %d KiB at 1/4, %d KiB at the end; goroutines %d -> %d",
			st.Proc, st.Epochs, st.Sent, st.Received, st.Undelivered, st.Canceled, st.RSSMidKB, st.RSSEndKB, st.GoroutinesIn, st.GoroutinesOut)
	}
	t.Logf("total over %v x %d processes: %d Queues, %d messages sent (%.0f/s), %d received while running, %d left queued, %d undelivered (returned in errors)",
		d, 1+peers, total.Epochs, total.Sent, float64(total.Sent)/d.Seconds(), total.Received, queued, total.Undelivered)
}

// diffSorted returns the values of a missing from b and of b missing from
// a, both sorted, as multisets.
func diffSorted(a, b []uint64) (onlyA, onlyB []uint64) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			onlyA = append(onlyA, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			onlyB = append(onlyB, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return onlyA, onlyB
}
