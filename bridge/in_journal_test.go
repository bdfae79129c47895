//go:build linux

package mqbridge

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A version 1 in journal (sequences without the time their message was
// stored) of this stream incarnation is read: its sequences match any
// message of that sequence; one of another incarnation is dropped; one of
// a version this bridge does not know is refused.
func TestInJournalReadsVersion1AndRefusesANewerOne(t *testing.T) {
	dir := t.TempDir()
	created := time.Unix(1700000000, 42)
	owner := journalOwner("S", created, "d")
	v1 := journalHeader{direction: "in", version: 1}.append(nil)
	v1 = appendRecord(v1, recordOwner, owner)
	for _, seq := range []uint64{5, 6} {
		var p [8]byte
		for i := range 8 {
			p[i] = byte(seq >> (8 * i))
		}
		v1 = appendRecord(v1, recordSent, p[:])
	}
	load := func(contents []byte, identity []byte) (*inBridge, error) {
		path := filepath.Join(dir, "j")
		if err := os.WriteFile(path, contents, 0o600); err != nil {
			t.Fatal(err)
		}
		b := &inBridge{cfg: &In{Journal: path}, identity: identity, sent: map[uint64]int64{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		err := b.recover()
		b.jf.close()
		return b, err
	}
	b, err := load(v1, owner)
	if err != nil {
		t.Fatal(err)
	}
	if !b.sentBefore(5, 123) || !b.sentBefore(6, 456) || b.sentBefore(7, 123) {
		t.Errorf("version 1 sequences 5 and 6 should match any message of theirs, and only them: %v", b.sent)
	}
	if b, err := load(v1, journalOwner("S", created.Add(time.Second), "d")); err != nil || len(b.sent) != 0 {
		t.Errorf("a journal of another incarnation of the stream: loaded %v (%v), want nothing", b.sent, err)
	}
	newer := appendRecord(journalHeader{direction: "in", version: inHeader.version + 1}.append(nil), recordOwner, owner)
	if _, err := load(newer, owner); !errors.Is(err, ErrJournalHeader) {
		t.Errorf("a newer version: got %v, want ErrJournalHeader", err)
	} else {
		t.Log(err)
	}
}

// What a version 2 journal records comes back after a rewrite: the
// sequences above the confirmed floor with their stored times (the same
// sequence with another time is another message), and the floor.
func TestInJournalRewriteKeepsWhatIsAboveTheConfirmedFloor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	owner := journalOwner("S", time.Unix(1700000000, 0), "d")
	b := &inBridge{cfg: &In{Journal: path}, identity: owner, sent: map[uint64]int64{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := b.recover(); err != nil {
		t.Fatal(err)
	}
	b.floor = durableFloor{consumer: time.Unix(1700000001, 0), confirmed: 10, resume: 12}
	if err := b.rewrite(); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(9); seq <= 12; seq++ {
		if err := b.journalSent(seq, int64(seq*1000)); err != nil {
			t.Fatal(err)
		}
	}
	b.jf.close()
	c := &inBridge{cfg: &In{Journal: path}, identity: owner, sent: map[uint64]int64{}, log: b.log}
	if err := c.recover(); err != nil {
		t.Fatal(err)
	}
	if err := c.rewrite(); err != nil { // drops 9 and 10, at or below the floor
		t.Fatal(err)
	}
	c.jf.close()
	if len(c.sent) != 2 || !c.sentBefore(11, 11000) || !c.sentBefore(12, 12000) || c.sentBefore(12, 99) {
		t.Errorf("after a rewrite at floor 10: %v, want 11 and 12 with their times", c.sent)
	}
	if c.floor.confirmed != 10 || c.floor.resume != 12 || !c.floor.consumer.Equal(b.floor.consumer) {
		t.Errorf("floor read back %+v, want %+v", c.floor, b.floor)
	}
}

// A floor is confirmed by a second reading at least floorSettle after the
// first, over the same connection, and is the smaller of the two.
func TestInFloorIsConfirmedOnlyBySecondReadingOnOneConnection(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	var f durableFloor
	f.follow(t0)
	steps := []struct {
		floor      uint64
		asked      time.Duration
		reconnects uint64
		confirmed  uint64
	}{
		{100, 0, 0, 0},                    // first reading
		{150, floorSettle / 2, 0, 0},      // too soon: the first one waits
		{120, floorSettle, 0, 100},        // confirms the first: min(100, 120)
		{90, 3 * floorSettle, 0, 100},     // lower (a restart unseen?): min(120, 90) does not lower it
		{500, 4 * floorSettle, 1, 100},    // reconnected: starts over
		{600, 5 * floorSettle, 1, 500},    // confirms 500
		{700, 5*floorSettle + 10, 1, 500}, // too soon
	}
	for i, s := range steps {
		f.observe(s.floor, at(s.asked), at(s.asked), s.reconnects)
		if f.confirmed != s.confirmed {
			t.Fatalf("step %d (%+v): confirmed %d, want %d", i, s, f.confirmed, s.confirmed)
		}
	}
	if f.resume != 500 {
		t.Errorf("resume %d, want 500", f.resume)
	}
	f.follow(t0.Add(time.Hour)) // another consumer incarnation
	if f.confirmed != 0 || f.resume != 500 {
		t.Errorf("after another consumer: confirmed %d, resume %d; want 0 and 500", f.confirmed, f.resume)
	}
}
