package chanmq

import (
	"sync"
	"sync/atomic"
)

// pendingList holds messages taken from the kernel queue by a pump that
// stopped before handing them on. The next Receive of the Queue returns
// them first; Close puts the rest back.
type pendingList struct {
	n    atomic.Int32 // len(msgs), read without the lock on the hot path
	mu   sync.Mutex
	msgs []Message
}

// push appends messages in the order they were taken.
func (p *pendingList) push(msgs ...Message) {
	if len(msgs) == 0 {
		return
	}
	p.mu.Lock()
	p.msgs = append(p.msgs, msgs...)
	p.n.Store(int32(len(p.msgs)))
	p.mu.Unlock()
}

// pop removes the oldest message; the fast check costs one atomic load.
func (p *pendingList) pop() (Message, bool) {
	if p.n.Load() == 0 {
		return Message{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.msgs) == 0 {
		return Message{}, false
	}
	m := p.msgs[0]
	p.msgs[0] = Message{}
	p.msgs = p.msgs[1:]
	p.n.Store(int32(len(p.msgs)))
	return m, true
}

// takeAll removes and returns every message.
func (p *pendingList) takeAll() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	msgs := p.msgs
	p.msgs = nil
	p.n.Store(0)
	return msgs
}
