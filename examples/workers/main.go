// Command workers is the drop-in-replacement story: a parent fans jobs
// out to worker processes over one queue and collects their results over
// another, written the way one writes it with goroutines and channels.
//
//	go run ./examples/workers -workers 4 -jobs 20
//
// The parent re-executes itself as each worker, with the queue names in
// the environment variable CHANMQ_WORKER. Here is the in-process version;
// the lines marked "←" are the only ones that change:
//
//	jobs := make(chan []byte)           // ← jobsQ.Sender(ctx).C
//	results := make(chan []byte)        // ← resultsQ.Receiver(ctx).C
//	for range workers {
//		go worker(jobs, results)        // ← exec.Command(self) with CHANMQ_WORKER set
//	}
//	go func() {
//		defer close(jobs)               // ← also send one empty message per worker:
//		for _, job := range input {     //   "no more jobs" (a close does not cross processes)
//			jobs <- job
//		}
//	}()
//	for range input {
//		collect(<-results)
//	}
//
//	func worker(jobs <-chan []byte, results chan<- []byte) {
//		for job := range jobs {         // ← for job, err := range jobsQ.All(ctx), until the empty message
//			results <- square(job)      // ← results is OpenSender(ctx, name).C
//		}
//	}
//
// Workers read jobs with Queue.All rather than a Receiver: several
// processes compete for one queue, and a Receiver's pump would take the
// next job while its worker is busy with this one, where an idle worker
// cannot get it.
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
	"syscall"
	"time"

	"github.com/chanmq/chanmq"
)

// workerEnv holds "jobs-queue,results-queue" in a worker process.
const workerEnv = "CHANMQ_WORKER"

func main() {
	log.SetFlags(0)
	workers := flag.Int("workers", 4, "number of worker processes")
	jobs := flag.Int("jobs", 20, "number of jobs")
	work := flag.Duration("work", 10*time.Millisecond, "time each job takes")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	if names := os.Getenv(workerEnv); names != "" {
		log.SetPrefix(fmt.Sprintf("worker %d: ", os.Getpid()))
		err = worker(ctx, names, *work)
	} else {
		log.SetPrefix("workers: ")
		err = parent(ctx, *workers, *jobs)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func parent(ctx context.Context, workers, n int) error {
	if workers < 1 || n < 0 {
		return errors.New("-workers must be at least 1 and -jobs at least 0")
	}
	// Two fresh queues (mode 0600), removed when we are done.
	jobsQ, err := chanmq.CreateTemp("/chanmq-workers-jobs-")
	if err != nil {
		return err
	}
	defer chanmq.Unlink(jobsQ.Name())
	defer jobsQ.Close()
	resultsQ, err := chanmq.CreateTemp("/chanmq-workers-results-")
	if err != nil {
		return err
	}
	defer chanmq.Unlink(resultsQ.Name())
	defer resultsQ.Close()

	tx := jobsQ.Sender(ctx)
	rx := resultsQ.Receiver(ctx)
	jobs, results := tx.C, rx.C

	// Start the workers: this program again, as worker processes.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	exited := make(chan error, workers)
	var procs []*os.Process
	running := 0 // workers not yet seen on exited
	defer func() {
		// On an early return, stop the workers still running and wait
		// for them, so that none outlives us. (Signal does nothing to a
		// process already waited for.)
		for _, p := range procs {
			_ = p.Signal(syscall.SIGTERM)
		}
		for ; running > 0; running-- {
			<-exited
		}
	}()
	for range workers {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), workerEnv+"="+jobsQ.Name()+","+resultsQ.Name())
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		procs = append(procs, cmd.Process)
		running++
		go func() { exited <- cmd.Wait() }()
	}
	fmt.Printf("workers: %d worker processes, %d jobs, over %s and %s\n", workers, n, jobsQ.Name(), resultsQ.Name())

	go func() {
		defer close(jobs)
		for i := 1; i <= n; i++ {
			select {
			case jobs <- []byte(strconv.Itoa(i)):
			case <-tx.Done():
				return
			}
		}
		for range workers { // what close(jobs) means to the workers
			select {
			case jobs <- []byte{}:
			case <-tx.Done():
				return
			}
		}
	}()

	squares := map[int]int{}
	byWorker := map[string]int{}
	for len(squares) < n {
		select {
		case r, ok := <-results:
			if !ok {
				return fmt.Errorf("results stopped after %d of %d: %v", len(squares), n, errors.Join(rx.Err(), context.Cause(ctx)))
			}
			job, square, pid, err := parseResult(r)
			if err != nil {
				return err
			}
			squares[job] = square
			byWorker[pid]++
		case err := <-exited:
			// A worker ends after its "no more jobs", so possibly before
			// we have read all results: fine, unless it failed.
			running--
			if err != nil {
				return fmt.Errorf("a worker failed: %v", err)
			}
		}
	}
	if err := tx.Wait(); err != nil {
		return err
	}
	for ; running > 0; running-- {
		if err := <-exited; err != nil {
			return fmt.Errorf("a worker failed: %v", err)
		}
	}

	for _, job := range slices.Sorted(maps.Keys(squares)) {
		fmt.Printf("job %d: %d\n", job, squares[job])
	}
	var shares []string
	for _, pid := range slices.Sorted(maps.Keys(byWorker)) {
		shares = append(shares, fmt.Sprintf("pid %s did %d", pid, byWorker[pid]))
	}
	fmt.Printf("workers: all %d results in; %s\n", n, strings.Join(shares, ", "))
	return nil
}

// parseResult reads "job square pid".
func parseResult(r []byte) (job, square int, pid string, err error) {
	f := strings.Fields(string(r))
	if len(f) == 3 {
		job, err1 := strconv.Atoi(f[0])
		square, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil {
			return job, square, f[2], nil
		}
	}
	return 0, 0, "", fmt.Errorf("malformed result %q", r)
}

// worker squares the numbers it takes from the jobs queue and sends
// "job square pid" to the results queue, until an empty message.
func worker(ctx context.Context, names string, work time.Duration) error {
	jobsName, resultsName, ok := strings.Cut(names, ",")
	if !ok {
		return fmt.Errorf("%s=%q: want jobs-queue,results-queue", workerEnv, names)
	}
	jobsQ, err := chanmq.Open(jobsName, chanmq.ReadOnly())
	if err != nil {
		return err
	}
	defer jobsQ.Close()
	tx, err := chanmq.OpenSender(ctx, resultsName, chanmq.WriteOnly())
	if err != nil {
		return err
	}
	results := tx.C

	var fault error
	for job, err := range jobsQ.All(ctx) {
		if err != nil {
			if ctx.Err() == nil { // not Ctrl-C: a real fault
				fault = err
			}
			break
		}
		if len(job) == 0 {
			break // no more jobs
		}
		n, err := strconv.Atoi(string(job))
		if err != nil {
			fault = fmt.Errorf("malformed job %q", job)
			break
		}
		time.Sleep(work)
		select {
		case results <- fmt.Appendf(nil, "%d %d %d", n, n*n, os.Getpid()):
		case <-tx.Done():
		}
	}
	close(results)
	return errors.Join(fault, tx.Wait())
}
