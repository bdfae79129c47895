//go:build linux

package chanmq

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// interopJob is the value Go and the Python and C peers exchange: every
// JSON type, characters encoding/json escapes (<, >, &, U+2028), non-ASCII
// text, and an integer beyond float64's exact range.
type interopJob struct {
	ID     int64             `json:"id"`
	Path   string            `json:"path"`
	Width  int               `json:"width"`
	Scale  float64           `json:"scale"`
	Urgent bool              `json:"urgent"`
	Tags   []string          `json:"tags"`
	Meta   map[string]string `json:"meta"`
	Note   *string           `json:"note"`
}

// newInteropQueue creates a test queue of one message of 1 KiB, room for
// an interopJob in any of its encodings.
func newInteropQueue(t *testing.T) *Queue {
	t.Helper()
	return newTestQueue(t, MaxMessages(1), MessageSize(1024))
}

// queueHoldingJSON returns a new interop queue holding v, encoded with
// the JSON codec's Append, at priority prio.
func queueHoldingJSON(t *testing.T, v interopJob, prio uint) *Queue {
	t.Helper()
	q := newInteropQueue(t)
	msg, err := JSON[interopJob]().Append(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Send(t.Context(), msg, prio); err != nil {
		t.Fatal(err)
	}
	return q
}

func sampleInteropJob() interopJob {
	return interopJob{
		ID:     1<<53 + 1,
		Path:   "photos/café <1> & \"q\" \u2028 日本 🎉.png",
		Width:  640,
		Scale:  0.1,
		Urgent: true,
		Tags:   []string{"thumb", ""},
		Meta:   map[string]string{"owner": "ålice", "z": "last"},
		Note:   nil,
	}
}

// TestJSONInteropWithPython proves that the JSON codec's messages are plain
// JSON text to another language, with no hidden header or framing: a
// Python program (testdata/mqpeer.py, standard library only, calling
// glibc's mq_* through ctypes) receives exactly json.Marshal's bytes and
// json.loads them into the same fields; and what Python's json.dumps sends
// (its own spacing and escapes, plus a field the Go type lacks) decodes
// with JSON[T]().Decode into the value it described.
func TestJSONInteropWithPython(t *testing.T) {
	t.Parallel()
	skipWithoutSubprocesses(t)
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on PATH: cannot run the Python peer")
	}
	script := filepath.Join("testdata", "mqpeer.py")
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		cmd := exec.Command(python, append([]string{script}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			if args[0] == "check" {
				t.Skipf("python3 cannot call mq_open (%v): %s", err, stderr.String())
			}
			t.Fatalf("mqpeer.py %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
	run(t, "check")
	job := sampleInteropJob()
	codec := JSON[interopJob]()

	t.Run("go-sends-python-receives", func(t *testing.T) {
		t.Parallel()
		q := queueHoldingJSON(t, job, 5)
		var got struct {
			Priority uint              `json:"priority"`
			Length   int               `json:"length"`
			Hex      string            `json:"hex"`
			Value    json.RawMessage   `json:"value"`
			Types    map[string]string `json:"types"`
		}
		out := run(t, "recvjson", q.Name())
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("mqpeer.py printed %q: %v", out, err)
		}
		want, _ := json.Marshal(job)
		if got.Hex != hex.EncodeToString(want) || got.Length != len(want) || got.Priority != 5 {
			t.Fatalf("Python received %d bytes %s at priority %d;\nwant json.Marshal's %d bytes %x at priority 5",
				got.Length, got.Hex, got.Priority, len(want), want)
		}
		// Python's json.loads saw the same fields with the same values
		// (Python printed them back as JSON) and the JSON types.
		var seen interopJob
		if err := json.Unmarshal(got.Value, &seen); err != nil || !reflect.DeepEqual(seen, job) {
			t.Fatalf("Python's json.loads gave %s, which reads as %+v (%v);\nwant %+v", got.Value, seen, err, job)
		}
		wantTypes := map[string]string{"id": "int", "path": "str", "width": "int", "scale": "float",
			"urgent": "bool", "tags": "list", "meta": "dict", "note": "NoneType"}
		if !reflect.DeepEqual(got.Types, wantTypes) {
			t.Fatalf("Python sees the keys and types %v, want %v", got.Types, wantTypes)
		}
	})
	t.Run("python-sends-go-receives", func(t *testing.T) {
		t.Parallel()
		q := newInteropQueue(t)
		described, _ := json.Marshal(job)
		sentHex := strings.TrimSpace(run(t, "sendjson", q.Name(), "9", string(described)))
		msg, prio, err := q.Receive(t.Context())
		if err != nil || prio != 9 || hex.EncodeToString(msg) != sentHex {
			t.Fatalf("Go received %x prio %d %v; Python sent %s prio 9", msg, prio, err, sentHex)
		}
		if bytes.Equal(msg, described) || !bytes.Contains(msg, []byte(`": `)) {
			t.Fatalf("Python sent %q, expected its own formatting, not Go's", msg)
		}
		got, err := codec.Decode(msg)
		if err != nil || !reflect.DeepEqual(got, job) {
			t.Fatalf("Decode of Python's %q = %+v, %v;\nwant %+v", msg, got, err, job)
		}
	})
}

// TestJSONInteropWithC is the same check against C (testdata/mqpeer.c,
// glibc's mq_receive and mq_send): the message C receives is json.Marshal's
// bytes exactly, and JSON text C sends decodes.
func TestJSONInteropWithC(t *testing.T) {
	t.Parallel()
	peer := buildCPeer(t)
	run := func(t *testing.T, args ...string) string { return runCPeer(t, peer, args...) }
	job := sampleInteropJob()
	codec := JSON[interopJob]()

	t.Run("go-sends-c-receives", func(t *testing.T) {
		t.Parallel()
		q := queueHoldingJSON(t, job, 3)
		want, _ := json.Marshal(job)
		if got := run(t, "recv", q.Name()); got != fmt.Sprintf("3 %x\n", want) {
			t.Fatalf("C received %q;\nwant json.Marshal's bytes %q", got, fmt.Sprintf("3 %x\n", want))
		}
	})
	t.Run("c-sends-go-receives", func(t *testing.T) {
		t.Parallel()
		q := newInteropQueue(t)
		// JSON as a C program might printf it: its own key order and spacing,
		// raw UTF-8, an unknown key, and a trailing newline.
		text := "{ \"urgent\": false, \"path\": \"a/\u00e9.png\", \"id\": -7, \"extra\": [1, {\"x\": null}],\n" +
			"  \"tags\": [], \"meta\": {}, \"scale\": 1e-3, \"width\": 1, \"note\": \"n\" }\n"
		run(t, "send", q.Name(), "0", hex.EncodeToString([]byte(text)))
		msg, _, err := q.Receive(t.Context())
		if err != nil || string(msg) != text {
			t.Fatalf("Go received %q, %v; C sent %q", msg, err, text)
		}
		note := "n"
		want := interopJob{ID: -7, Path: "a/é.png", Width: 1, Scale: 0.001, Tags: []string{}, Meta: map[string]string{}, Note: &note}
		if got, err := codec.Decode(msg); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Decode of C's message = %+v, %v;\nwant %+v", got, err, want)
		}
	})
}
