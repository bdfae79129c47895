//go:build linux

package chanmq

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Every kernel limit reached on purpose: the error matches ErrLimit and
// names the limit, its value and how to raise it. Limits that are
// process-wide are lowered in a child, so parallel tests are not starved.

func init() {
	registerChild("fault-nofile", childExhaustFDs)
	registerChild("fault-limits", childQueueLimits)
	registerChild("fault-queues-max", childQueuesMax)
	registerChild("queue-rlimit-msgqueue", cpChildRlimitMsgqueue)
}

// readSysctl reads a /proc/sys/fs/mqueue value or skips t.
func readSysctl(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/fs/mqueue/" + name)
	if err != nil {
		t.Skipf("cannot read fs.mqueue.%s: %v", name, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Skipf("fs.mqueue.%s: %v", name, err)
	}
	return n
}

// openOverLimit opens a new queue with opts, which ask for more than a
// sysctl allows, and returns the error. It skips t when the create
// succeeds: the process is privileged (CAP_SYS_RESOURCE) and not bound.
func openOverLimit(t *testing.T, opts ...OpenOption) error {
	t.Helper()
	name := uniqueName(t)
	q, err := Open(name, append([]OpenOption{Create(0o600), Exclusive()}, opts...)...)
	if err == nil {
		_ = q.Close()
		t.Skip("the kernel allowed a queue above the sysctl limit: this process has CAP_SYS_RESOURCE")
	}
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EMFILE) {
		t.Skipf("another limit was hit first: %v", err)
	}
	return err
}

func TestMaxMessagesAboveMsgMaxIsErrLimitNamingSysctl(t *testing.T) {
	t.Parallel()
	msgMax := readSysctl(t, "msg_max")
	err := openOverLimit(t, MaxMessages(msgMax+1), MessageSize(16))
	if !errors.Is(err, ErrLimit) || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("Open(MaxMessages(%d)) = %v, want ErrLimit wrapping EINVAL", msgMax+1, err)
	}
	want := fmt.Sprintf("fs.mqueue.msg_max, which is %d", msgMax)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "sysctl -w fs.mqueue.msg_max=") {
		t.Fatalf("error %q should contain %q and how to raise it", err, want)
	}
}

func TestMessageSizeAboveMsgsizeMaxIsErrLimitNamingSysctl(t *testing.T) {
	t.Parallel()
	msgsizeMax := readSysctl(t, "msgsize_max")
	err := openOverLimit(t, MaxMessages(1), MessageSize(msgsizeMax+1))
	if !errors.Is(err, ErrLimit) || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("Open(MessageSize(%d)) = %v, want ErrLimit wrapping EINVAL", msgsizeMax+1, err)
	}
	want := fmt.Sprintf("fs.mqueue.msgsize_max, which is %d", msgsizeMax)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "sysctl -w fs.mqueue.msgsize_max=") {
		t.Fatalf("error %q should contain %q and how to raise it", err, want)
	}
}

// childExhaustFDs lowers RLIMIT_NOFILE and opens CHANMQ_T_NAME until that
// fails, then reports the error.
func childExhaustFDs() int {
	lim := unix.Rlimit{Cur: 32, Max: 32}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		printChildErr("setrlimit", err, 0)
		return 0
	}
	var open []*Queue
	defer func() {
		for _, q := range open {
			_ = q.Close()
		}
	}()
	for range 100 {
		q, err := Open(os.Getenv("CHANMQ_T_NAME"))
		if err != nil {
			printChildErr("nofile", err, len(open))
			// With Create the kernel's EMFILE could also mean
			// RLIMIT_MSGQUEUE; the explanation must still be right.
			_, err = Open(os.Getenv("CHANMQ_T_NAME"), Create(0o600), MaxMessages(1), MessageSize(16))
			printChildErr("nofile-create", err, len(open))
			return 0
		}
		open = append(open, q)
	}
	printChildErr("nofile", nil, len(open))
	return 0
}

// TestFDExhaustionNamesRLIMITNOFILE opens one queue again and again in a
// child with a low RLIMIT_NOFILE: the failure matches ErrLimit and says
// RLIMIT_NOFILE and `ulimit -n`, not RLIMIT_MSGQUEUE.
func TestFDExhaustionNamesRLIMITNOFILE(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	m := reportsByCase(runChildAs(t, childProcSpec{}, "fault-nofile", "CHANMQ_T_NAME="+q.Name()))
	for _, c := range []string{"nofile", "nofile-create"} {
		r := m[c]
		switch {
		case r.Err == "":
			t.Fatalf("%s: opened %d descriptors under RLIMIT_NOFILE 32", c, r.Value)
		case !r.Limit:
			t.Errorf("%s: error does not match ErrLimit: %s", c, r.Err)
		case !strings.Contains(r.Err, "RLIMIT_NOFILE is 32") || !strings.Contains(r.Err, "ulimit -n"):
			t.Errorf("%s: error does not name RLIMIT_NOFILE, its value and `ulimit -n`: %s", c, r.Err)
		}
		t.Logf("%s, after %d opens: %s", c, r.Value, r.Err)
	}
}

