package mqbridge

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

// The in journal holds, after its header, a recordOwner naming the stream
// incarnation and durable the sequences belong to, then a recordSent for
// each stream sequence the queue took. A journal whose owner is not the
// stream and durable of this start is dropped. It is rewritten (compacted)
// at each start and every inCompactRecords sequences, keeping the
// sequences above the consumer's ack floor.

var inHeader = journalHeader{direction: "in", version: 1}

const (
	// inCompactRecords is how many sequence records the in journal holds
	// before it is rewritten with only those still needed.
	inCompactRecords = 1 << 18
	// inReserve is the journal space an in bridge reserves for appending:
	// a sequence record is 17 bytes, so inCompactRecords of them and as
	// many carried over fit (beyond it, appends use write(2)).
	inReserve = 10 << 20
)

// journalOwner is the payload of a recordOwner: the stream, its creation
// time (a stream deleted and recreated under its name is another owner)
// and the durable.
func journalOwner(stream string, created time.Time, durable string) []byte {
	return fmt.Appendf(nil, "%s\x00%d\x00%s", stream, created.UnixNano(), durable)
}

// appendSentRecord appends the recordSent of a stream sequence.
func appendSentRecord(b []byte, seq uint64) []byte {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seq)
	return appendRecord(b, recordSent, s[:])
}

// parseSentRecord reads the payload of a recordSent.
func parseSentRecord(p []byte) (seq uint64, ok bool) {
	if len(p) != 8 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(p), true
}

// recover takes the journal (b.jf.open: lock, header, records), loads the
// sequences already sent, drops those the consumer's ack floor shows were
// acknowledged, and rewrites the journal with the rest. Whatever it
// returns, b.jf.close releases the journal.
func (b *inBridge) recover(ctx context.Context) error {
	b.jf = journalFile{path: b.cfg.Journal, fsync: b.cfg.Fsync, reserve: inReserve}
	same := false
	exists, err := b.jf.open(inHeader, func(kind recordKind, p []byte) error {
		switch kind {
		case recordOwner:
			same = string(p) == string(b.identity)
		case recordSent:
			if seq, ok := parseSentRecord(p); same && ok {
				b.sent[seq] = struct{}{}
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
	return b.rewrite(ctx)
}

// rewrite prunes the sent sequences at or below the consumer's ack floor
// (JetStream never redelivers those) and writes the rest to a new journal.
func (b *inBridge) rewrite(ctx context.Context) error {
	info, err := b.cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer info: %w", err)
	}
	floor := info.AckFloor.Stream
	for seq := range b.sent {
		if seq <= floor {
			delete(b.sent, seq)
		}
	}
	contents := appendRecord(inHeader.append(nil), recordOwner, b.identity)
	for seq := range b.sent {
		contents = appendSentRecord(contents, seq)
	}
	if err := b.jf.rewrite(contents); err != nil {
		return err
	}
	b.records = len(b.sent)
	b.compactAt = b.records + inCompactRecords
	return nil
}

// journalSent records that the queue took the message with this stream
// sequence.
func (b *inBridge) journalSent(seq uint64) error {
	b.buf = appendSentRecord(b.buf[:0], seq)
	if err := b.jf.append(b.buf); err != nil {
		return journalError(b.cfg.Journal, err)
	}
	b.sent[seq] = struct{}{}
	b.records++
	return nil
}

// compact rewrites the journal once it holds more than compactAt
// sequence records. A failure other than ctx's end only postpones it.
func (b *inBridge) compact(ctx context.Context) error {
	if b.records <= b.compactAt {
		return nil
	}
	if err := b.rewrite(ctx); err != nil {
		if ctx.Err() != nil {
			return err
		}
		// Most likely the server is away (the ack floor comes from it):
		// keep appending and try again later.
		b.log.Warn("journal rewrite postponed: could not read the consumer's ack floor", "err", err)
		b.compactAt = b.records + inCompactRecords/4
	}
	return nil
}
