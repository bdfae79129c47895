//go:build linux

// Command bench measures the bridge against the engine's own ceiling, in
// one run on one machine: nats.go's async JetStream publish rate for 256 B
// messages, the out direction with its journal (with and without fsync),
// nats.go pulling and acknowledging as the in direction does (its
// ceiling), the in direction, and the round trip queue -> JetStream ->
// queue. The server is embedded (127.0.0.1, random port, file storage in
// a temporary directory), so every figure shares the machine with it.
//
//	go run ./bench            # from the bridge module
//	go run ./bench -short     # every scenario once, small counts (CI)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	rtrace "runtime/trace"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chanmq/chanmq"
	mqbridge "github.com/chanmq/chanmq/bridge"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	count  = flag.Int("n", 100000, "messages per run")
	fsyncN = flag.Int("fsync-n", 10000, "messages per run with -fsync (each waits for the disk)")
	reps   = flag.Int("reps", 3, "runs per scenario (the median is reported)")
	size   = flag.Int("size", 256, "message bytes")
	window = flag.Int("window", mqbridge.DefaultWindow, "publish window (the out bridge's, and nats.go's max pending for the ceiling)")
	qmax   = flag.Int("qmax", 10, "queue capacity in messages (10 is Linux's default fs.mqueue.msg_max; more needs CAP_SYS_RESOURCE or a raised sysctl)")
	short  = flag.Bool("short", false, "one small run per scenario (smoke test)")
	only   = flag.String("only", "", "run only this scenario ("+scenarioKeys()+") and the ceiling")
	cpuOut = flag.String("cpuprofile", "", "write a CPU profile of the whole run to `file`")
	trace  = flag.String("trace", "", "write an execution trace of the whole run to `file`")
)

func main() {
	flag.Parse()
	if *short {
		*count, *fsyncN, *reps = 3000, 300, 1
	}
	if *cpuOut != "" {
		f, err := os.Create(*cpuOut)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	if *trace != "" {
		f, err := os.Create(*trace)
		check(err)
		check(rtrace.Start(f))
		defer rtrace.Stop()
	}
	dir, err := os.MkdirTemp("", "chanmq-bridge-bench-")
	check(err)
	defer os.RemoveAll(dir)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: filepath.Join(dir, "store"), NoSigs: true, NoLog: true})
	check(err)
	srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(20 * time.Second) {
		log.Fatal("server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1))
	check(err)
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(*window))
	check(err)

	b := &bench{nc: nc, js: js, dir: dir, cpu: map[string]float64{}}
	run := scenarios[1:]
	if *only != "" {
		i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.key == *only })
		if i < 0 {
			log.Fatalf("-only %s: no such scenario", *only)
		}
		run = scenarios[i : i+1]
	}
	fmt.Printf("# %d messages of %d B per run (%d with fsync), median of %d; server embedded, file storage\n", *count, *size, *fsyncN, *reps)
	ceiling := b.median(scenarios[0])
	rates := map[string]float64{"ceiling": ceiling}
	for _, s := range run {
		rates[s.key] = b.median(s)
	}
	if *only != "" {
		b.figure(*only, rates[*only], ceiling)
		return
	}

	fmt.Println()
	fmt.Println("| scenario | msg/s | ceiling ÷ scenario | ceiling with IDs ÷ scenario | bridge-like ceiling ÷ scenario | µs CPU/msg (whole process) |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, s := range scenarios {
		r := rates[s.key]
		fmt.Printf("| %s | %.0f | %.2f× | %.2f× | %.2f× | %.2f |\n", s.title, r, ceiling/r, rates["ceiling_msgid"]/r, rates["ceiling_bridge"]/r, b.cpu[s.key])
	}
	fmt.Printf("\nin against the consume-and-ack ceiling: ceiling ÷ in = %.2f×\n\n", rates["ceiling_consume"]/rates["in"])
	for _, s := range scenarios {
		b.figure(s.key, rates[s.key], ceiling)
	}
}

// A scenario is one shape of run the bench measures.
type scenario struct {
	key   string // in -only and the machine-readable lines
	title string // in the table
	fsync bool   // runs -fsync-n messages instead of -n
	run   func(b *bench) func(n int) time.Duration
}

// scenarios are measured in this order; the first is the ceiling every
// other is compared with.
var scenarios = []scenario{
	{"ceiling", "nats.go PublishAsync, 256 B (engine ceiling)", false, func(b *bench) func(int) time.Duration { return b.ceiling(false) }},
	{"ceiling_msgid", "nats.go PublishAsync with Nats-Msg-Id", false, func(b *bench) func(int) time.Duration { return b.ceiling(true) }},
	{"ceiling_bridge", "nats.go PublishAsync as the bridge publishes (ID, expected stream, ack timeout)", false, (*bench).ceilingBridge},
	{"out", "out: queue -> JetStream, journal, no fsync", false, func(b *bench) func(int) time.Duration { return b.out(false) }},
	{"out_fsync", "out: queue -> JetStream, journal, fsync each message", true, func(b *bench) func(int) time.Duration { return b.out(true) }},
	{"ceiling_consume", "nats.go pulling and acking as the in bridge does (consume-and-ack ceiling)", false, (*bench).ceilingConsume},
	{"in", "in: JetStream -> queue", false, (*bench).in},
	{"roundtrip", "round trip: queue -> JetStream -> queue (one process, both bridges)", false, (*bench).roundTrip},
}

