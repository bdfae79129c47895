//go:build linux

// Command bench measures chanmq against a C reference (glibc mq_send and
// mq_receive, built with the system cc at run time) and against what a Go
// user would otherwise pick (os.Pipe, a SOCK_SEQPACKET socket pair), all
// in one run, so that ratios compare figures taken under the same noise.
//
//	go run ./bench          # the full run, several minutes (-only to pick scenarios)
//	go run ./bench -short   # every scenario in a few seconds
//
// It prints a table per scenario and then one machine-readable line per
// figure, such as
//
//	bench=stream size=256 impl=chanmq msgs_per_s=312000 mb_per_s=79.9 spread_pct=6.1 ratio_vs_c=0.93
//
// Throughput ratios are impl/C (higher is better); latency ratios are
// impl/C (lower is better). Each figure is the median of -reps runs and
// spread_pct is (max-min)/median.
//
// Two-process scenarios re-execute this binary as the peer; the C program
// has its own peer modes. Queues are named with the prefix
// "/chanmq-test-bench-" and unlinked at the end.
//
// To see where a peer's time goes, set CHANMQ_BENCH_CPUPROFILE or
// CHANMQ_BENCH_TRACE to a directory: every peer process writes a CPU
// profile or an execution trace there, named after its role and arguments
// (for `go tool pprof` and `go tool trace`).
package main

import (
	"bytes"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chanmq/chanmq"
	"golang.org/x/sys/unix"
)

//go:embed cref/ref.c
var refC []byte

// queuePrefix names every queue the benchmark creates; the package tests'
// sweep of "/chanmq-test-" removes any a crashed run leaves behind.
const queuePrefix = "/chanmq-test-bench-"

