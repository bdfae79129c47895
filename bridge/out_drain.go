package mqbridge

import "time"

// drain waits up to timeout for the acknowledgements of every message
// published (recovered messages not yet republished hold no slot).
func (b *outBridge) drain(timeout time.Duration) {
	if timeout <= 0 {
		timeout = DefaultDrainTimeout
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if len(b.slots) == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// finish writes the acknowledgements recorded since the last write and
// closes the journal; call it once the retrier has stopped. An
// acknowledgement nats.go reports later is not written: that message is
// republished on the next start with its ID. finish logs how many
// messages stay journaled unacknowledged.
func (b *outBridge) finish() error {
	b.mu.Lock()
	err := b.flushAcksLocked()
	left := len(b.inflight)
	b.mu.Unlock()
	if cerr := b.jf.close(); err == nil {
		err = cerr
	}
	if left > 0 {
		b.log.Info("stopped with messages unacknowledged; they stay journaled and are republished on the next start", "count", left)
	}
	return err
}