// childQueueLimits, run as an unprivileged user, asks for queues beyond
// each per-queue and per-user limit and reports the errors.
func childQueueLimits() int {
	name := os.Getenv("CHANMQ_T_NAME")
	try := func(c string, value int, opts ...OpenOption) {
		q, err := Open(name, append([]OpenOption{Create(0o600), Exclusive()}, opts...)...)
		if err == nil {
			_ = q.Close()
			_ = Unlink(name)
		}
		printChildErr(c, err, value)
	}
	msgMax, msgsizeMax := readLimit("msg_max"), readLimit("msgsize_max")
	try("msg_max", msgMax, MaxMessages(msgMax+1), MessageSize(16))
	try("msgsize_max", msgsizeMax, MaxMessages(1), MessageSize(msgsizeMax+1))
	lim := unix.Rlimit{Cur: 4096, Max: 4096}
	if err := unix.Setrlimit(unix.RLIMIT_MSGQUEUE, &lim); err != nil {
		printChildReport(childReport{Case: "rlimit_msgqueue", Skipped: err.Error()})
		return 0
	}
	try("rlimit_msgqueue", 4096, MaxMessages(min(msgMax, 8)), MessageSize(1024))
	return 0
}

// TestQueueLimitsAsUnprivilegedUser asks, as nobody in a child, for queues
// above msg_max and msgsize_max and above RLIMIT_MSGQUEUE: each error
// matches ErrLimit and names the limit, its value and how to raise it.
// The child gets its own IPC namespace when it can, so nothing it does
// touches the machine's queues.
func TestQueueLimitsAsUnprivilegedUser(t *testing.T) {
	t.Parallel()
	bin := copyTestBinaryWorldExec(t)
	name := testPrefix + "limits-" + strconv.FormatUint(rand.Uint64(), 16)
	t.Cleanup(func() { _ = Unlink(name) })
	spec := childProcSpec{uid: nobodyID, bin: bin, cloneflags: unix.CLONE_NEWIPC}
	if !canCloneIPCNamespace() {
		spec.cloneflags = 0
	}
	m := reportsByCase(runChildAs(t, spec, "fault-limits", "CHANMQ_T_NAME="+name))
	for _, c := range []struct {
		key   string
		words []string
	}{
		{"msg_max", []string{"fs.mqueue.msg_max", "sysctl -w fs.mqueue.msg_max"}},
		{"msgsize_max", []string{"fs.mqueue.msgsize_max", "sysctl -w fs.mqueue.msgsize_max"}},
		{"rlimit_msgqueue", []string{"RLIMIT_MSGQUEUE", "ulimit -q", "limit is 4096 bytes"}},
	} {
		r, ok := m[c.key]
		switch {
		case !ok:
			t.Errorf("%s: child did not report", c.key)
			continue
		case r.Skipped != "":
			t.Logf("%s: skipped in the child: %s", c.key, r.Skipped)
			continue
		case r.Err == "":
			t.Errorf("%s: exceeding it succeeded", c.key)
			continue
		case !r.Limit:
			t.Errorf("%s: error does not match ErrLimit: %s", c.key, r.Err)
		}
		words := c.words
		if c.key != "rlimit_msgqueue" {
			words = append(words, "which is "+strconv.Itoa(r.Value))
		}
		for _, w := range words {
			if !strings.Contains(r.Err, w) {
				t.Errorf("%s: error does not say %q: %s", c.key, w, r.Err)
			}
		}
		t.Logf("%s: %s", c.key, r.Err)
	}
}

// childQueuesMax, run as root in a new IPC namespace, lowers that
// namespace's queues_max and creates queues until that fails.
func childQueuesMax() int {
	const lowered = 3
	if err := os.WriteFile(mqueueSysctlDir+"queues_max", []byte(strconv.Itoa(lowered)), 0); err != nil {
		printChildReport(childReport{Case: "queues_max", Skipped: "cannot lower queues_max in the new IPC namespace: " + err.Error()})
		return 0
	}
	var names []string
	defer func() {
		for _, n := range names {
			_ = Unlink(n)
		}
	}()
	for i := range lowered + 2 {
		name := fmt.Sprintf("%squeues-max-%d", testPrefix, i)
		q, err := Open(name, Create(0o600), MaxMessages(1), MessageSize(16))
		if err != nil {
			printChildErr("queues_max", err, lowered)
			return 0
		}
		names = append(names, name)
		_ = q.Close()
	}
	printChildErr("queues_max", nil, len(names))
	return 0
}