func main() {
	if code, ok := childMain(); ok {
		os.Exit(code)
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// params are the sizes of one run.
type params struct {
	short     bool
	reps      int
	pairN     int
	streamN   int
	pingN     int
	pingWarm  int
	cancelN   int
	memPairs  int
	idle      []idleCase
	idleFor   time.Duration
	sizes     []int
	typed     []int // sizes of the typed stream (a record needs about 60 bytes)
	pingSize  int
	scenarios map[string]bool
}

type idleCase struct{ queues, per int }

func newParams(short bool, reps int, only string) params {
	p := params{
		reps: 5, pairN: 100000, streamN: 100000, pingN: 10000, pingWarm: 1000,
		cancelN: 1000, memPairs: 1000000, idleFor: time.Second,
		// 100 queues keep well under queues_max (256, shared by everyone
		// on the machine); 10,000 goroutines is 100 per queue.
		idle:  []idleCase{{100, 10}, {100, 100}},
		sizes: []int{16, 256, 4096, 8192}, typed: []int{256, 8192}, pingSize: 64,
	}
	if short {
		p = params{
			short: true, reps: 1, pairN: 2000, streamN: 2000, pingN: 300, pingWarm: 50,
			cancelN: 50, memPairs: 20000, idleFor: 100 * time.Millisecond,
			// The race detector allows 8128 goroutines, so -short stays at 1000.
			idle:  []idleCase{{20, 50}},
			sizes: []int{16, 256, 4096, 8192}, typed: []int{256}, pingSize: 64,
		}
	}
	if reps > 0 {
		p.reps = reps
	}
	p.scenarios = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		if s != "" {
			p.scenarios[s] = true
		}
	}
	return p
}

func (p params) want(scenario string) bool {
	return len(p.scenarios) == 0 || p.scenarios[scenario]
}

// runner runs one benchmark session and collects its results.
type runner struct {
	p       params
	self    string   // this binary, re-executed as the Go peer
	selfArg []string // extra arguments for it (a test binary's -test.run)
	ref     string   // the C reference binary, "" if it could not be built
	taskset string   // path of taskset, "" if missing
	out     io.Writer
	log     io.Writer
	results []*result
}

// result is one figure: a scenario, its parameters and impl, and the
// samples (one map of values per repetition).
type result struct {
	bench, impl string
	labels      string // "size=256" or "size=64 pin=cpu0"
	samples     []map[string]float64
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	short := fs.Bool("short", false, "run every scenario in a few seconds")
	reps := fs.Int("reps", 0, "repetitions of each measurement (default 5, 1 with -short)")
	only := fs.String("only", "", "comma-separated scenarios to run (pair,stream,pingpong,cancel,idle,memory,pumps,typed)")
	cc := fs.String("cc", "cc", "C compiler for the reference program")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	r := &runner{p: newParams(*short, *reps, *only), self: self, out: out, log: os.Stderr}
	if strings.HasSuffix(self, ".test") {
		r.selfArg = []string{"-test.run=^$"}
	}
	tmp, err := os.MkdirTemp("", "chanmq-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if r.ref, err = buildRef(*cc, tmp); err != nil {
		fmt.Fprintf(out, "# no C reference (%v): measuring chanmq alone, no ratios\n", err)
	}
	if r.taskset, err = exec.LookPath("taskset"); err != nil {
		fmt.Fprintf(out, "# no taskset: pinned ping-pong skipped\n")
	}
	fmt.Fprintf(out, "# chanmq bench: %s/%s, %d CPUs, %s, reps=%d, short=%v\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), r.p.reps, r.p.short)
	steps := []struct {
		name string
		fn   func() error
	}{
		{"pair", r.pair}, {"stream", r.stream}, {"pingpong", r.pingpong},
		{"cancel", r.cancel}, {"idle", r.idle}, {"memory", r.memory},
	}
	for _, s := range steps {
		// The pumps and typed streams are part of the stream step.
		if !r.p.want(s.name) && (s.name != "stream" || !r.p.want("pumps") && !r.p.want("typed")) {
			continue
		}
		t0 := time.Now()
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Fprintf(r.log, "# %s done in %v\n", s.name, time.Since(t0).Round(time.Millisecond))
	}
	r.report()
	return nil
}

// buildRef compiles ref.c into dir and returns the binary's path.
func buildRef(cc, dir string) (string, error) {
	path, err := exec.LookPath(cc)
	if err != nil {
		return "", fmt.Errorf("no C compiler: %w", err)
	}
	src, bin := filepath.Join(dir, "ref.c"), filepath.Join(dir, "ref")
	if err := os.WriteFile(src, refC, 0o600); err != nil {
		return "", err
	}
	cmd := exec.Command(path, "-O2", "-o", bin, src, "-lrt")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %v: %s", cc, err, bytes.TrimSpace(msg))
	}
	return bin, nil
}

// peer is a process to start: argv, environment additions and inherited
// files (fd 3 onwards).
type peer struct {
	argv  []string
	env   []string
	files []*os.File
}

// goPeer re-executes this binary as role with args.
func (r *runner) goPeer(role string, args ...any) peer {
	return peer{
		argv: append([]string{r.self}, r.selfArg...),
		env:  []string{childEnv + "=" + role, argsEnv + "=" + strings.Join(strs(args), " ")},
	}
}

func strs(args []any) []string {
	var s []string
	for _, a := range args {
		s = append(s, fmt.Sprint(a))
	}
	return s
}

// cPeer runs the C reference with args.
func (r *runner) cPeer(args ...any) peer {
	return peer{argv: append([]string{r.ref}, strs(args)...)}
}

// running is a started peer.
type running struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

func (r *runner) start(p peer, pin bool) (*running, error) {
	argv := p.argv
	if pin {
		argv = append([]string{r.taskset, "-c", "0"}, argv...)
	}
	rn := &running{cmd: exec.Command(argv[0], argv[1:]...)}
	// A race-enabled peer (the -race test) would sleep a second at exit.
	rn.cmd.Env = append(append(os.Environ(), "GORACE=atexit_sleep_ms=0"), p.env...)
	rn.cmd.ExtraFiles = p.files
	rn.cmd.Stdout, rn.cmd.Stderr = &rn.stdout, &rn.stderr
	if err := rn.cmd.Start(); err != nil {
		return nil, err
	}
	return rn, nil
}

// wait waits for the peer and parses the "key=value" pairs it printed,
// adding cpu_ns: the user+system CPU time the peer used.
func (rn *running) wait() (map[string]float64, error) {
	if err := rn.cmd.Wait(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", strings.Join(rn.cmd.Args, " "), err, bytes.TrimSpace(rn.stderr.Bytes()))
	}
	kv := parseKV(rn.stdout.String())
	kv["cpu_ns"] = float64((rn.cmd.ProcessState.UserTime() + rn.cmd.ProcessState.SystemTime()).Nanoseconds())
	return kv, nil
}

func parseKV(s string) map[string]float64 {
	m := map[string]float64{}
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			m[k] = x
		}
	}
	return m
}

