//go:build linux

package mqbridge_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's first run, run as written (issue 17: "the README's
// commands are run by a test from a clean directory"). It installs
// nats-server and the nats CLI from the Go module proxy (a few minutes
// of building on a small machine), so it runs only when
// CHANMQ_README_TEST is set, as .ci/run does.
const (
	readmeTestEnv  = "CHANMQ_README_TEST"
	readmeChildEnv = "CHANMQ_README_TEST_CHILD"
	// readmeMarker starts the comment line above the block the test runs.
	readmeMarker = "<!-- first run: TestREADMEFirstRun"
	// readmeSkip starts the child's line that says why it skipped.
	readmeSkip = "README-SKIP: "
)

// Bounds: each line, and the whole run (the installs compile nats-server
// and the nats CLI; about 2 minutes on 2 busy cores).
const (
	readmeLineTimeout  = 8 * time.Minute
	readmeReadyTimeout = time.Minute
	readmeRunTimeout   = 12 * time.Minute
)

// readyWhen is what a command started in the background writes once it
// is ready for the next line, as a person at a terminal would wait for
// it: the server says it is ready; the bridge has opened (or created) its
// queues and connected.
var readyWhen = map[string]string{
	"nats-server":   "Server is ready",
	"chanmq-bridge": "msg=connected",
}

