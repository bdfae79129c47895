package mqbridge

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The out journal holds, after its header, a recordMsg for each message
// received and a recordAck for each of those the stream stored; the
// messages without a recordAck are the ones to republish after a crash.
// It is rewritten (compacted) to the messages in flight when it grows past
// compactBytes.

var outHeader = journalHeader{direction: "out", version: 1}

// defaultCompactBytes is the size past which the out journal is rewritten.
const defaultCompactBytes = 32 << 20

// compactBytes is the size past which the out journal is rewritten (a
// variable so that tests can make rewrites frequent).
var compactBytes int64 = defaultCompactBytes

// appendMsgRecord appends the recordMsg of a message: id length (one
// byte), id, priority (uint16), data.
func appendMsgRecord(b []byte, id string, prio uint16, data []byte) []byte {
	var head [3]byte
	head[0] = byte(len(id))
	binary.LittleEndian.PutUint16(head[1:], prio)
	return appendRecordS(b, recordMsg, head[:1], id, head[1:], data)
}

// parseMsgRecord reads the payload of a recordMsg; data aliases p.
func parseMsgRecord(p []byte) (id string, prio uint16, data []byte, err error) {
	if len(p) < 1 || len(p) < 1+int(p[0])+2 {
		return "", 0, nil, errors.New("malformed message record")
	}
	n := int(p[0])
	return string(p[1 : 1+n]), binary.LittleEndian.Uint16(p[1+n:]), p[1+n+2:], nil
}

// appendAckRecord appends the recordAck of the message with this ID.
func appendAckRecord(b []byte, id string) []byte {
	return appendRecordS(b, recordAck, nil, id, nil, nil)
}

// newEpoch starts a new ID space: 16 random bytes, hex. Every start and
// every journal rewrite takes a new one, so no ID is ever reused.
func (b *outBridge) newEpoch() error {
	var e [16]byte
	if _, err := rand.Read(e[:]); err != nil {
		return err
	}
	b.epoch, b.next = hex.EncodeToString(e[:])+".", 1
	return nil
}

// recover takes the journal (b.jf.open: lock, header, records), returns
// the messages it holds that were never acknowledged (in journal order),
// and rewrites it to hold only those. Whatever it returns, b.jf.close
// releases the journal.
func (b *outBridge) recover() ([]*nats.Msg, error) {
	// Reserve room for the records up to a rewrite (past compactBytes),
	// with a margin for the one append that crosses it.
	b.jf = journalFile{path: b.cfg.Journal, fsync: b.cfg.Fsync, reserve: compactBytes + 1<<20}
	_, err := b.jf.open(outHeader, func(kind recordKind, p []byte) error {
		switch kind {
		case recordMsg:
			id, prio, body, err := parseMsgRecord(p)
			if err != nil {
				return err
			}
			b.order++
			b.inflight[id] = flight{msg: b.newMsg(id, uint(prio), slices.Clone(body)), order: b.order, prio: prio}
		case recordAck:
			delete(b.inflight, string(p))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	msgs := b.inflightInOrder()
	if err := b.rewriteLocked(); err != nil {
		return nil, err
	}
	return msgs, nil
}

func (b *outBridge) inflightInOrder() []*nats.Msg {
	fs := b.flightsInOrder()
	msgs := make([]*nats.Msg, len(fs))
	for i, f := range fs {
		msgs[i] = f.msg
	}
	return msgs
}

func (b *outBridge) flightsInOrder() []flight {
	fs := make([]flight, 0, len(b.inflight))
	for _, f := range b.inflight {
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(x, y flight) int { return int(x.order - y.order) })
	return fs
}

// rewriteLocked replaces the journal with the messages in flight and takes
// a new epoch for new IDs. Call it with b.mu held (or before Run shares b).
func (b *outBridge) rewriteLocked() error {
	contents := outHeader.append(nil)
	for _, f := range b.flightsInOrder() {
		contents = appendMsgRecord(contents, f.msg.Header.Get(jetstream.MsgIDHeader), f.prio, f.msg.Data)
	}
	if err := b.jf.rewrite(contents); err != nil {
		return err
	}
	b.acked = b.acked[:0]
	return b.newEpoch()
}

// journal gives the message a new ID and appends it to the journal, with
// the acknowledgements recorded since the last write, in one append.
func (b *outBridge) journal(data []byte, prio uint) (*nats.Msg, error) {
	b.mu.Lock()
	if b.jf.size > compactBytes {
		if err := b.rewriteLocked(); err != nil {
			b.mu.Unlock()
			return nil, err
		}
	}
	id := b.epoch + strconv.FormatUint(b.next, 10)
	b.next++
	// The acknowledgements recorded since the last write go first, then
	// the message: one append (a copy into the mapping, or a write(2)).
	buf := appendMsgRecord(append(b.buf[:0], b.acked...), id, uint16(prio), data)
	if err := b.jf.append(buf); err != nil {
		b.mu.Unlock()
		return nil, err
	}
	b.acked = b.acked[:0]
	b.buf = buf
	b.order++
	m := b.newMsg(id, prio, data)
	b.inflight[id] = flight{msg: m, order: b.order, prio: uint16(prio)}
	b.mu.Unlock()
	return m, nil
}

// flushAcksLocked writes the acknowledgements recorded since the last
// write. Call it with b.mu held.
func (b *outBridge) flushAcksLocked() error {
	if len(b.acked) == 0 || b.jf.f == nil {
		return nil
	}
	buf := append(b.buf[:0], b.acked...)
	b.buf = buf
	b.acked = b.acked[:0]
	return b.jf.append(buf)
}
