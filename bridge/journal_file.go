package mqbridge

import (
	"fmt"
	"os"
	"path/filepath"
)

// Writing a journal (journal.go describes the format).
//
// Without fsync a journal is appended by copying into a shared mapping of
// space reserved beforehand (fallocate): a store into it lands in the page
// cache as write(2) would, so it survives a kill of the process the moment
// the copy is done, without a syscall per record. With fsync, and where
// the space cannot be reserved or mapped, or once it is used up, each
// append is one write(2) at the end of the records.
//
// A rewrite (compaction) writes a new file beside the old one, syncs it and
// renames it over, so the journal is always one whole generation or the
// next.

// journalFile is a journal held by this process: its lock, its open file
// and what writing it needs. open takes it; close releases it.
type journalFile struct {
	path  string
	lock  *os.File // held from open to close (lockJournal): one bridge per journal
	f     *os.File
	size  int64 // bytes of header and records; what follows is reserved space (zeros)
	fsync bool
	// reserve, if not 0, is how many bytes a rewrite reserves and maps for
	// appending (ignored with fsync).
	reserve int64
	m       []byte // the mapping of the reserved space, or nil
}

// rewrite replaces the journal at path with contents (a header and the
// records still needed) atomically: write a temporary file, sync it,
// rename it over, sync the directory. It leaves jf open for appending to
// the new file.
func (jf *journalFile) rewrite(contents []byte) error {
	if err := os.MkdirAll(filepath.Dir(jf.path), 0o700); err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	tmp := jf.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600) // read too: a shared writable mapping needs it
	if err != nil {
		return fmt.Errorf("rewrite: %w", err)
	}
	if _, err := f.Write(contents); err != nil {
		f.Close()
		return fmt.Errorf("rewrite: %w", err)
	}
	var m []byte
	if jf.reserve > int64(len(contents)) && !jf.fsync {
		if m, err = mapJournal(f, jf.reserve); err != nil {
			m = nil // appends use write(2)
		}
	}
	// Always sync a rewrite, fsync flag or not: it is rare, and the rename
	// must never publish an empty file after a host crash.
	if err := f.Sync(); err != nil {
		unmapJournal(m)
		f.Close()
		return fmt.Errorf("rewrite: %w", err)
	}
	if err := os.Rename(tmp, jf.path); err != nil {
		unmapJournal(m)
		f.Close()
		return fmt.Errorf("rewrite: %w", err)
	}
	if d, err := os.Open(filepath.Dir(jf.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	jf.closeFile()
	// Keep appending through the new file's descriptor (only this process
	// writes, at the end of the records).
	jf.f, jf.m, jf.size = f, m, int64(len(contents))
	return nil
}

// append adds b (whole records) after the last record: a copy into the
// mapping if it fits, else one write(2); then syncs the data when the
// journal was opened with fsync.
func (jf *journalFile) append(b []byte) error {
	if end := jf.size + int64(len(b)); end <= int64(len(jf.m)) {
		copy(jf.m[jf.size:end], b)
		jf.size = end
		return nil
	}
	if _, err := jf.f.WriteAt(b, jf.size); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	jf.size += int64(len(b))
	if jf.fsync {
		if err := jf.f.Sync(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}
	return nil
}

// closeFile unmaps and closes the file (appends are then refused).
func (jf *journalFile) closeFile() error {
	if jf.m != nil {
		unmapJournal(jf.m)
		jf.m = nil
	}
	if jf.f == nil {
		return nil
	}
	err := jf.f.Close()
	jf.f = nil
	return err
}

// open locks the journal for this process and loads it (loadJournal:
// header check, then fn for each record). On error it holds nothing; else
// the journal is held until close, and the first rewrite opens its file.
func (jf *journalFile) open(h journalHeader, fn func(kind recordKind, payload []byte) error) (exists bool, err error) {
	if jf.lock, err = lockJournal(jf.path); err != nil {
		return false, err
	}
	if exists, err = loadJournal(jf.path, h, fn); err != nil {
		jf.close()
	}
	return exists, err
}

// close closes the file and releases the journal. It can be called again.
func (jf *journalFile) close() error {
	err := jf.closeFile()
	if jf.lock != nil {
		jf.lock.Close()
		jf.lock = nil
	}
	return err
}