// runPeers starts every peer (the first first), waits for all and returns
// what each printed.
func (r *runner) runPeers(pin bool, peers ...peer) ([]map[string]float64, error) {
	var rs []*running
	var errs []error
	for _, p := range peers {
		rn, err := r.start(p, pin)
		if err != nil {
			errs = append(errs, err)
			break
		}
		rs = append(rs, rn)
	}
	for _, p := range peers {
		for _, f := range p.files {
			_ = f.Close() // the children have their copies
		}
	}
	outs := make([]map[string]float64, len(rs))
	for i, rn := range rs {
		kv, err := rn.wait()
		if err != nil {
			errs = append(errs, err)
			// A peer that failed leaves the other blocked: stop it.
			for _, o := range rs {
				_ = o.cmd.Process.Kill()
			}
		}
		outs[i] = kv
	}
	return outs, errors.Join(errs...)
}

// add records one sample of bench/labels/impl.
func (r *runner) add(bench, labels, impl string, kv map[string]float64) {
	for _, res := range r.results {
		if res.bench == bench && res.labels == labels && res.impl == impl {
			res.samples = append(res.samples, kv)
			return
		}
	}
	r.results = append(r.results, &result{bench: bench, impl: impl, labels: labels, samples: []map[string]float64{kv}})
}

// impls lists the implementations to compare, C first when it is there.
func (r *runner) impls(extra ...string) []string {
	var l []string
	if r.ref != "" {
		l = append(l, "c")
	}
	return append(append(l, "chanmq"), extra...)
}

