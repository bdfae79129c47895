package mqbridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
)

// A journal file is a header line followed by records. The header names
// the direction that wrote the journal and the version of its record
// format ("chanmq-bridge out 1\n"); loadJournal checks it, in one place,
// before it reads a record. Every record is framed as
//
//	length uint32 | crc32c(kind|payload) uint32 | kind byte | payload
//
// (little endian), appended whole each time, so a process killed at any
// point leaves at most one torn record at the tail; recovery stops at the
// first record whose frame or checksum does not match (or at the zeros of
// the space reserved past the last record) and the next rewrite drops it.
// What a payload holds depends on the record's kind: out_journal.go and
// in_journal.go encode and decode the kinds of their direction.
//
// journal_file.go writes the file: appends, and rewrites (compactions).

// recordKind names what a journal record holds. The loaders switch on it;
// a kind a loader does not know is skipped.
type recordKind byte

// The record kinds of the out journal (out_journal.go).
const (
	// recordMsg is a message received from the queue: its ID, priority
	// and bytes, journaled before it is published.
	recordMsg recordKind = 'M'
	// recordAck is the ID of a journaled message the stream stored.
	recordAck recordKind = 'A'
)

// The record kinds of the in journal (in_journal.go).
const (
	// recordOwner says whose sequences the records after it are: the
	// stream, its creation time and the durable consumer.
	recordOwner recordKind = 'H'
	// recordSent is a stream sequence the queue took (format version 1,
	// read but no longer written: it does not say which incarnation of
	// the stream the sequence belongs to).
	recordSent recordKind = 'S'
	// recordSentAt is a stream sequence the queue took and the time the
	// stream stored that message, which tells a message of a stream
	// deleted and recreated under its name from the new one's message of
	// the same sequence (format version 2).
	recordSentAt recordKind = 'T'
	// recordFloor is a consumer ack floor the server had made durable
	// when the journal was written: the records at or below it were
	// dropped (format version 2).
	recordFloor recordKind = 'F'
)

// journalHeader is the first line of a journal: the direction that writes
// it and the version of its record format. A change to what a record kind
// holds takes a new version.
type journalHeader struct {
	direction string // "out" or "in"
	version   int    // the version this bridge writes
	oldest    int    // the oldest version it still reads (0: only version)
}

const headerPrefix = "chanmq-bridge "

// append appends the header line to b.
func (h journalHeader) append(b []byte) []byte {
	return fmt.Appendf(b, "%s%s %d\n", headerPrefix, h.direction, h.version)
}

// check reports how many bytes the header line at the start of data
// takes, or an error (ErrJournalHeader) if it is not a header of h's
// direction and of a version from h.oldest to h.version. It is the one
// place a header is judged: the records of an older version it accepts
// are kinds the direction's loader still reads.
func (h journalHeader) check(data []byte) (int, error) {
	got, n, ok := parseHeader(data)
	oldest := h.oldest
	if oldest == 0 {
		oldest = h.version
	}
	switch {
	case !ok || got.direction != h.direction:
		return 0, fmt.Errorf("%w: not an %s-direction journal of chanmq-bridge; move it away if it belongs to something else", ErrJournalHeader, h.direction)
	case got.version < oldest || got.version > h.version:
		reads := fmt.Sprintf("version %d", h.version)
		if oldest != h.version {
			reads = fmt.Sprintf("versions %d to %d", oldest, h.version)
		}
		return 0, fmt.Errorf("%w: an %s-direction journal of format version %d; this bridge reads %s: move it away (what it holds is then forgotten) or run the bridge that wrote it", ErrJournalHeader, h.direction, got.version, reads)
	}
	return n, nil
}

// parseHeader reads the header line at the start of data and its length;
// ok is false if there is none.
func parseHeader(data []byte) (h journalHeader, n int, ok bool) {
	line, _, found := bytes.Cut(data, []byte("\n"))
	rest, ours := bytes.CutPrefix(line, []byte(headerPrefix))
	dir, ver, _ := bytes.Cut(rest, []byte(" "))
	v, err := strconv.Atoi(string(ver))
	if !found || !ours || err != nil {
		return journalHeader{}, 0, false
	}
	return journalHeader{direction: string(dir), version: v}, len(line) + 1, true
}

// journalError says which journal err is about.
func journalError(path string, err error) error {
	return fmt.Errorf("journal %s: %w", path, err)
}

// frameSize is the length, crc and kind that precede a record's payload.
const frameSize = 9

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// loadJournal reads the journal at path, checks its header and calls fn
// for each whole record, in order. It reports whether the journal exists;
// a missing journal is not an error (a first start).
func loadJournal(path string, h journalHeader, fn func(kind recordKind, payload []byte) error) (exists bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read: %w", err)
	}
	start, err := h.check(data)
	if err != nil {
		return true, err
	}
	return true, readRecords(data[start:], fn)
}

// readRecords calls fn for each whole record of data, up to the first torn
// or missing one.
func readRecords(data []byte, fn func(kind recordKind, payload []byte) error) error {
	off := 0
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
		if err := fn(recordKind(body[0]), body[1:]); err != nil {
			return err
		}
		off += frameSize + n
	}
	return nil
}

// appendRecord appends one framed record to b.
func appendRecord(b []byte, kind recordKind, payload ...[]byte) []byte {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	b, start := beginRecord(b, kind, n)
	for _, p := range payload {
		b = append(b, p...)
	}
	return endRecord(b, start)
}

// appendRecordS is appendRecord for the payload head|s|mid|tail, without
// converting s to a slice (no allocation on the per-message path).
func appendRecordS(b []byte, kind recordKind, head []byte, s string, mid, tail []byte) []byte {
	b, start := beginRecord(b, kind, len(head)+len(s)+len(mid)+len(tail))
	b = append(b, head...)
	b = append(b, s...)
	b = append(b, mid...)
	b = append(b, tail...)
	return endRecord(b, start)
}

// beginRecord appends the frame of a record of n payload bytes, with the
// checksum left for endRecord, and returns where the record starts.
func beginRecord(b []byte, kind recordKind, n int) ([]byte, int) {
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, 0)
	return append(b, byte(kind)), start
}

// endRecord fills in the checksum of the record that starts at start, now
// that b holds its payload.
func endRecord(b []byte, start int) []byte {
	crc := crc32.Checksum(b[start+8:], crcTable)
	binary.LittleEndian.PutUint32(b[start+4:], crc)
	return b
}
