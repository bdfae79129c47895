//go:build linux

package main

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/chanmq/chanmq/internal/mqueuefs"
)

func TestCreateStatLsRm(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "3", "-size", "64", "-mode", "0640")
	mustRun(t, nil, "send", name, "hello")

	out := mustRun(t, nil, "stat", name)
	for _, want := range []string{"name:", name, "messages:", "1 of 3", "message size:", "64 bytes"} {
		if !strings.Contains(out, want) {
			t.Errorf("stat output lacks %q:\n%s", want, out)
		}
	}
	// Mode and owner need the mqueue filesystem: /dev/mqueue, or a
	// temporary mount, which needs root.
	if _, release, _, err := mqueuefs.Dir(); err == nil {
		release()
		for _, want := range []string{"-rw-r----- (0640)", "queued bytes:", "5", "owner:", "uid " + strconv.Itoa(os.Getuid())} {
			if !strings.Contains(out, want) {
				t.Errorf("stat output lacks %q:\n%s", want, out)
			}
		}
		ls := runCmd(t, nil, "ls")
		if ls.code != 0 || !strings.Contains(ls.stdout, name+"\n") {
			t.Errorf("ls: exit %d, output lacks %s:\n%s", ls.code, name, ls.stdout)
		}
		long := runCmd(t, nil, "ls", "-l")
		if !regexpLine(long.stdout, name, "1", "3", "64", "-rw-r-----") {
			t.Errorf("ls -l: no line for %s with 1 3 64 -rw-r-----:\n%s", name, long.stdout)
		}
	} else {
		t.Logf("mode and owner not checked: %v", err)
	}

	mustRun(t, nil, "rm", name)
	wantFail(t, runCmd(t, nil, "stat", name), 1, "does not exist", "chanmq create "+name)
	wantFail(t, runCmd(t, nil, "rm", name), 1, "does not exist", "-f")
	mustRun(t, nil, "rm", "-f", name)
}

func TestBadNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, hint string }{
		{"jobs", `did you mean "/jobs"`},
		{"/a/b", "flat"},
		{"/", `such as "/jobs"`},
	} {
		for _, args := range [][]string{
			{"create", tc.name},
			{"send", tc.name, "x"},
			{"recv", tc.name},
			{"stat", tc.name},
			{"rm", tc.name},
		} {
			wantFail(t, runCmd(t, nil, args...), 1, "invalid queue name", tc.hint)
		}
	}
}

func TestMissingQueue(t *testing.T) {
	t.Parallel()
	name := queueName(t)
	for _, args := range [][]string{
		{"send", name, "x"},
		{"recv", name},
		{"stat", name},
	} {
		wantFail(t, runCmd(t, nil, args...), 1, "queue does not exist", "chanmq create "+name)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	name := newQueue(t, "-max", "1", "-size", "16")
	for _, args := range [][]string{
		{"frobnicate"},
		{"send"},
		{"recv"},
		{"stat"},
		{"rm"},
		{"create", name, "-max", "0"},
		{"create", name, "-mode", "0999"},
		{"create", name, "-mode", "01777"},
		{"create", name, "extra"},
		{"recv", name, "-bogus"},
		{"recv", name, "-n", "0"},
		{"recv", name, "-follow", "-n", "3"},
		{"recv", name, "-json", "-raw"},
		{"recv", name, "-raw", "-priority"},
		{"recv", name, "-nonblock", "-timeout", "1s"},
		{"recv", name, "-timeout", "soon"},
		{"send", name, "-0", "-raw"},
		{"send", name, "-raw", "message"},
		{"send", name, "-priority", "40000", "x"},
		{"send", name, "-nonblock", "-timeout", "1s", "x"},
		{"ls", "extra"},
	} {
		r := runCmd(t, nil, args...)
		wantFail(t, r, 2)
		if args[0] != "frobnicate" && !strings.Contains(r.stderr, "chanmq "+args[0]+" -h") {
			t.Errorf("%q: stderr %q does not point to -h", args, r.stderr)
		}
	}
	if r := runCmd(t, nil); r.code != 2 || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("no arguments: exit %d, stderr %q; want 2 and the usage", r.code, r.stderr)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, c := range commands {
		cmd := c.name
		out := mustRun(t, nil, cmd, "-h")
		if !strings.HasPrefix(out, "Usage: chanmq "+cmd) || !strings.Contains(out, "Exit status") {
			t.Errorf("%s -h printed:\n%s", cmd, out)
		}
	}
	out := mustRun(t, nil, "-h")
	for _, c := range commands {
		cmd := c.name
		if !strings.Contains(out, "chanmq "+cmd) {
			t.Errorf("chanmq -h does not mention %s:\n%s", cmd, out)
		}
	}
	if out := mustRun(t, nil, "help", "recv"); !strings.Contains(out, "-follow") {
		t.Errorf("help recv printed:\n%s", out)
	}
}

// TestHelpCommandIsDashH checks that 'chanmq help CMD' prints what
// 'chanmq CMD -h' prints, flags included.
func TestHelpCommandIsDashH(t *testing.T) {
	t.Parallel()
	for _, c := range commands {
		if help, h := mustRun(t, nil, "help", c.name), mustRun(t, nil, c.name, "-h"); help != h {
			t.Errorf("chanmq help %s printed:\n%s\nchanmq %s -h printed:\n%s", c.name, help, c.name, h)
		}
	}
}