// newQueues creates n queues of 10 messages of size bytes and returns
// their names and a cleanup that unlinks them. The peers open them by name.
func newQueues(n, size int) ([]string, func(), error) {
	var names []string
	cleanup := func() {
		for _, name := range names {
			_ = chanmq.Unlink(name)
		}
	}
	for range n {
		q, err := chanmq.CreateTemp(queuePrefix, chanmq.MaxMessages(10), chanmq.MessageSize(size))
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		names = append(names, q.Name())
		if err := q.Close(); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	return names, cleanup, nil
}

// 1. pair: Send then Receive in one process, per-op time.
func (r *runner) pair() error {
	for range r.p.reps {
		for _, size := range []int{16, 256, 8192} {
			for _, impl := range r.impls("pipe", "seqpacket") {
				names, cleanup, err := newQueues(1, size)
				if err != nil {
					return err
				}
				p := r.goPeer("pair", impl, size, r.p.pairN, names[0])
				if impl == "c" {
					p = r.cPeer("pair", names[0], size, r.p.pairN)
				}
				outs, err := r.runPeers(false, p)
				cleanup()
				if err != nil {
					return err
				}
				kv := outs[0]
				kv["msgs_per_s"] = 1e9 / kv["ns_per_op"]
				r.add("pair", fmt.Sprintf("size=%d", size), impl, kv)
			}
		}
	}
	return nil
}

// transportPeers returns the two peers of impl, set up with the queues
// (named) or the pipe/socket pair (files) they need. ping is the peer
// started second for stream (the sender) and first for pingpong.
func (r *runner) transportPeers(impl string, names []string, roleA, roleB []any) ([2]peer, func(), error) {
	var ps [2]peer
	cleanup := func() {}
	switch impl {
	case "c":
		ps[0], ps[1] = r.cPeer(roleA...), r.cPeer(roleB...)
	case "chanmq", "pumps", "pumps-buf16", "typed-bin", "typed-json", "pumps-json":
		ps[0], ps[1] = r.goPeer(roleA[0].(string), roleA[1:]...), r.goPeer(roleB[0].(string), roleB[1:]...)
	case "pumps-gmp1", "typed-bin-gmp1", "typed-json-gmp1", "pumps-json-gmp1":
		// The pumps with GOMAXPROCS=1 in both processes, the setting the
		// README recommends for processes that mostly move messages.
		ps[0], ps[1] = r.goPeer(roleA[0].(string), roleA[1:]...), r.goPeer(roleB[0].(string), roleB[1:]...)
		for i := range ps {
			ps[i].env = append(ps[i].env, "GOMAXPROCS=1")
		}
	case "pipe":
		ps[0], ps[1] = r.goPeer(roleA[0].(string), roleA[1:]...), r.goPeer(roleB[0].(string), roleB[1:]...)
		// Pipe A carries peer 1 to peer 0 (stream) or ping to pong; pipe B
		// the way back (ping-pong only).
		var fds [2][2]int
		for i := range len(names) {
			if err := unix.Pipe2(fds[i][:], unix.O_CLOEXEC); err != nil {
				return ps, cleanup, err
			}
		}
		rd := func(i int) *os.File { return os.NewFile(uintptr(fds[i][0]), "pipe-r") }
		wr := func(i int) *os.File { return os.NewFile(uintptr(fds[i][1]), "pipe-w") }
		if len(names) == 1 { // stream: peer 0 receives, peer 1 sends
			ps[0].files, ps[1].files = []*os.File{rd(0)}, []*os.File{wr(0)}
		} else { // ping-pong: peer 0 pings (fd 3 writes A, fd 4 reads B)
			ps[0].files = []*os.File{wr(0), rd(1)}
			ps[1].files = []*os.File{rd(0), wr(1)}
		}
	case "seqpacket":
		ps[0], ps[1] = r.goPeer(roleA[0].(string), roleA[1:]...), r.goPeer(roleB[0].(string), roleB[1:]...)
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return ps, cleanup, err
		}
		ps[0].files = []*os.File{os.NewFile(uintptr(fds[0]), "seqpacket")}
		ps[1].files = []*os.File{os.NewFile(uintptr(fds[1]), "seqpacket")}
	default:
		return ps, cleanup, fmt.Errorf("unknown impl %q", impl)
	}
	return ps, cleanup, nil
}

// 2. stream: one process sends N messages, the other receives them.
// 7. (impl pumps, pumps-buf16, pumps-gmp1) the same through Receiver and
// Sender; pumps-gmp1 runs both processes with GOMAXPROCS=1.
// 8. (scenario typed: impls typed-bin, typed-json, pumps-json and their
// -gmp1 twins, at the sizes p.typed) records through typed pumps, and
// through []byte pumps with hand-written JSON; see typed.go. Each rep runs
// every impl once, so a typed impl and its counterpart are measured side
// by side under the same noise.
func (r *runner) stream() error {
	for range r.p.reps {
		for _, size := range r.p.sizes {
			var impls []string
			if r.ref != "" {
				impls = append(impls, "c")
			}
			if r.p.want("stream") {
				impls = append(impls, "chanmq")
			}
			if r.p.want("pumps") {
				impls = append(impls, "pumps", "pumps-buf16", "pumps-gmp1")
			}
			if r.p.want("typed") && slices.Contains(r.p.typed, size) {
				if !r.p.want("pumps") {
					impls = append(impls, "pumps", "pumps-gmp1")
				}
				impls = append(impls, "typed-bin", "pumps-json", "typed-json",
					"typed-bin-gmp1", "pumps-json-gmp1", "typed-json-gmp1")
			}
			if r.p.want("stream") {
				impls = append(impls, "pipe", "seqpacket")
			}
			if len(impls) <= 1 {
				continue // C alone, or nothing
			}
			for _, impl := range impls {
				names, cleanupQ, err := newQueues(1, size)
				if err != nil {
					return err
				}
				n := r.p.streamN
				var recv, send []any
				if impl == "c" {
					recv, send = []any{"recv", names[0], size, n}, []any{"send", names[0], size, n}
				} else {
					recv, send = []any{"recv", impl, size, n, names[0]}, []any{"send", impl, size, n, names[0]}
				}
				ps, cleanup, err := r.transportPeers(impl, names, recv, send)
				if err != nil {
					cleanupQ()
					return err
				}
				outs, err := r.runPeers(false, ps[0], ps[1])
				cleanup()
				cleanupQ()
				if err != nil {
					return err
				}
				kv := outs[0]
				rate := kv["msgs"] / (kv["elapsed_ns"] / 1e9)
				// CPU per message of each peer, start-up included: steadier
				// than the rate on a shared machine, and it shows where
				// the time goes (scheduler wake-ups show up here).
				r.add("stream", fmt.Sprintf("size=%d", size), impl, map[string]float64{
					"msgs_per_s": rate, "mb_per_s": rate * float64(size) / 1e6,
					"rx_cpu_us": outs[0]["cpu_ns"] / 1e3 / float64(n),
					"tx_cpu_us": outs[1]["cpu_ns"] / 1e3 / float64(n),
				})
			}
		}
	}
	return nil
}

