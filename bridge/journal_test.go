//go:build linux

package mqbridge

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A journal appends into its reserved space (a mapping), then past it with
// write(2); every record reads back, and a torn record in the reserved
// space ends the records there.
func TestJournalAppendsPastItsReservedSpace(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "j")
		jf := journalFile{path: path, reserve: 4096, fsync: fsync}
		if err := jf.rewrite(outHeader.append(nil)); err != nil {
			t.Fatal(err)
		}
		if !fsync && jf.m == nil {
			t.Log("no mapping on this filesystem: write(2) only")
		}
		const n = 100 // 100 records of 109 bytes: past the 4096 reserved
		for i := range n {
			if err := jf.append(appendRecord(nil, recordMsg, []byte(strings.Repeat(string(rune('a'+i%26)), 100)))); err != nil {
				t.Fatal(err)
			}
		}
		end := jf.size
		if err := jf.close(); err != nil {
			t.Fatal(err)
		}
		count := func() int {
			got := 0
			if _, err := loadJournal(path, outHeader, func(recordKind, []byte) error { got++; return nil }); err != nil {
				t.Fatal(err)
			}
			return got
		}
		if got := count(); got != n {
			t.Errorf("fsync=%v: read %d records back, want %d", fsync, got, n)
		}
		if int(end) != len(outHeader.append(nil))+n*109 {
			t.Errorf("fsync=%v: size %d, want %d", fsync, end, len(outHeader.append(nil))+n*109)
		}

		// Torn inside the reserved space: the records before it stay.
		jf = journalFile{path: path, reserve: 1 << 20, fsync: fsync}
		if err := jf.rewrite(outHeader.append(nil)); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := jf.append(appendRecord(nil, recordAck, []byte("id"))); err != nil {
				t.Fatal(err)
			}
		}
		torn := appendRecord(nil, recordMsg, []byte("partial message"))
		if err := jf.append(torn[:len(torn)-4]); err != nil {
			t.Fatal(err)
		}
		jf.close()
		if got := count(); got != 3 {
			t.Errorf("fsync=%v: with a torn tail, read %d records, want 3", fsync, got)
		}
	}
}

// A journal is read only by the direction, and the format version, that
// wrote it; anything else is refused with ErrJournalHeader, before a
// record is read.
func TestJournalOfAnotherDirectionOrVersionIsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name     string
		contents []byte
	}{
		{"the other direction's", inHeader.append(nil)},
		{"another version's", journalHeader{direction: "out", version: outHeader.version + 1}.append(nil)},
		{"not a journal", []byte("some other file\n")},
		{"no", nil},
	} {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, appendRecord(c.contents, recordAck, []byte("id")), 0o600); err != nil {
			t.Fatal(err)
		}
		records := 0
		_, err := loadJournal(path, outHeader, func(recordKind, []byte) error { records++; return nil })
		if !errors.Is(err, ErrJournalHeader) || records != 0 {
			t.Errorf("%s header: got %v after %d records, want ErrJournalHeader before any", c.name, err, records)
		} else {
			t.Logf("%s header: %v", c.name, err)
		}
	}
}
