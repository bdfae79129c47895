package mqbridge

import (
	"encoding/binary"
	"fmt"
	"time"
)

// The in journal holds, after its header, a recordOwner naming the stream
// incarnation and durable the sequences belong to, a recordFloor (the
// confirmed ack floor the journal was compacted at: in_floor.go), then a
// recordSentAt for each message the queue took: its stream sequence and
// the time the stream stored it. A journal whose owner is not the stream
// and durable of this start is dropped. It is rewritten (compacted) at
// each start, once the first ack floor is confirmed after it, and every
// inCompactRecords records, keeping the sequences above the confirmed
// floor.
//
// Version 1 journals (recordOwner, then recordSent: sequences without a
// time) are read, their sequences matching any message of that sequence
// (their owner record names the stream incarnation), and rewritten as
// version 2.

var inHeader = journalHeader{direction: "in", version: 2, oldest: 1}

// inCompactRecords is how many sequence records the in journal holds
// before it is rewritten with only those still needed. A variable for the
// tests, which compact far more often.
var inCompactRecords = 1 << 18

// inReserve is the journal space an in bridge reserves for appending: a
// record is 25 bytes, so inCompactRecords of them and as many carried over
// fit (beyond it, appends use write(2)).
const inReserve = 14 << 20

// anyTime, as the stored time of a sent sequence, matches any message of
// that sequence: the sequences of a version 1 journal.
const anyTime = 0

// journalOwner is the payload of a recordOwner: the stream, its creation
// time (a stream deleted and recreated under its name is another owner)
// and the durable.
func journalOwner(stream string, created time.Time, durable string) []byte {
	return fmt.Appendf(nil, "%s\x00%d\x00%s", stream, created.UnixNano(), durable)
}

// appendSentRecord appends the recordSentAt of a stream sequence and the
// time (UnixNano) the stream stored its message.
func appendSentRecord(b []byte, seq uint64, stored int64) []byte {
	var p [16]byte
	binary.LittleEndian.PutUint64(p[:], seq)
	binary.LittleEndian.PutUint64(p[8:], uint64(stored))
	return appendRecord(b, recordSentAt, p[:])
}

// parseSentRecord reads the payload of a recordSentAt, or of a version 1
// recordSent (which has no time: anyTime).
func parseSentRecord(kind recordKind, p []byte) (seq uint64, stored int64, ok bool) {
	switch {
	case kind == recordSentAt && len(p) == 16:
		return binary.LittleEndian.Uint64(p), int64(binary.LittleEndian.Uint64(p[8:])), true
	case kind == recordSent && len(p) == 8:
		return binary.LittleEndian.Uint64(p), anyTime, true
	}
	return 0, 0, false
}

// appendFloorRecord appends the recordFloor of f: its confirmed floor, the
// consumer incarnation that is of, and its resume floor.
func appendFloorRecord(b []byte, f *durableFloor) []byte {
	var p [24]byte
	binary.LittleEndian.PutUint64(p[:], f.confirmed)
	binary.LittleEndian.PutUint64(p[8:], uint64(f.consumer.UnixNano()))
	binary.LittleEndian.PutUint64(p[16:], f.resume)
	return appendRecord(b, recordFloor, p[:])
}

// parseFloorRecord reads the payload of a recordFloor into f.
func parseFloorRecord(p []byte, f *durableFloor) bool {
	if len(p) != 24 {
		return false
	}
	f.confirmed = binary.LittleEndian.Uint64(p)
	f.consumer = time.Unix(0, int64(binary.LittleEndian.Uint64(p[8:])))
	f.resume = binary.LittleEndian.Uint64(p[16:])
	return true
}

// recover takes the journal (b.jf.open: lock, header, records) and loads
// the sequences already sent and the floor it was compacted at, if it
// belongs to this stream incarnation and durable. Whatever it returns,
// b.jf.close releases the journal; the caller rewrites it.
func (b *inBridge) recover() error {
	b.jf = journalFile{path: b.cfg.Journal, fsync: b.cfg.Fsync, reserve: inReserve}
	same := false
	exists, err := b.jf.open(inHeader, func(kind recordKind, p []byte) error {
		switch kind {
		case recordOwner:
			same = string(p) == string(b.identity)
		case recordFloor:
			if same {
				parseFloorRecord(p, &b.floor)
			}
		case recordSent, recordSentAt:
			if seq, stored, ok := parseSentRecord(kind, p); same && ok {
				b.sent[seq] = stored
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if exists && !same {
		b.log.Warn("the journal belongs to another stream, consumer or an earlier stream of the same name; starting a new one")
	}
	return nil
}

// rewrite drops the sent sequences at or below the confirmed ack floor
// (JetStream never redelivers those, even after its own crash) and writes
// the rest to a new journal.
func (b *inBridge) rewrite() error {
	floor := b.floor.confirmed
	for seq := range b.sent {
		if seq <= floor {
			delete(b.sent, seq)
		}
	}
	contents := appendRecord(inHeader.append(nil), recordOwner, b.identity)
	contents = appendFloorRecord(contents, &b.floor)
	for seq, stored := range b.sent {
		contents = appendSentRecord(contents, seq, stored)
	}
	if err := b.jf.rewrite(contents); err != nil {
		return journalError(b.cfg.Journal, err)
	}
	b.records = len(b.sent)
	b.compactAt = b.records + inCompactRecords
	return nil
}

// journalSent records that the queue took the message with this stream
// sequence and stored time.
func (b *inBridge) journalSent(seq uint64, stored int64) error {
	b.buf = appendSentRecord(b.buf[:0], seq, stored)
	if err := b.jf.append(b.buf); err != nil {
		return journalError(b.cfg.Journal, err)
	}
	b.sent[seq] = stored
	b.records++
	return nil
}

// sentBefore reports whether the message with this stream sequence and
// stored time was sent before: the same sequence of another incarnation
// of the stream is another message.
func (b *inBridge) sentBefore(seq uint64, stored int64) bool {
	t, ok := b.sent[seq]
	return ok && (t == stored || t == anyTime)
}

// compact rewrites the journal once it holds more than compactAt sequence
// records.
func (b *inBridge) compact() error {
	if b.records <= b.compactAt {
		return nil
	}
	return b.rewrite()
}