// 3. pingpong: round trips over two queues, unpinned and both on CPU 0.
// 7. (impl pumps) the same through Receiver and Sender.
func (r *runner) pingpong() error {
	pins := []bool{false}
	if r.taskset != "" {
		pins = append(pins, true)
	}
	extra := []string{"pipe", "seqpacket"}
	if r.p.want("pumps") || len(r.p.scenarios) == 0 {
		extra = append([]string{"pumps"}, extra...)
	}
	size := r.p.pingSize
	for range r.p.reps {
		for _, pin := range pins {
			for _, impl := range r.impls(extra...) {
				names, cleanupQ, err := newQueues(2, size)
				if err != nil {
					return err
				}
				n, warm := r.p.pingN, r.p.pingWarm
				var ping, pong []any
				if impl == "c" {
					ping = []any{"ping", names[0], names[1], size, n, warm}
					pong = []any{"pong", names[0], names[1], size, n + warm}
				} else {
					ping = []any{"ping", impl, size, n, warm, names[0], names[1]}
					pong = []any{"pong", impl, size, n + warm, names[0], names[1]}
				}
				ps, cleanup, err := r.transportPeers(impl, names, ping, pong)
				if err != nil {
					cleanupQ()
					return err
				}
				outs, err := r.runPeers(pin, ps[0], ps[1])
				cleanup()
				cleanupQ()
				if err != nil {
					return err
				}
				labels := fmt.Sprintf("size=%d pin=none", size)
				if pin {
					labels = fmt.Sprintf("size=%d pin=cpu0", size)
				}
				r.add("pingpong", labels, impl, map[string]float64{
					"p50_us": outs[0]["p50_ns"] / 1e3, "p99_us": outs[0]["p99_ns"] / 1e3,
				})
			}
		}
	}
	return nil
}

// 4. cancel: from cancel() to the blocked Receive returning.
func (r *runner) cancel() error {
	for range r.p.reps {
		for _, impl := range []string{"chanmq", "pipe"} {
			outs, err := r.runPeers(false, r.goPeer("cancel", impl, r.p.cancelN))
			if err != nil {
				return err
			}
			r.add("cancel", "", impl, map[string]float64{
				"p50_us": outs[0]["p50_ns"] / 1e3, "p99_us": outs[0]["p99_ns"] / 1e3,
			})
		}
	}
	return nil
}

// 5. idle: OS threads and RSS with many goroutines blocked in Receive.
func (r *runner) idle() error {
	for _, c := range r.p.idle {
		outs, err := r.runPeers(false, r.goPeer("idle", c.queues, c.per, r.p.idleFor.Milliseconds()))
		if err != nil {
			return err
		}
		kv := outs[0]
		kv["rss_delta_kib"] = kv["rss_kib"] - kv["rss_before_kib"]
		r.add("idle", fmt.Sprintf("goroutines=%d queues=%d", c.queues*c.per, c.queues), "chanmq", kv)
	}
	return nil
}

