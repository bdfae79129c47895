//go:build linux

package chanmq

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The README's statement of what a queue costs against RLIMIT_MSGQUEUE,
// and how many queues fit in the default limit (issue 16, item 8), checked
// against the kernel.
//
// The budget is per user and shared by every process of that user, so a
// root test would see whatever the other test runs on the machine hold.
// The child therefore runs as a uid of its own (derived from this test
// process's pid, which no other live process has), that owns no queue, and
// in an IPC namespace of its own when it can have one, so that the queues it
// makes neither take the machine's queues_max from other tests nor outlive
// it.

const defaultRlimitMsgqueue = 819200

func init() { registerChild("rlimit-cost", childRlimitCost) }

// costRow is one row of the README's table.
type costRow struct {
	maxMsgs, msgSize int
	bytes, queues    int
	line             string
}

// readmeCostRows parses the table of queue costs in README.md.
func readmeCostRows(t *testing.T) []costRow {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`^\| (\d+) × (\d+)[^|]*\| (\d+) \| (\d+)`)
	var rows []costRow
	for _, line := range strings.Split(string(b), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n := make([]int, 4)
		for i := range n {
			n[i], _ = strconv.Atoi(m[i+1])
		}
		rows = append(rows, costRow{maxMsgs: n[0], msgSize: n[1], bytes: n[2], queues: n[3], line: line})
	}
	if len(rows) < 3 {
		t.Fatalf("README.md: found %d rows of the queue cost table, want the table under \"How many queues\"", len(rows))
	}
	return rows
}

// TestREADMEQueueCostsMatchTheKernel checks each row of the README's table:
// the bytes are the formula the README states (queueBytes), the count is
// how many such queues fit in the default RLIMIT_MSGQUEUE, and the kernel
// agrees to the byte: a queue fits in a limit of exactly its cost and not
// in one byte less, and creating queues under the default limit stops at
// the count (or at queues_max where the README says so).
func TestREADMEQueueCostsMatchTheKernel(t *testing.T) {
	t.Parallel()
	rows := readmeCostRows(t)
	var args []string
	for _, r := range rows {
		cost := int(queueBytes(r.maxMsgs, r.msgSize))
		if r.bytes != cost {
			t.Errorf("README row %q: %d bytes, the formula gives %d", r.line, r.bytes, cost)
		}
		if want := defaultRlimitMsgqueue / cost; r.queues != want {
			t.Errorf("README row %q: %d queues, %d / %d gives %d", r.line, r.queues, defaultRlimitMsgqueue, cost, want)
		}
		args = append(args, fmt.Sprintf("%dx%d", r.maxMsgs, r.msgSize))
	}

	bin := copyTestBinaryWorldExec(t)
	uid := 1<<30 + os.Getpid()
	spec := childProcSpec{uid: uid, bin: bin, cloneflags: unix.CLONE_NEWIPC}
	if !canCloneIPCNamespace() {
		spec.cloneflags = 0
	}
	reports := reportsByCase(runChildAs(t, spec, "rlimit-cost",
		"CHANMQ_T_SIZES="+strings.Join(args, ","),
		"CHANMQ_T_OWN_IPC="+strconv.Itoa(int(spec.cloneflags/unix.CLONE_NEWIPC)),
		"CHANMQ_T_PREFIX="+testPrefix+"cost-"+strconv.Itoa(os.Getpid())+"-"))
	for _, r := range rows {
		key := fmt.Sprintf("%dx%d", r.maxMsgs, r.msgSize)
		for _, c := range []struct{ suffix, what string }{
			{"/fits", "a queue fits in a limit of exactly its cost"},
			{"/one-byte-less", "a limit one byte below its cost refuses it with ErrLimit"},
		} {
			rep, ok := reports[key+c.suffix]
			switch {
			case !ok:
				t.Errorf("%s: the child did not report %s", key, c.suffix)
			case rep.Skipped != "":
				t.Skipf("%s%s: %s", key, c.suffix, rep.Skipped)
			case rep.Err != "":
				t.Errorf("%s: want %s: %s", key, c.what, rep.Err)
			}
		}
		rep, ok := reports[key+"/count"]
		switch {
		case !ok:
			t.Errorf("%s: the child did not report a count", key)
		case rep.Skipped != "":
			t.Logf("%s: count not checked: %s", key, rep.Skipped)
		case rep.Err != "":
			t.Errorf("%s: %s", key, rep.Err)
		case strings.Contains(r.line, "queues_max"):
			if qm := reports["queues_max"].Value; rep.Value != qm || qm >= r.queues {
				t.Errorf("%s: %d queues fit, want queues_max (%d) to stop the count below the %d the budget allows, as the README says", key, rep.Value, qm, r.queues)
			} else {
				t.Logf("%s: queues_max stopped the count at %d, as the README says", key, rep.Value)
			}
		case rep.Value != r.queues:
			t.Errorf("%s: %d queues fit in %d bytes, the README says %d", key, rep.Value, defaultRlimitMsgqueue, r.queues)
		default:
			t.Logf("%s: %d queues of %d bytes fit in %d, as the README says", key, rep.Value, r.bytes, defaultRlimitMsgqueue)
		}
	}
}