// TestREADMEFirstRun runs the README's first-run block line by line, as
// written, from the repository's root and an empty home directory, with
// the commands it installs first on the PATH. The run happens in a child
// process in an IPC namespace of its own (the block's queues are /jobs and
// /jobs-in: no other queue of those names is touched) and a PID namespace
// of its own (whatever the block starts in the background dies with it).
// The block's server listens on 127.0.0.1:4222, its default port; the test
// skips when that port is taken.
func TestREADMEFirstRun(t *testing.T) {
	if os.Getenv(readmeChildEnv) != "" {
		runFirstRun(t)
		return
	}
	if os.Getenv(readmeTestEnv) == "" {
		t.Skipf("set %s=1 to run the README's first run (it installs nats-server and the nats CLI from the Go module proxy)", readmeTestEnv)
	}
	if out, err := exec.Command("unshare", "--ipc", "--pid", "--fork", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make namespaces here: unshare --ipc --pid: %v %s", err, out)
	}
	readmeBlock(t) // fail here, not in the child, if the README lost its block

	ctx, cancel := context.WithTimeout(context.Background(), readmeRunTimeout)
	defer cancel()
	// --kill-child: if the test gives up and kills unshare, the child (the
	// namespace's init) dies, and every process of the namespace with it.
	cmd := exec.CommandContext(ctx, "unshare", "--ipc", "--pid", "--kill-child",
		os.Args[0], "-test.run=^TestREADMEFirstRun$", "-test.v", "-test.timeout="+readmeRunTimeout.String())
	cmd.Env = append(os.Environ(), readmeChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if i := strings.Index(string(out), readmeSkip); i >= 0 && err == nil {
		t.Skip(strings.SplitN(string(out[i+len(readmeSkip):]), "\n", 2)[0])
	}
	if err != nil {
		t.Fatalf("the README's first run failed (%v):\n%s", err, out)
	}
	t.Logf("%s", out)
}

// runFirstRun is the child's side: it runs each line of the block and
// fails at the first that does not do what the README says.
func runFirstRun(t *testing.T) {
	if os.Getpid() != 1 {
		t.Fatal("the README's first run must be the init of a PID namespace of its own (unshare --pid --fork)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:4222")
	if err != nil {
		fmt.Printf("%sport 127.0.0.1:4222, where the README's server listens, is taken: %v\n", readmeSkip, err)
		return
	}
	l.Close()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	// Everything the block started in the background is ours (we are the
	// namespace's init): kill it before the home directory is removed.
	t.Cleanup(killNamespace)
	env := firstRunEnv(t, home)
	cwd := root
	outputs := map[string]string{} // each line's output file, by line
	for i, l := range readmeBlock(t) {
		t.Logf("$ %s", l.text)
		outFile := filepath.Join(home, fmt.Sprintf(".line-%02d.out", i))
		pwdFile := filepath.Join(home, ".pwd")
		// The line as written, then where it left the shell, so that a
		// `cd` carries over to the next line as in a terminal.
		script := l.text + "\nstatus=$?\npwd >" + pwdFile + "\nexit $status"
		ctx, cancel := context.WithTimeout(context.Background(), readmeLineTimeout)
		cmd := exec.CommandContext(ctx, "bash", "-c", script)
		cmd.Dir, cmd.Env = cwd, env
		f, err := os.Create(outFile)
		if err != nil {
			t.Fatal(err)
		}
		// A file, not a pipe: a command left running in the background
		// would hold a pipe open and Wait would wait for it.
		cmd.Stdout, cmd.Stderr = f, f
		err = cmd.Run()
		cancel()
		f.Close()
		out, _ := os.ReadFile(outFile)
		if err != nil {
			t.Fatalf("line %q: %v\n%s", l.text, err, out)
		}
		if pwd, err := os.ReadFile(pwdFile); err == nil {
			cwd = strings.TrimSpace(string(pwd))
		}
		outputs[l.text] = outFile
		switch {
		case l.background:
			waitReady(t, l, outFile)
		case l.prints != "":
			if got := strings.TrimSpace(string(out)); got != l.prints {
				t.Fatalf("line %q printed %q, the README says %q", l.text, got, l.prints)
			}
		}
	}
	// Following the README gives no warning (issue 17 item 7: the
	// in-bridge warned at every start about the stream the README makes),
	// from the bridges (slog) or the server ([WRN]), in the background or
	// not.
	for text, f := range outputs {
		out, _ := os.ReadFile(f)
		for l := range strings.Lines(string(out)) {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "[WRN]") || strings.Contains(l, "[ERR]") {
				t.Errorf("line %q logged a warning or an error: %s", text, l)
			}
		}
	}
}

// waitReady waits until the background command of l wrote what says it
// is ready (readyWhen).
func waitReady(t *testing.T, l readmeLine, outFile string) {
	t.Helper()
	name := strings.Fields(l.text)[0]
	marker, ok := readyWhen[name]
	if !ok {
		t.Fatalf("line %q starts %s in the background, and the test does not know what it writes when ready: add it to readyWhen", l.text, name)
	}
	deadline := time.Now().Add(readmeReadyTimeout)
	for {
		out, _ := os.ReadFile(outFile)
		switch {
		case strings.Contains(string(out), marker):
			return
		case strings.Contains(string(out), "level=ERROR"):
			t.Fatalf("line %q: %s failed:\n%s", l.text, name, out)
		case time.Now().After(deadline):
			t.Fatalf("line %q: %s did not write %q within %v:\n%s", l.text, name, marker, readmeReadyTimeout, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// firstRunEnv is the environment of the block's lines: this one's, with
// an empty home, no NATS settings, and the commands the block installs
// (GOBIN) first on the PATH. The Go caches stay where they are, so that
// modules already downloaded are not downloaded again.
func firstRunEnv(t *testing.T, home string) []string {
	t.Helper()
	goenv, err := exec.Command("go", "env", "GOPATH", "GOMODCACHE", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	paths := strings.Fields(string(goenv))
	if len(paths) != 3 {
		t.Fatalf("go env GOPATH GOMODCACHE GOCACHE printed %q", goenv)
	}
	bin := filepath.Join(home, "bin")
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "NATS_"), strings.HasPrefix(k, "XDG_"), strings.HasPrefix(k, "CHANMQ_"),
			k == "HOME", k == "GOBIN", k == "PATH", k == "GOPATH", k == "GOMODCACHE", k == "GOCACHE", k == "GOFLAGS":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "GOBIN="+bin, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GOPATH="+paths[0], "GOMODCACHE="+paths[1], "GOCACHE="+paths[2])
}

// killNamespace kills every other process of this PID namespace, whose
// init this process is, and reaps them.
func killNamespace() {
	if os.Getpid() != 1 {
		return // never outside a namespace of our own: kill(-1) would reach every process we may signal
	}
	_ = syscall.Kill(-1, syscall.SIGKILL)
	for {
		if _, err := syscall.Wait4(-1, nil, 0, nil); errors.Is(err, syscall.ECHILD) {
			return
		} else if err != nil && !errors.Is(err, syscall.EINTR) {
			return
		}
	}
}

// readmeLine is a command line of the README's block.
type readmeLine struct {
	text       string // the command, without its comment
	background bool   // it ends with "&"
	prints     string // what its comment says it prints ("# prints hello")
}

// readmeBlock returns the command lines of the fenced block below the
// README's marker comment: comments and blank lines dropped.
func readmeBlock(t testing.TB) []readmeLine {
	t.Helper()
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []readmeLine
	state := 0 // 0: before the marker, 1: before the fence, 2: in the block
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s := sc.Text()
		switch {
		case state == 0 && strings.HasPrefix(s, readmeMarker):
			state = 1
		case state == 1 && strings.HasPrefix(s, "```"):
			state = 2
		case state == 2 && strings.HasPrefix(s, "```"):
			if len(lines) == 0 {
				t.Fatal("README.md: the first-run block is empty")
			}
			return lines
		case state == 2:
			text, comment := splitComment(s)
			if text == "" {
				continue
			}
			l := readmeLine{text: text}
			if rest, ok := strings.CutSuffix(text, "&"); ok && !strings.HasSuffix(rest, "&") {
				l.background = true
			}
			l.prints, _ = strings.CutPrefix(comment, "prints ")
			if l.prints == comment {
				l.prints = ""
			}
			lines = append(lines, l)
		}
	}
	t.Fatalf("README.md has no fenced block after a line starting %q", readmeMarker)
	return nil
}

// splitComment splits a shell line at its comment: a "#" that starts a
// word outside quotes.
func splitComment(s string) (text, comment string) {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
		}
	}
	return strings.TrimSpace(s), ""
}
