package mqbridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// A journal file is a header followed by records. Every record is framed as
//
//	length uint32 | crc32c(kind|payload) uint32 | kind byte | payload
//
// (little endian), appended whole each time, so a process killed at any
// point leaves at most one torn record at the tail; recovery stops at the
// first record whose frame or checksum does not match (or at the zeros of
// the space reserved past the last record) and the next rewrite drops it.
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

const (
	frameSize = 9 // length, crc, kind

	// A journal is rewritten when it grows past this many bytes.
	defaultCompactBytes = 32 << 20 // see compactBytes
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// compactBytes is the size past which the out journal is rewritten (a
// variable so that tests can make rewrites frequent).
var compactBytes int64 = defaultCompactBytes

// appendRecord appends one framed record to b.
func appendRecord(b []byte, kind byte, payload ...[]byte) []byte {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = append(b, kind)
	for _, p := range payload {
		b = append(b, p...)
	}
	crc := crc32.Checksum(b[start+8:], crcTable)
	binary.LittleEndian.PutUint32(b[start+4:], crc)
	return b
}

// appendRecordS is appendRecord for the payload head|s|mid|tail, without
// converting s to a slice (no allocation on the per-message path).
func appendRecordS(b []byte, kind byte, head []byte, s string, mid, tail []byte) []byte {
	n := len(head) + len(s) + len(mid) + len(tail)
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = append(b, kind)
	b = append(b, head...)
	b = append(b, s...)
	b = append(b, mid...)
	b = append(b, tail...)
	crc := crc32.Checksum(b[start+8:], crcTable)
	binary.LittleEndian.PutUint32(b[start+4:], crc)
	return b
}

// readRecords calls fn for each whole record of data after the header and
// returns how many bytes of data they (and the header) cover.
func readRecords(data []byte, headerLen int, fn func(kind byte, payload []byte) error) (int, error) {
	off := headerLen
	for len(data)-off >= frameSize {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		crc := binary.LittleEndian.Uint32(data[off+4:])
		if n > len(data)-off-frameSize {
			break // torn tail
		}
		body := data[off+8 : off+frameSize+n]
		if crc32.Checksum(body, crcTable) != crc {
			break // torn tail
		}
		if err := fn(body[0], body[1:]); err != nil {
			return off, err
		}
		off += frameSize + n
	}
	return off, nil
}

// journalFile is the open file of a journal and what writing it needs.
type journalFile struct {
	path  string
	f     *os.File
	size  int64 // bytes of header and records; what follows is reserved space (zeros)
	fsync bool
	// reserve, if not 0, is how many bytes a rewrite reserves and maps for
	// appending (ignored with fsync).
	reserve int64
	m       []byte // the mapping of the reserved space, or nil
}

// readJournal returns the contents of the journal at path, or nil when
// there is none yet.
func readJournal(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	return data, nil
}

// rewrite replaces the journal at path with contents (a header and the
// records still needed) atomically: write a temporary file, sync it,
// rename it over, sync the directory. It leaves jf open for appending to
// the new file.
func (jf *journalFile) rewrite(contents []byte) error {
	if err := os.MkdirAll(filepath.Dir(jf.path), 0o700); err != nil {
		return fmt.Errorf("journal directory: %w", err)
	}
	tmp := jf.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600) // read too: a shared writable mapping needs it
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if _, err := f.Write(contents); err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
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
		return fmt.Errorf("journal: %w", err)
	}
	if err := os.Rename(tmp, jf.path); err != nil {
		unmapJournal(m)
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	if d, err := os.Open(filepath.Dir(jf.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	jf.close()
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
		return fmt.Errorf("journal write: %w", err)
	}
	jf.size += int64(len(b))
	if jf.fsync {
		if err := jf.f.Sync(); err != nil {
			return fmt.Errorf("journal sync: %w", err)
		}
	}
	return nil
}

func (jf *journalFile) close() error {
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
