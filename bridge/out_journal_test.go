//go:build linux

package mqbridge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func newTestOut(t *testing.T, path string) *outBridge {
	t.Helper()
	b := &outBridge{cfg: &Out{Subject: "s", Journal: path}, stream: "S", inflight: map[string]flight{}}
	return b
}

func TestOutJournalRecoversUnacknowledgedInOrderWithTheirIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	b := newTestOut(t, path)
	if _, err := b.recover(); err != nil {
		t.Fatal(err)
	}
	first := b.epoch
	var ids []string
	for i, d := range []string{"zero", "one", "two", "three"} {
		m, err := b.journal([]byte(d), uint(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	}
	b.onAckID(ids[1])
	b.mu.Lock()
	if err := b.flushAcksLocked(); err != nil {
		t.Fatal(err)
	}
	b.mu.Unlock()
	// A torn record at the tail, as a kill in the middle of an append
	// could leave (in the reserved space, when the journal has one).
	torn := appendRecord(nil, recordMsg, []byte("partial message"))
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(torn[:len(torn)-3], b.jf.size)
	f.Close()
	b.jf.close()

	b2 := newTestOut(t, path)
	got, err := b2.recover()
	if err != nil {
		t.Fatal(err)
	}
	b2.jf.close() // as the bridge that recovered it stops: the next one takes the journal
	var gotIDs []string
	for _, m := range got {
		gotIDs = append(gotIDs, m.Header.Get(jetstream.MsgIDHeader)+"="+string(m.Data)+"/"+m.Header.Get(PriorityHeader))
	}
	want := []string{ids[0] + "=zero/", ids[2] + "=two/2", ids[3] + "=three/3"}
	if strings.Join(gotIDs, " ") != strings.Join(want, " ") {
		t.Errorf("recovered %v, want %v", gotIDs, want)
	}
	if b2.epoch == first || strings.HasPrefix(ids[0], b2.epoch) {
		t.Errorf("the restart reused the epoch %q", b2.epoch)
	}
	// The rewritten journal holds exactly those three.
	b3 := newTestOut(t, path)
	again, err := b3.recover()
	if err != nil {
		t.Fatal(err)
	}
	b3.jf.close()
	if len(again) != 3 {
		t.Errorf("after the rewrite the journal holds %d messages, want 3", len(again))
	}
}

func TestOutJournalRewriteKeepsInFlightAndNeverReusesIDs(t *testing.T) {
	old := compactBytes
	compactBytes = 4096
	t.Cleanup(func() { compactBytes = old })
	path := filepath.Join(t.TempDir(), "out")
	b := newTestOut(t, path)
	if _, err := b.recover(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	epochs := map[string]bool{}
	var kept []string
	for i := range 2000 {
		m, err := b.journal(make([]byte, 100), 0)
		if err != nil {
			t.Fatal(err)
		}
		id := m.Header.Get(jetstream.MsgIDHeader)
		if seen[id] {
			t.Fatalf("ID %s reused", id)
		}
		seen[id] = true
		epochs[b.epoch] = true
		if i%100 == 7 {
			kept = append(kept, id) // never acknowledged
		} else {
			b.onAckID(id)
		}
	}
	b.mu.Lock()
	if err := b.flushAcksLocked(); err != nil { // as Run does when it stops
		t.Fatal(err)
	}
	b.mu.Unlock()
	b.jf.close()
	if len(epochs) < 10 {
		t.Errorf("only %d epochs: the journal was not rewritten as often as expected", len(epochs))
	}
	b2 := newTestOut(t, path)
	got, err := b2.recover()
	if err != nil {
		t.Fatal(err)
	}
	b2.jf.close()
	var ids []string
	for _, m := range got {
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	}
	if strings.Join(ids, " ") != strings.Join(kept, " ") {
		t.Errorf("after %d rewrites recovered %v, want the unacknowledged %v", len(epochs), ids, kept)
	}
}
