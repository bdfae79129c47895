// Command workers is the drop-in-replacement story: a parent fans jobs
// out to workers over one channel and collects their results over
// another, written once with goroutines (inProcess) and once with worker
// processes and two POSIX message queues (crossProcess).
//
//	go run ./examples/workers -workers 4 -jobs 20
//	go run ./examples/workers -goroutines    # the same program, in one process
//
// The worker function is the same in both: it knows only a <-chan Job and
// a chan<- Result. Besides making the two queues and collecting the
// workers' exit statuses, these are the only lines of inProcess that
// crossProcess changes (diff the two functions):
//
//	goroutines                                   processes
//	jobs := make(chan Job)                       tx := chanmq.Of(jobsQ, chanmq.JSON[Job]()).Sender(ctx, chanmq.EndOfStream())
//	results := make(chan Result)                 rx := chanmq.Of(resultsQ, chanmq.JSON[Result]()).Receiver(ctx, chanmq.EndOfStream())
//	                                             end := resultsQ.Sender(ctx, chanmq.EndOfStream())
//	                                             jobs, results := tx.C, rx.C
//	wg.Go(func() { worker(ctx, jobs, results) }) wg.Go(func() { exits <- spawn(ctx, jobsQ.Name(), resultsQ.Name()) })
//	go func() { wg.Wait(); close(results) }()    go func() { wg.Wait(); close(end.C) }()
//
// and a worker process adds the two ends of its channels around the
// unchanged worker call (see workerProcess):
//
//	rx, err := chanmq.OpenReceiverOf(ctx, jobsName, chanmq.JSON[Job](), chanmq.EndOfStream())
//	tx, err := chanmq.OpenSenderOf(ctx, resultsName, chanmq.JSON[Result]())
//	worker(ctx, rx.C, tx.C)
//	close(tx.C); err = tx.Wait()
//
// What the changes are for:
//   - close(jobs) is the same line in both: with EndOfStream it queues an
//     end-of-stream marker after the last job, and each worker process's
//     range over its jobs ends there (the receiver that meets the marker
//     puts it back for the next worker).
//   - The results have many senders (every worker), so no worker's close
//     may end them, as in the goroutine version, where the parent closes
//     results once every worker has returned. Across processes the parent
//     does that through a second sender on the results queue, end, which
//     sends nothing (so it needs no codec) and whose close queues the
//     marker once every worker process has exited, so behind every result.
//   - The send on jobs still selects on ctx.Done(), as with goroutines: tx
//     stops when ctx is done. A send pump can also stop on its own, on a
//     fault such as its queue closed under it; where that can happen,
//     select on tx.Done() as well.
//   - A process can fail where a goroutine cannot: crossProcess also
//     collects each worker's exit status and the pumps' errors.
//
// A worker's receive pump takes the next job from the kernel while its
// worker is busy with the current one (that job then waits for this worker,
// not for the first idle one). Use Queue.All in the worker instead of a
// Receiver when jobs are long and must go to whichever worker is free; it
// does not end at the end-of-stream marker by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chanmq/chanmq"
)

// Job and Result travel as JSON: {"n":3} and {"n":3,"square":9,"pid":1234}.
type Job struct {
	N int `json:"n"`
}

type Result struct {
	N      int `json:"n"`
	Square int `json:"square"`
	PID    int `json:"pid"`
}

// workerEnv holds "jobs-queue,results-queue" in a worker process.
const workerEnv = "CHANMQ_WORKER"

// work is how long each job takes.
var work = flag.Duration("work", 10*time.Millisecond, "time each job takes")

