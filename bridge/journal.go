package mqbridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// A journal file is a header followed by records. Every record is framed as
//
//	length uint32 | crc32c(kind|payload) uint32 | kind byte | payload
//
// (little endian), written with one write(2) each time, so a process killed
// at any point leaves at most one torn record at the tail; recovery stops at
// the first record whose frame or checksum does not match and the next
// rewrite drops it. A rewrite (compaction) writes a new file beside the old
// one, syncs it and renames it over, so the journal is always one whole
// generation or the next.

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
	size  int64
	fsync bool
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
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if _, err := f.Write(contents); err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	// Always sync a rewrite, fsync flag or not: it is rare, and the rename
	// must never publish an empty file after a host crash.
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	if err := os.Rename(tmp, jf.path); err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	if d, err := os.Open(filepath.Dir(jf.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	if jf.f != nil {
		jf.f.Close()
	}
	// Keep appending through the new file's descriptor (O_APPEND is not
	// needed: only this process writes, at the end).
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	jf.f, jf.size = f, int64(len(contents))
	return nil
}

// append writes b (whole records) with one write(2), and syncs the data
// when the journal was opened with fsync.
func (jf *journalFile) append(b []byte) error {
	if _, err := jf.f.Write(b); err != nil {
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
	if jf.f == nil {
		return nil
	}
	err := jf.f.Close()
	jf.f = nil
	return err
}