// childRlimitCost runs as a user that owns no queue. For each size in
// CHANMQ_T_SIZES ("10x8192,..."): a queue must fit in an RLIMIT_MSGQUEUE
// of exactly queueBytes and be refused at one byte less; and, in a new IPC
// namespace, under the default limit queues are created until the kernel
// refuses, and the count is reported (with ENOSPC, queues_max, as the
// reason where it binds first).
func childRlimitCost() int {
	prefix := os.Getenv("CHANMQ_T_PREFIX")
	ownIPC := os.Getenv("CHANMQ_T_OWN_IPC") == "1"
	queuesMax := readLimit("queues_max")
	printChildReport(childReport{Case: "queues_max", Value: queuesMax})
	n := 0
	create := func(maxMsgs, msgSize int) (string, error) {
		n++
		name := fmt.Sprintf("%s%d", prefix, n)
		q, err := Open(name, Create(0o600), Exclusive(), MaxMessages(maxMsgs), MessageSize(msgSize))
		if err != nil {
			return "", err
		}
		_ = q.Close() // the queue, and its cost, stay until unlinked
		return name, nil
	}
	setLimit := func(cur uint64) error {
		return unix.Setrlimit(unix.RLIMIT_MSGQUEUE, &unix.Rlimit{Cur: cur, Max: defaultRlimitMsgqueue})
	}
	for _, size := range strings.Split(os.Getenv("CHANMQ_T_SIZES"), ",") {
		var maxMsgs, msgSize int
		if _, err := fmt.Sscanf(size, "%dx%d", &maxMsgs, &msgSize); err != nil {
			printChildReport(childReport{Case: size + "/fits", Err: err.Error()})
			continue
		}
		cost := queueBytes(maxMsgs, msgSize)

		if err := setLimit(cost - 1); err != nil {
			printChildReport(childReport{Case: size + "/one-byte-less", Skipped: "setrlimit: " + err.Error()})
			printChildReport(childReport{Case: size + "/fits", Skipped: "setrlimit: " + err.Error()})
			continue
		}
		name, err := create(maxMsgs, msgSize)
		switch {
		case errors.Is(err, unix.ENOSPC):
			printChildReport(childReport{Case: size + "/one-byte-less", Skipped: "the IPC namespace is out of queues (queues_max): " + err.Error()})
		case err == nil:
			_ = Unlink(name)
			printChildReport(childReport{Case: size + "/one-byte-less", Err: fmt.Sprintf("created under RLIMIT_MSGQUEUE %d, one byte below the formula's %d", cost-1, cost)})
		case !errors.Is(err, ErrLimit) || !errors.Is(err, unix.EMFILE):
			printChildErr(size+"/one-byte-less", fmt.Errorf("want ErrLimit wrapping EMFILE: %w", err), 0)
		default:
			printChildErr(size+"/one-byte-less", nil, 0)
		}

		_ = setLimit(cost)
		name, err = create(maxMsgs, msgSize)
		switch {
		case errors.Is(err, unix.ENOSPC):
			printChildReport(childReport{Case: size + "/fits", Skipped: "the IPC namespace is out of queues (queues_max): " + err.Error()})
		case err == nil:
			_ = Unlink(name)
			fallthrough
		default:
			printChildErr(size+"/fits", err, int(cost))
		}

		if !ownIPC {
			printChildReport(childReport{Case: size + "/count", Skipped: "no IPC namespace of its own: filling the budget would take the machine's queues_max from other tests"})
			continue
		}
		_ = setLimit(defaultRlimitMsgqueue)
		var names []string
		for {
			name, err = create(maxMsgs, msgSize)
			if err != nil {
				break
			}
			names = append(names, name)
		}
		switch {
		case errors.Is(err, unix.EMFILE) && errors.Is(err, ErrLimit):
			printChildErr(size+"/count", nil, len(names))
		case errors.Is(err, unix.ENOSPC) && len(names) == queuesMax:
			printChildErr(size+"/count", nil, len(names))
		default:
			printChildErr(size+"/count", fmt.Errorf("after %d queues (queues_max %d): %w", len(names), queuesMax, err), len(names))
		}
		for _, name := range names {
			_ = Unlink(name)
		}
	}
	return 0
}
