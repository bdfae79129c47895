//go:build linux

package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/chanmq/chanmq"
	"go.uber.org/goleak"
)

// TestMain runs the child side when the test binary is re-executed as a
// benchmark peer, and otherwise the tests, checking that none leaks a
// goroutine.
func TestMain(m *testing.M) {
	if code, ok := childMain(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}

// TestShortRun runs every scenario of the -short mode end to end and checks
// that each printed its machine-readable lines. It asserts no timing: the
// machine is shared and the figures are noise at this size.
func TestShortRun(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-short"}, &out); err != nil {
		t.Fatalf("run -short: %v\noutput:\n%s", err, out.String())
	}
	text := out.String()
	hasC := !strings.Contains(text, "# no C reference")
	want := []string{
		"bench=pair size=256 impl=chanmq ns_per_op=",
		"bench=pair size=8192 impl=pipe ",
		"bench=pair size=16 impl=seqpacket ",
		"bench=stream size=16 impl=chanmq msgs_per_s=",
		"bench=stream size=256 impl=chanmq ",
		"bench=stream size=4096 impl=chanmq ",
		"bench=stream size=8192 impl=chanmq ",
		"bench=stream size=256 impl=pumps msgs_per_s=",
		"bench=stream size=256 impl=pumps-buf16 msgs_per_s=",
		"bench=stream size=256 impl=pumps-gmp1 msgs_per_s=",
		"bench=stream size=256 impl=typed-bin msgs_per_s=",
		"bench=stream size=256 impl=typed-json msgs_per_s=",
		"bench=stream size=256 impl=pumps-json msgs_per_s=",
		"bench=stream size=256 impl=typed-bin-gmp1 msgs_per_s=",
		"bench=stream size=256 impl=typed-json-gmp1 msgs_per_s=",
		"bench=stream size=256 impl=pumps-json-gmp1 msgs_per_s=",
		" ratio_vs_pumps=",
		" ratio_vs_pumps-json=",
		" ratio_vs_pumps-gmp1=",
		" ratio_vs_pumps-json-gmp1=",
		"bench=stream size=256 impl=pipe ",
		"bench=stream size=256 impl=seqpacket ",
		"bench=pingpong size=64 pin=none impl=chanmq p50_us=",
		"bench=pingpong size=64 pin=none impl=pumps ",
		"bench=pingpong size=64 pin=none impl=pipe ",
		"bench=pingpong size=64 pin=none impl=seqpacket ",
		"bench=cancel impl=chanmq p50_us=",
		"bench=cancel impl=pipe ",
		"bench=idle goroutines=1000 queues=20 impl=chanmq threads=",
		"bench=memory pairs=20000 impl=chanmq rss_before_kib=",
	}
	if hasC {
		want = append(want,
			"bench=pair size=256 impl=c ns_per_op=",
			"bench=stream size=8192 impl=c msgs_per_s=",
			"bench=pingpong size=64 pin=none impl=c p50_us=",
			"ratio_vs_c=",
			"ratio_p99_vs_c=",
		)
	}
	if !strings.Contains(text, "# no taskset") {
		want = append(want, "bench=pingpong size=64 pin=cpu0 impl=chanmq p50_us=")
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", text)
	}
}

// TestTypedRecord checks that the typed stream's records encode to
// exactly the message size, with each codec, and decode back.
func TestTypedRecord(t *testing.T) {
	for _, kind := range []string{"typed-bin", "typed-json"} {
		for _, size := range []int{64, 128, 129, 130, 256, 8192} {
			rec, err := newRecord(kind, size)
			if err != nil {
				t.Fatal(err)
			}
			codec := chanmq.Binary[record]()
			if kind == "typed-json" {
				codec = chanmq.JSON[record]()
			}
			rec.Seq = seqBase + 99999
			b, err := codec.Append(nil, rec)
			if err != nil || len(b) != size {
				t.Fatalf("%s size %d: %d bytes, %v", kind, size, len(b), err)
			}
			back, err := codec.Decode(b)
			if err != nil || back != rec {
				t.Fatalf("%s size %d: decoded %+v, %v", kind, size, back, err)
			}
		}
	}
	var r record
	for _, bad := range []string{"", "short", strings.Repeat("\x00", 16) + "\x05ab", strings.Repeat("\x00", 18) + "x"} {
		if err := r.UnmarshalBinary([]byte(bad)); err == nil {
			t.Errorf("UnmarshalBinary(%q) succeeded", bad)
		}
	}
}

// TestParseKV checks the parsing of a peer's "key=value" line.
func TestParseKV(t *testing.T) {
	kv := parseKV("msgs=99 elapsed_ns=1500 junk\n")
	if kv["msgs"] != 99 || kv["elapsed_ns"] != 1500 || len(kv) != 2 {
		t.Errorf("parseKV = %v", kv)
	}
}
