package mqbridge

import "time"

// Which sequences the in journal may forget.
//
// JetStream never redelivers a sequence at or below a consumer's ack
// floor, so the journal need not remember those. But the floor a server
// reports is the one in its memory: a server with file storage writes its
// consumer state lazily (nats-server's file store writes it at most every
// 100 ms, to the page cache), and after a crash it recovers the last state
// written and redelivers what lies above that older floor. A journal that
// forgot a sequence on the word of the reported floor would let a server
// crash duplicate every message acknowledged in the last ~100 ms (the
// issue measured 100 to 1,053).
//
// So a floor counts only once it is confirmed: two readings of the same
// consumer, the second asked at least floorSettle after the first was
// answered, over one connection (no reconnect in between, so no server
// restart in between), and the smaller of the two is taken. Whatever the
// first reading showed had been acknowledged before it was answered; the
// server writes its state within ~100 ms of an acknowledgement, so by the
// second reading a state at or above the first floor is written, and no
// crash from then on can recover a lower one. The second reading guards
// against a restart that went unseen (it would show a lower floor). The
// margin, a second against 100 ms, covers a slow or loaded server.
//
// The journal is compacted (at start, after the first confirmation, and
// every inCompactRecords records) only below the confirmed floor, which
// the journal also records: a server crash at any moment then redelivers
// only sequences the journal still holds, and the bridge acknowledges
// them without a second send. What remains is the bridge's own crash
// between a send and its journal record: one duplicate per crash.
//
// In a cluster a consumer's state is replicated (R3) before it is
// acknowledged, and the rule costs nothing more than a short delay.

// floorSettle is how long after one reading of the ack floor a second
// one confirms it (see above).
const floorSettle = time.Second

// durableFloor tracks the ack floors of the durable consumer (one
// incarnation of it at a time) and which of them are confirmed.
type durableFloor struct {
	// consumer is the creation time of the consumer incarnation that
	// confirmed and the reading are of.
	consumer time.Time
	// confirmed is a floor that no server crash can undo: the journal
	// may forget the sequences at or below it.
	confirmed uint64
	// resume is the highest floor confirmed by any consumer of this name
	// on this stream incarnation: where a consumer that the bridge
	// creates again starts (everything at or below it was sent).
	resume uint64

	// The reading that awaits confirmation.
	reading    uint64
	readAt     time.Time // when it was answered
	readConn   uint64    // the connection's reconnect count when it was asked
	hasReading bool
}

// follow tells f which consumer incarnation the next readings are of. A
// new one starts over: its floors have nothing to do with the last one's
// (resume stays: it is about the stream).
func (f *durableFloor) follow(consumer time.Time) {
	if consumer.Equal(f.consumer) {
		return
	}
	f.consumer, f.confirmed, f.hasReading = consumer, 0, false
}

// observe records a reading of the ack floor, asked at asked and answered
// at answered, over a connection that had reconnected reconnects times
// when it was asked. It reports whether the confirmed floor rose.
func (f *durableFloor) observe(floor uint64, asked, answered time.Time, reconnects uint64) (rose bool) {
	if f.hasReading && reconnects != f.readConn {
		f.hasReading = false // the server may have restarted in between
	}
	if f.hasReading && asked.Sub(f.readAt) >= floorSettle {
		if c := min(f.reading, floor); c > f.confirmed {
			f.confirmed, rose = c, true
			f.resume = max(f.resume, c)
		}
		f.hasReading = false
	}
	if !f.hasReading {
		// Too soon after the waiting reading: keep that one, older, which
		// is confirmed sooner.
		f.reading, f.readAt, f.readConn, f.hasReading = floor, answered, reconnects, true
	}
	return rose
}