// 6. memory: RSS before and after many Send+Receive pairs.
func (r *runner) memory() error {
	outs, err := r.runPeers(false, r.goPeer("memory", r.p.memPairs))
	if err != nil {
		return err
	}
	kv := outs[0]
	kv["rss_delta_kib"] = kv["rss_after_kib"] - kv["rss_before_kib"]
	r.add("memory", fmt.Sprintf("pairs=%d", r.p.memPairs), "chanmq", kv)
	return nil
}

// metrics lists, per scenario, the figures to report and whether a ratio
// against C is higher-is-better throughput.
var metrics = map[string][]string{
	"pair":     {"ns_per_op", "msgs_per_s"},
	"stream":   {"msgs_per_s", "mb_per_s", "rx_cpu_us", "tx_cpu_us"},
	"pingpong": {"p50_us", "p99_us"},
	"cancel":   {"p50_us", "p99_us"},
	"idle":     {"threads", "threads_before", "rss_kib", "rss_delta_kib", "idle_cpu_pct"},
	"memory":   {"rss_before_kib", "rss_after_kib", "rss_delta_kib"},
}

// ratioOf names the metric whose ratio against C a scenario reports.
var ratioOf = map[string][]string{
	"pair":     {"msgs_per_s"},
	"stream":   {"msgs_per_s"},
	"pingpong": {"p50_us", "p99_us"},
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func values(res *result, key string) []float64 {
	var v []float64
	for _, s := range res.samples {
		v = append(v, s[key])
	}
	return v
}

// spread is (max-min)/median in percent.
func spread(xs []float64) float64 {
	m := median(xs)
	if m == 0 || len(xs) < 2 {
		return 0
	}
	return 100 * (slices.Max(xs) - slices.Min(xs)) / m
}

// report prints the tables, then the machine-readable lines.
func (r *runner) report() {
	c := map[string]*result{}
	for _, res := range r.results {
		if res.impl == "c" {
			c[res.bench+"|"+res.labels] = res
		}
	}
	ratio := func(res *result, key string) (float64, bool) {
		ref := c[res.bench+"|"+res.labels]
		if ref == nil {
			return 0, false
		}
		den := median(values(ref, key))
		if den == 0 {
			return 0, false
		}
		return median(values(res, key)) / den, true
	}
	fmtNum := func(x float64) string {
		switch {
		case x >= 1000:
			return strconv.FormatFloat(x, 'f', 0, 64)
		case x >= 10:
			return strconv.FormatFloat(x, 'f', 1, 64)
		}
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
	var lines []string
	bench := ""
	for _, res := range r.results {
		if res.bench != bench {
			bench = res.bench
			fmt.Fprintf(r.out, "\n%-9s %-28s %-16s", bench, "", "impl")
			for _, m := range metrics[bench] {
				fmt.Fprintf(r.out, " %14s", m)
			}
			fmt.Fprintf(r.out, " %8s", "spread%")
			for _, m := range ratioOf[bench] {
				fmt.Fprintf(r.out, " %16s", "vs_c("+m+")")
			}
			fmt.Fprintln(r.out)
		}
		line := fmt.Sprintf("bench=%s", res.bench)
		if res.labels != "" {
			line += " " + res.labels
		}
		line += " impl=" + res.impl
		fmt.Fprintf(r.out, "%-9s %-28s %-16s", "", res.labels, res.impl)
		for _, m := range metrics[bench] {
			v := median(values(res, m))
			fmt.Fprintf(r.out, " %14s", fmtNum(v))
			line += fmt.Sprintf(" %s=%s", m, fmtNum(v))
		}
		sp := spread(values(res, metrics[bench][0]))
		fmt.Fprintf(r.out, " %8.1f", sp)
		line += fmt.Sprintf(" spread_pct=%.1f reps=%d", sp, len(res.samples))
		for i, m := range ratioOf[bench] {
			x, ok := ratio(res, m)
			s := "-"
			if ok {
				s = fmt.Sprintf("%.2f", x)
			}
			fmt.Fprintf(r.out, " %16s", s)
			name := "ratio_vs_c"
			if i > 0 || res.bench == "pingpong" {
				name = "ratio_" + strings.TrimSuffix(m, "_us") + "_vs_c"
			}
			if ok {
				line += fmt.Sprintf(" %s=%s", name, s)
			}
		}
		fmt.Fprintln(r.out)
		if cp := r.counterpart(res); cp != nil {
			line += pairedRatio(res, cp).fields()
		}
		lines = append(lines, line)
	}
	r.reportTyped()
	fmt.Fprintln(r.out)
	for _, l := range lines {
		fmt.Fprintln(r.out, l)
	}
}

// counterpart returns the result that res, a typed stream, is compared
// with (typedPairs), or nil.
func (r *runner) counterpart(res *result) *result {
	impl, ok := typedPairs[res.impl]
	if !ok {
		return nil
	}
	for _, o := range r.results {
		if o.bench == res.bench && o.labels == res.labels && o.impl == impl {
			return o
		}
	}
	return nil
}

// paired is the throughput of a typed stream against its counterpart's:
// the ratio of the medians, and the lowest and highest ratio within one
// rep (both measured back to back, so the same noise).
type paired struct {
	vs            string
	ratio, lo, hi float64
	cpuRx, cpuTx  float64 // CPU per message, typed / counterpart (medians)
	rxLo, rxHi    float64 // lowest and highest per-rep receiver CPU ratio
	txLo, txHi    float64 // the same for the sender
}

func pairedRatio(res, cp *result) paired {
	p := paired{vs: cp.impl, ratio: median(values(res, "msgs_per_s")) / median(values(cp, "msgs_per_s"))}
	p.cpuRx = median(values(res, "rx_cpu_us")) / median(values(cp, "rx_cpu_us"))
	p.cpuTx = median(values(res, "tx_cpu_us")) / median(values(cp, "tx_cpu_us"))
	// CPU per message is steadier than the rate on a shared machine: the
	// rate depends on how the two processes are scheduled, the CPU each
	// spends per message much less.
	p.lo, p.hi = perRep(res, cp, "msgs_per_s")
	p.rxLo, p.rxHi = perRep(res, cp, "rx_cpu_us")
	p.txLo, p.txHi = perRep(res, cp, "tx_cpu_us")
	return p
}

// perRep returns the lowest and highest ratio of key between res and cp
// within one rep.
func perRep(res, cp *result, key string) (lo, hi float64) {
	var per []float64
	for i := range min(len(res.samples), len(cp.samples)) {
		if d := cp.samples[i][key]; d > 0 {
			per = append(per, res.samples[i][key]/d)
		}
	}
	if len(per) == 0 {
		return 0, 0
	}
	return slices.Min(per), slices.Max(per)
}

// fields are the paired ratios as machine-readable fields.
func (p paired) fields() string {
	k := "ratio_vs_" + p.vs
	return fmt.Sprintf(" %s=%.2f %s_min=%.2f %s_max=%.2f rx_cpu_ratio=%.2f rx_cpu_ratio_min=%.2f rx_cpu_ratio_max=%.2f tx_cpu_ratio=%.2f tx_cpu_ratio_min=%.2f tx_cpu_ratio_max=%.2f",
		k, p.ratio, k, p.lo, k, p.hi, p.cpuRx, p.rxLo, p.rxHi, p.cpuTx, p.txLo, p.txHi)
}

// reportTyped prints the typed streams against their []byte
// counterparts.
func (r *runner) reportTyped() {
	header := false
	for _, res := range r.results {
		cp := r.counterpart(res)
		if cp == nil {
			continue
		}
		if !header {
			fmt.Fprintf(r.out, "\n%-9s %-12s %-16s %-16s %8s %10s %13s %10s %13s %10s\n", "typed", "",
				"impl", "vs", "msgs/s", "per rep", "rx CPU/msg", "per rep", "tx CPU/msg", "per rep")
			header = true
		}
		p := pairedRatio(res, cp)
		rng := func(lo, hi float64) string { return fmt.Sprintf("%.2f-%.2f", lo, hi) }
		fmt.Fprintf(r.out, "%-9s %-12s %-16s %-16s %8.2f %10s %13.2f %10s %13.2f %10s\n", "", res.labels,
			res.impl, cp.impl, p.ratio, rng(p.lo, p.hi), p.cpuRx, rng(p.rxLo, p.rxHi), p.cpuTx, rng(p.txLo, p.txHi))
	}
}
