package chanmq

import (
	"sync"
	"sync/atomic"
)

// This file is the registry of a Queue's running pumps. Close waits for
// them before it puts back what they held and closes the descriptor, so
// that no message a pump took is stranded in a pump that is still running.
//
// A pump may be running the caller's code when Close begins: a codec, or
// an OnDecodeError callback, which may itself call Close (or wait for
// something that waits for Close). Close does not wait for such a pump.
// Instead the last to finish, of Close and the pumps it did not wait for,
// puts back what is held and closes the descriptor: the descriptor stays
// open until the pump stops, and what that pump held goes back when it
// does (a failure to put it back is reported by that pump's Err or Wait).

// pumpSet counts a Queue's running pumps and coordinates their end with Close.
type pumpSet struct {
	inUser atomic.Int32 // running pumps that are in the caller's code now

	mu      sync.Mutex    // guards what follows, and orders registration against Close
	running int           // registered pumps that have not stopped
	closing bool          // Close has begun: nothing may register any more
	changed chan struct{} // non-nil while Close waits; closed when a pump stops or enters the caller's code
	// finishers is set when Close stops waiting: Close itself plus the
	// pumps still running then (each in the caller's code). Each decrements
	// it as it finishes; the one that brings it to zero closes the
	// descriptor.
	finishers int
}

// add registers a pump; it reports false once Close has begun.
func (s *pumpSet) add() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.running++
	return true
}

// stop ends a registration made by add. It reports whether the caller is
// the last to finish a Close that did not wait for it, and so must finish
// it (Queue.finishClose).
func (s *pumpSet) stop() (finishClose bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	s.signal()
	if s.finishers > 0 {
		s.finishers--
		return s.finishers == 0
	}
	return false
}

// enterUser marks a pump as running the caller's code, which Close must not
// wait for; leaveUser ends it. closed is the Queue's closed flag: if Close
// has begun, it may be waiting for this pump, and is told to look again.
func (s *pumpSet) enterUser(closed *atomic.Bool) {
	s.inUser.Add(1)
	// Close sets closed before it reads inUser; this reads closed after
	// adding to inUser: at least one of the two sees the other.
	if closed.Load() {
		s.mu.Lock()
		s.signal()
		s.mu.Unlock()
	}
}

func (s *pumpSet) leaveUser() { s.inUser.Add(-1) }

// signal wakes a waiting Close; the caller holds mu.
func (s *pumpSet) signal() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// close forbids new registrations; setClosed, called under the same lock,
// sets the Queue's closed flag.
func (s *pumpSet) close(setClosed func()) {
	s.mu.Lock()
	s.closing = true
	setClosed()
	s.mu.Unlock()
}

// wait waits until every running pump has stopped or is in the caller's
// code, and makes Close and those pumps the finishers.
func (s *pumpSet) wait() {
	s.mu.Lock()
	for s.running > int(s.inUser.Load()) {
		ch := make(chan struct{})
		s.changed = ch
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	s.finishers = s.running + 1
	s.mu.Unlock()
}

// closeDone is Close's own finish; it reports whether Close is the last
// finisher and so closes the descriptor itself.
func (s *pumpSet) closeDone() (last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishers--
	return s.finishers == 0
}