func main() {
	log.SetFlags(0)
	workers := flag.Int("workers", 4, "number of worker processes")
	n := flag.Int("jobs", 20, "number of jobs")
	goroutines := flag.Bool("goroutines", false, "run the workers as goroutines of this process (the version without queues)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if names := os.Getenv(workerEnv); names != "" {
		log.SetPrefix(fmt.Sprintf("worker pid %d: ", os.Getpid()))
		err := workerProcess(ctx, names)
		if ctx.Err() != nil {
			// Ctrl-C: say what this worker held and could not hand on.
			log.Printf("interrupted%s", unfinished(err))
			os.Exit(exitInterrupted)
		}
		if err != nil {
			log.Fatal(err)
		}
		return
	}

	log.SetPrefix("workers: ")
	if *workers < 1 || *n < 0 {
		log.Fatal("-workers must be at least 1 and -jobs at least 0")
	}
	version := crossProcess
	if *goroutines {
		version = inProcess
	}
	results, err := version(ctx, *workers, *n)
	if ctx.Err() != nil {
		// Ctrl-C: every pump has stopped and every worker has exited;
		// report what was done and what was not.
		log.Printf("interrupted: %d of %d jobs done; not done: %s%s", len(results), *n, notDone(results, *n), unfinished(err))
		os.Exit(exitInterrupted)
	}
	if err != nil {
		log.Fatal(err)
	}
	if err := report(results, *n); err != nil {
		log.Fatal(err)
	}
}

// exitInterrupted is the exit status after Ctrl-C, as a shell's 128+SIGINT.
const exitInterrupted = 130