// scenarioKeys lists the scenarios' keys, for -only's help.
func scenarioKeys() string {
	keys := make([]string, len(scenarios))
	for i, s := range scenarios {
		keys[i] = s.key
	}
	return strings.Join(keys, ", ")
}

// figure prints the machine-readable line of a scenario.
func (b *bench) figure(key string, rate, ceiling float64) {
	fmt.Printf("bench=bridge scenario=%s size=%d msgs_per_s=%.0f ceiling_over_scenario=%.3f cpu_us_per_msg=%.2f\n", key, *size, rate, ceiling/rate, b.cpu[key])
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

type bench struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	dir string
	run int
	cpu map[string]float64 // µs of process CPU per message, by scenario (median)

	cpu0, lastCPU time.Duration // CPU time at the start of the timed run, and used by the last one
}

// median runs the scenario reps times and returns the median rate.
func (b *bench) median(s scenario) float64 {
	n := *count
	if s.fsync {
		n = *fsyncN
	}
	fn := s.run(b)
	var rates, cpus []float64
	for range *reps {
		d := fn(n)
		rates = append(rates, float64(n)/d.Seconds())
		cpus = append(cpus, float64(b.lastCPU.Nanoseconds())/1e3/float64(n))
	}
	slices.Sort(rates)
	slices.Sort(cpus)
	r := rates[len(rates)/2]
	b.cpu[s.key] = cpus[len(cpus)/2]
	fmt.Fprintf(os.Stderr, "%-14s %9.0f msg/s  (runs: %v)  %.2f µs CPU/msg (runs: %v)\n", s.key, r, joinFloats(rates, 0), b.cpu[s.key], joinFloats(cpus, 2))
	return r
}

// start marks the start of a timed run (wall clock and CPU).
func (b *bench) start() time.Time {
	b.cpu0 = cpuTime()
	return time.Now()
}

// stop ends the timed run started at t0 and returns its duration; the CPU
// it used goes to b.lastCPU.
func (b *bench) stop(t0 time.Time) time.Duration {
	d := time.Since(t0)
	b.lastCPU = cpuTime() - b.cpu0
	return d
}

// cpuTime is the CPU time (user and system) this process used so far: the
// server, the client and the bridge together, since all run in it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// joinFloats formats xs with prec decimals, separated by spaces.
func joinFloats(xs []float64, prec int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatFloat(x, 'f', prec, 64)
	}
	return strings.Join(s, " ")
}

// freshStream (re)creates a stream for one run and returns its name and
// subject.
func (b *bench) freshStream() (string, string) {
	b.run++
	name := fmt.Sprintf("BENCH%d", b.run)
	subj := fmt.Sprintf("bench.%d", b.run)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, Storage: jetstream.FileStorage})
	check(err)
	return name, subj
}

func (b *bench) dropStream(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = b.js.DeleteStream(ctx, name)
}

func (b *bench) queue() *chanmq.Queue {
	q, err := chanmq.CreateTemp("/chanmq-bridge-bench-", chanmq.MaxMessages(*qmax), chanmq.MessageSize(1024))
	check(err)
	return q
}

func closeQueue(q *chanmq.Queue) {
	_ = q.Close()
	_ = chanmq.Unlink(q.Name())
}

func (b *bench) payload() []byte {
	p := make([]byte, *size)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return p
}

// ceiling is nats.go's own async publish, the rate the bridge aims at.
func (b *bench) ceiling(withID bool) func(n int) time.Duration {
	return func(n int) time.Duration {
		name, subj := b.freshStream()
		defer b.dropStream(name)
		data := b.payload()
		prefix := fmt.Sprintf("bench-%d-", b.run)
		t0 := b.start()
		for i := range n {
			m := &nats.Msg{Subject: subj, Data: data}
			if withID {
				m.Header = nats.Header{jetstream.MsgIDHeader: []string{prefix + strconv.Itoa(i)}}
			}
			if _, err := b.js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
				log.Fatalf("publish: %v", err)
			}
		}
		<-b.js.PublishAsyncComplete()
		return b.stop(t0)
	}
}