// TestQueuesMaxNamesTheLimit lowers fs.mqueue.queues_max in a child's own
// IPC namespace (never the machine's, which other tests share) and creates
// queues until the kernel refuses: the error matches ErrLimit and names
// queues_max, its value and how to raise it.
func TestQueuesMaxNamesTheLimit(t *testing.T) {
	t.Parallel()
	if !canCloneIPCNamespace() {
		t.Skip("cannot create an IPC namespace, and lowering the machine's queues_max would break other tests")
	}
	r := reportsByCase(runChildAs(t, childProcSpec{cloneflags: unix.CLONE_NEWIPC}, "fault-queues-max"))["queues_max"]
	switch {
	case r.Skipped != "":
		t.Skip(r.Skipped)
	case r.Err == "":
		t.Fatalf("created %d queues with queues_max 3", r.Value)
	case !r.Limit:
		t.Errorf("error does not match ErrLimit: %s", r.Err)
	}
	for _, w := range []string{"fs.mqueue.queues_max is 3", "sysctl -w fs.mqueue.queues_max"} {
		if !strings.Contains(r.Err, w) {
			t.Errorf("error does not say %q: %s", w, r.Err)
		}
	}
	t.Logf("queues_max: %s", r.Err)
}

// cpRlimitReport is what the RLIMIT_MSGQUEUE child found.
type cpRlimitReport struct {
	Created bool   // the queue was created: the limit did not bind
	Limit   bool   // errors.Is(err, ErrLimit)
	EMFILE  bool   // errors.Is(err, unix.EMFILE)
	ENOSPC  bool   // errors.Is(err, unix.ENOSPC)
	Text    string // err.Error()
	Rlimit  uint64 // the limit the child set
}

// cpChildRlimitMsgqueue lowers RLIMIT_MSGQUEUE below what a small queue
// needs, then tries to create one. Lowering the limit is done here, in a
// child, because it is process-wide and would starve parallel tests.
func cpChildRlimitMsgqueue() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MSGQUEUE, &lim); err != nil {
		return cpChildFail("getrlimit: %v", err)
	}
	lim.Cur = 1024
	if err := unix.Setrlimit(unix.RLIMIT_MSGQUEUE, &lim); err != nil {
		return cpChildFail("setrlimit: %v", err)
	}
	rep := cpRlimitReport{Rlimit: lim.Cur}
	name := os.Getenv(cpEnvQueue)
	q, err := Open(name, Create(0o600), Exclusive(), MaxMessages(4), MessageSize(1024))
	if err == nil {
		rep.Created = true
		_ = q.Close()
		_ = Unlink(name)
	} else {
		rep.Limit = errors.Is(err, ErrLimit)
		rep.EMFILE = errors.Is(err, unix.EMFILE)
		rep.ENOSPC = errors.Is(err, unix.ENOSPC)
		rep.Text = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return cpChildFail("encode: %v", err)
	}
	return 0
}

func TestQueueOverRLIMITMSGQUEUEIsErrLimitNamingUlimit(t *testing.T) {
	t.Parallel()
	name := uniqueName(t)
	out := runChildRole(t, "queue-rlimit-msgqueue", cpEnvQueue+"="+name)
	var rep cpRlimitReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	switch {
	case rep.Created:
		t.Skip("the kernel created a queue above RLIMIT_MSGQUEUE: this process has CAP_SYS_RESOURCE")
	case rep.ENOSPC:
		t.Skipf("the machine is out of queues (queues_max) before RLIMIT_MSGQUEUE could be tested: %s", rep.Text)
	}
	if !rep.Limit || !rep.EMFILE {
		t.Fatalf("Open over RLIMIT_MSGQUEUE = %q (ErrLimit %v, EMFILE %v), want ErrLimit wrapping EMFILE", rep.Text, rep.Limit, rep.EMFILE)
	}
	for _, want := range []string{
		"chanmq: open " + name + ": ",
		"RLIMIT_MSGQUEUE",
		fmt.Sprintf("the limit is %d bytes", rep.Rlimit),
		"ulimit -q",
	} {
		if !strings.Contains(rep.Text, want) {
			t.Errorf("error %q does not contain %q", rep.Text, want)
		}
	}
}