// unfinished describes, after Ctrl-C, the values and messages that err
// says were not handed on: results a sender did not queue, jobs a
// receiver could not put back. Those are the only errors Ctrl-C makes;
// any other is printed as it is.
func unfinished(err error) string {
	var out []string
	for _, e := range flatten(err) {
		var results *chanmq.UnsentError[Result]
		var jobs *chanmq.UnsentError[Job]
		var held *chanmq.UndeliveredError
		switch {
		case errors.As(e, &results):
			out = append(out, fmt.Sprintf("%d result(s) not sent", len(results.Values)))
		case errors.As(e, &jobs):
			out = append(out, fmt.Sprintf("%d job(s) not queued", len(jobs.Values)))
		case errors.As(e, &held):
			for _, m := range held.Messages {
				out = append(out, fmt.Sprintf("job %s taken but not put back (%v)", m.Data, held.Err))
			}
		case errors.Is(e, context.Canceled):
		default:
			out = append(out, e.Error())
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "; " + strings.Join(out, "; ")
}

// flatten returns the errors that errors.Join joined in err, recursively.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var all []error
		for _, e := range j.Unwrap() {
			all = append(all, flatten(e)...)
		}
		return all
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// notDone lists the jobs 1..n with no result, as ranges ("4, 9-20").
func notDone(results []Result, n int) string {
	done := map[int]bool{}
	for _, r := range results {
		done[r.N] = true
	}
	var parts []string
	for i := 1; i <= n; i++ {
		if done[i] {
			continue
		}
		j := i
		for j+1 <= n && !done[j+1] {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(i))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", i, j))
		}
		i = j
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// worker squares numbers: the same function for a goroutine and for a
// worker process.
func worker(ctx context.Context, jobs <-chan Job, results chan<- Result) {
	for job := range jobs {
		time.Sleep(*work)
		select {
		case results <- Result{N: job.N, Square: job.N * job.N, PID: os.Getpid()}:
		case <-ctx.Done():
			return
		}
	}
}

// inProcess runs the workers as goroutines.
func inProcess(ctx context.Context, workers, n int) ([]Result, error) {
	jobs := make(chan Job)
	results := make(chan Result)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { worker(ctx, jobs, results) })
	}
	go func() {
		defer close(jobs)
		for i := 1; i <= n; i++ {
			select {
			case jobs <- Job{N: i}:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	var got []Result
	for r := range results {
		got = append(got, r)
	}
	return got, context.Cause(ctx)
}

// crossProcess runs the workers as processes: this program again, with
// the queue names in CHANMQ_WORKER.
func crossProcess(ctx context.Context, workers, n int) ([]Result, error) {
	// Two fresh queues (mode 0600), removed when we are done.
	jobsQ, err := chanmq.CreateTemp("/chanmq-workers-jobs-")
	if err != nil {
		return nil, err
	}
	defer chanmq.Unlink(jobsQ.Name())
	defer jobsQ.Close()
	resultsQ, err := chanmq.CreateTemp("/chanmq-workers-results-")
	if err != nil {
		return nil, err
	}
	defer chanmq.Unlink(resultsQ.Name())
	defer resultsQ.Close()
	fmt.Printf("workers: %d worker processes over %s and %s\n", workers, jobsQ.Name(), resultsQ.Name())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // on every return: stops the pumps, and the workers if still running

	tx := chanmq.Of(jobsQ, chanmq.JSON[Job]()).Sender(ctx, chanmq.EndOfStream())
	rx := chanmq.Of(resultsQ, chanmq.JSON[Result]()).Receiver(ctx, chanmq.EndOfStream())
	end := resultsQ.Sender(ctx, chanmq.EndOfStream())
	jobs, results := tx.C, rx.C
	exits := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { exits <- spawn(ctx, jobsQ.Name(), resultsQ.Name()) })
	}
	go func() {
		defer close(jobs)
		for i := 1; i <= n; i++ {
			select {
			case jobs <- Job{N: i}:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(end.C) }()
	var got []Result
	for r := range results {
		got = append(got, r)
	}
	// The range ends at the marker that end queued after the last worker
	// exited, or early on Ctrl-C or a fault: then cancel stops the rest.
	cancel()
	wg.Wait()
	close(exits)
	for e := range exits {
		err = errors.Join(err, e)
	}
	return got, errors.Join(err, tx.Wait(), rx.Err(), end.Wait())
}

// spawn runs one worker process until it exits; a cancelled ctx sends it
// SIGTERM (and SIGKILL if it has not exited 5 s later).
func spawn(ctx context.Context, jobsName, resultsName string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "-work", work.String())
	cmd.Env = append(os.Environ(), workerEnv+"="+jobsName+","+resultsName)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if cmd.ProcessState != nil {
		fmt.Printf("workers: worker pid %d exited with status %d\n", cmd.ProcessState.Pid(), cmd.ProcessState.ExitCode())
	}
	if err != nil && !(ctx.Err() != nil && cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == exitInterrupted) {
		return fmt.Errorf("a worker failed: %w", err)
	}
	return nil // it ended its stream, or was interrupted and said what it held
}

// workerProcess is a worker process: the worker function between a typed
// receiver of jobs and a typed sender of results.
func workerProcess(ctx context.Context, names string) error {
	jobsName, resultsName, ok := strings.Cut(names, ",")
	if !ok {
		return fmt.Errorf("%s=%q: want jobs-queue,results-queue", workerEnv, names)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Read-write, not ReadOnly: a receiver that meets the end-of-stream
	// marker puts it back for the other workers, which is a send.
	rx, err := chanmq.OpenReceiverOf(ctx, jobsName, chanmq.JSON[Job](), chanmq.EndOfStream())
	if err != nil {
		return err
	}
	tx, err := chanmq.OpenSenderOf(ctx, resultsName, chanmq.JSON[Result](), chanmq.WriteOnly())
	if err != nil {
		cancel() // rx puts back the job it may have taken
		return errors.Join(err, rx.Wait())
	}

	fmt.Printf("workers: worker pid %d: started\n", os.Getpid())
	worker(ctx, rx.C, tx.C)

	close(tx.C)
	err = tx.Wait() // nil once every result is queued
	if ctx.Err() != nil {
		return errors.Join(fmt.Errorf("stopped before the end of the stream: %w", context.Cause(ctx)), err, rx.Wait())
	}
	if err := errors.Join(err, rx.Err()); err != nil {
		return err
	}
	fmt.Printf("workers: worker pid %d: end of stream\n", os.Getpid())
	return nil
}

// report prints the results in job order and checks that every job's
// result came back exactly once, correct.
func report(results []Result, n int) error {
	slices.SortFunc(results, func(a, b Result) int { return a.N - b.N })
	count := map[int]int{}
	byPID := map[int]int{}
	var bad []string
	for _, r := range results {
		fmt.Printf("job %d: %d\n", r.N, r.Square)
		count[r.N]++
		byPID[r.PID]++
		if r.N < 1 || r.N > n || r.Square != r.N*r.N {
			bad = append(bad, fmt.Sprintf("wrong result %+v", r))
		}
	}
	for i := 1; i <= n; i++ {
		if count[i] != 1 {
			bad = append(bad, fmt.Sprintf("job %d: %d results, want 1", i, count[i]))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	var shares []string
	for _, pid := range slices.Sorted(maps.Keys(byPID)) {
		shares = append(shares, fmt.Sprintf("pid %d did %d", pid, byPID[pid]))
	}
	fmt.Printf("workers: all %d results in, each once; %s\n", n, strings.Join(shares, ", "))
	return nil
}