// ceilingBridge is nats.go's async publish of what the out bridge
// publishes, with its client settings: a message ID and the expected
// stream in the headers, an acknowledgement timeout (a timer per publish
// in nats.go) and twice the window as max pending.
func (b *bench) ceilingBridge() func(n int) time.Duration {
	return func(n int) time.Duration {
		name, subj := b.freshStream()
		defer b.dropStream(name)
		js, err := jetstream.New(b.nc, jetstream.WithPublishAsyncMaxPending(2*(*window)),
			jetstream.WithPublishAsyncTimeout(mqbridge.DefaultAckTimeout))
		check(err)
		defer js.CleanupPublisher()
		data := b.payload()
		prefix := fmt.Sprintf("bench-%d-", b.run)
		stream := []string{name}
		t0 := b.start()
		for i := range n {
			m := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{prefix + strconv.Itoa(i)}, jetstream.ExpectedStreamHeader: stream}}
			if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
				log.Fatalf("publish: %v", err)
			}
		}
		<-js.PublishAsyncComplete()
		return b.stop(t0)
	}
}

// waitStored waits until stream holds n messages.
func (b *bench) waitStored(name string, n int) {
	s, err := b.js.Stream(context.Background(), name)
	check(err)
	for {
		info, err := s.Info(context.Background())
		check(err)
		if info.State.Msgs >= uint64(n) {
			return
		}
		// Each poll is a JetStream API request the server answers: poll
		// gently (10 ms is under 1 % of a 100k-message run).
		time.Sleep(10 * time.Millisecond)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// out feeds n messages into a queue and times until the stream holds them.
func (b *bench) out(fsync bool) func(n int) time.Duration {
	return func(n int) time.Duration {
		name, subj := b.freshStream()
		defer b.dropStream(name)
		q := b.queue()
		defer closeQueue(q)
		ctx, cancel := context.WithCancel(context.Background())
		o := &mqbridge.Out{Queue: q, Subject: subj, Stream: name, Journal: filepath.Join(b.dir, fmt.Sprintf("out%d", b.run)),
			Fsync: fsync, Window: *window, Log: quiet}
		done := make(chan error, 1)
		go func() { done <- o.Run(ctx, b.nc) }()
		data := b.payload()
		t0 := b.start()
		feed(ctx, q, data, n)
		b.waitStored(name, n)
		d := b.stop(t0)
		cancel()
		check(<-done)
		return d
	}
}

// feed sends n copies of data into q, from a goroutine of its own that
// gives up when ctx ends.
func feed(ctx context.Context, q *chanmq.Queue, data []byte, n int) {
	go func() {
		for range n {
			if err := q.Send(ctx, data, 0); err != nil {
				return
			}
		}
	}()
}

// fill publishes n messages to subj and waits for them to be stored.
func (b *bench) fill(subj string, n int) {
	data := b.payload()
	for range n {
		_, err := b.js.PublishAsync(subj, data, jetstream.WithStallWait(time.Minute))
		check(err)
	}
	<-b.js.PublishAsyncComplete()
}

// drain receives n messages from q.
func drain(q *chanmq.Queue, n int) {
	buf := make([]byte, q.MessageSize())
	for range n {
		if _, _, err := q.ReceiveInto(context.Background(), buf); err != nil {
			log.Fatal(err)
		}
	}
}

// in times moving n stored messages into a queue that a reader drains.
func (b *bench) in() func(n int) time.Duration {
	return func(n int) time.Duration {
		name, subj := b.freshStream()
		defer b.dropStream(name)
		b.fill(subj, n)
		q := b.queue()
		defer closeQueue(q)
		ctx, cancel := context.WithCancel(context.Background())
		i := &mqbridge.In{Queue: q, Stream: name, Durable: "bench", CreateConsumer: true,
			Journal: filepath.Join(b.dir, fmt.Sprintf("in%d", b.run)), Log: quiet}
		done := make(chan error, 1)
		t0 := b.start()
		go func() { done <- i.Run(ctx, b.nc) }()
		drain(q, n)
		d := b.stop(t0)
		cancel()
		check(<-done)
		return d
	}
}

// roundTrip times n messages from one queue, through both bridges, into
// another queue.
func (b *bench) roundTrip() func(n int) time.Duration {
	return func(n int) time.Duration {
		name, subj := b.freshStream()
		defer b.dropStream(name)
		src, dst := b.queue(), b.queue()
		defer closeQueue(src)
		defer closeQueue(dst)
		ctx, cancel := context.WithCancel(context.Background())
		o := &mqbridge.Out{Queue: src, Subject: subj, Stream: name, Journal: filepath.Join(b.dir, fmt.Sprintf("rto%d", b.run)), Window: *window, Log: quiet}
		i := &mqbridge.In{Queue: dst, Stream: name, Durable: "rt", CreateConsumer: true,
			Journal: filepath.Join(b.dir, fmt.Sprintf("rti%d", b.run)), Log: quiet}
		done := make(chan error, 1)
		go func() { done <- mqbridge.Run(ctx, b.nc, o, i) }()
		data := b.payload()
		t0 := b.start()
		feed(ctx, src, data, n)
		drain(dst, n)
		d := b.stop(t0)
		cancel()
		check(<-done)
		return d
	}
}
