package mqbridge

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/chanmq/chanmq"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PriorityHeader carries a message's queue priority (decimal, 0 to
// chanmq.MaxPriority). The out direction sets it when the priority is not
// 0; the in direction restores it, and reads a missing header as 0.
const PriorityHeader = "Chanmq-Priority"

// Defaults used when a field is left zero.
const (
	DefaultWindow       = 512
	DefaultDrainTimeout = 5 * time.Second
	// DefaultAckTimeout bounds the wait for one publish acknowledgement;
	// a publish not acknowledged by then is republished with its ID.
	DefaultAckTimeout = 10 * time.Second
)

// headerAllowance is what the headers the bridge adds (message ID,
// priority, expected stream) can take on top of a message's bytes.
const headerAllowance = 256

const outMagic = "chanmq-bridge out 1\n"

// Out forwards the messages of a local queue to a JetStream subject.
//
// Each message is written to a local journal right after it is received
// (the only moment a crash can lose it, and then only that one message),
// published asynchronously with a message ID that JetStream de-duplicates,
// and marked acknowledged in the journal once the server stored it. On
// start, every journaled message not marked acknowledged is republished
// with its original ID. The zero values of the optional fields choose
// the defaults.
type Out struct {
	// Queue is the local queue, open for receiving. Run does not close it.
	Queue *chanmq.Queue
	// Subject is the subject messages are published to. A stream must
	// capture it.
	Subject string
	// Stream, if set, is the stream that must capture Subject; every
	// publish then expects it (Nats-Expected-Stream). If empty, Run looks
	// the stream up by Subject.
	Stream string
	// Journal is the path of the journal file (created if missing). One
	// journal per Out; never share it between two running bridges.
	Journal string
	// Fsync makes every journal write durable (fsync) before the message
	// is published, so that a host crash, not only a process crash, loses
	// at most the message in hand. It costs a disk flush per message.
	Fsync bool
	// Window is the most messages published but not yet acknowledged
	// (default DefaultWindow). When it is full the bridge stops receiving,
	// the local queue fills, and local senders block.
	Window int
	// DrainTimeout bounds how long a cancelled Run waits for outstanding
	// acknowledgements (default DefaultDrainTimeout). Messages still
	// unacknowledged then stay in the journal for the next start.
	DrainTimeout time.Duration
	// AckTimeout bounds the wait for one acknowledgement (default
	// DefaultAckTimeout) before the message is republished.
	AckTimeout time.Duration
	// Log receives start-up facts, retries and faults (default
	// slog.Default()).
	Log *slog.Logger
}

// flight is a journaled message not yet acknowledged.
type flight struct {
	msg   *nats.Msg
	order uint64 // journal order, so that a rewrite keeps it
	prio  uint16
}

// outBridge is one running Out.
type outBridge struct {
	o      *Out
	js     jetstream.JetStream
	log    *slog.Logger
	stream string
	fail   context.CancelCauseFunc // stops Run with a fatal error

	slots chan struct{}  // one token per message published and not acknowledged (the window)
	retry chan *nats.Msg // failed publishes, to republish with their ID
	done  chan struct{}  // closed when Run returns: late nats.go callbacks then drop their hand-off

	mu       sync.Mutex // guards the fields below
	jf       journalFile
	epoch    string // prefix of new message IDs; new on every start and rewrite
	next     uint64 // sequence of the next new message ID in epoch
	order    uint64
	inflight map[string]flight // by message ID
	acked    []byte            // 'A' records of acknowledged IDs not yet written to the journal
	buf      []byte
	streamH  []string // the Nats-Expected-Stream header value, shared by every message (never modified)
}

// Run forwards messages until ctx is done or a fault stops it. A cancelled
// ctx is an ordinary end: Run stops receiving (taking nothing more from the
// queue), waits up to DrainTimeout for the acknowledgements of what it
// published, records them and returns nil; messages still unacknowledged
// stay journaled and are republished by the next Run on the same journal.
// nc should reconnect forever (nats.MaxReconnects(-1)): while it is
// disconnected the window fills and the bridge stops receiving.
func (o *Out) Run(ctx context.Context, nc *nats.Conn) error {
	if o.Queue == nil || o.Subject == "" || o.Journal == "" {
		return errors.New("mqbridge: Out needs Queue, Subject and Journal")
	}
	b := &outBridge{o: o, log: o.Log, inflight: map[string]flight{}, done: make(chan struct{})}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.log = b.log.With("direction", "out", "queue", o.Queue.Name(), "subject", o.Subject)
	window := o.Window
	if window <= 0 {
		window = DefaultWindow
	}
	ackTimeout := o.AckTimeout
	if ackTimeout <= 0 {
		ackTimeout = DefaultAckTimeout
	}
	b.slots = make(chan struct{}, window)
	var err error
	b.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(2*window),
		jetstream.WithPublishAsyncTimeout(ackTimeout),
		jetstream.WithPublishAsyncAckHandler(b.onAck),
		jetstream.WithPublishAsyncErrHandler(b.onErr),
	)
	if err != nil {
		return fmt.Errorf("mqbridge: %w", err)
	}
	defer func() {
		close(b.done) // late callbacks drop their hand-off from now on
		// Unsubscribe the acknowledgement inbox and stop nats.go's status
		// listener, so that a Run leaves nothing behind on nc.
		b.js.CleanupPublisher()
	}()
	if err := b.check(ctx, nc); err != nil {
		if ctx.Err() != nil {
			return nil // cancelled while starting: an ordinary end
		}
		return err
	}
	lock, err := lockJournal(o.Journal)
	if err != nil {
		return fmt.Errorf("mqbridge: out: %w", err)
	}
	defer lock.Close()
	recovered, err := b.recover()
	if err != nil {
		return fmt.Errorf("mqbridge: out %s: %w", o.Journal, err)
	}
	// Recovered messages can outnumber a smaller window than the one they
	// were sent under; the retry channel must hold every message in flight.
	b.retry = make(chan *nats.Msg, window+len(recovered))

	runCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	b.fail = fail
	retrierCtx, stopRetrier := context.WithCancel(context.Background())
	retrierDone := make(chan struct{})
	go func() {
		defer close(retrierDone)
		b.retrier(retrierCtx)
	}()

	if len(recovered) > 0 {
		b.log.Info("republishing journaled messages not acknowledged before the last stop", "count", len(recovered))
	}
	err = b.forward(runCtx, recovered)
	if err == nil || ctx.Err() != nil {
		b.drain(o.DrainTimeout)
	}
	stopRetrier()
	<-retrierDone
	b.mu.Lock()
	ferr := b.flushAcksLocked()
	left := len(b.inflight)
	b.mu.Unlock()
	if cerr := b.jf.close(); ferr == nil {
		ferr = cerr
	}
	if left > 0 {
		b.log.Info("stopped with messages unacknowledged; they stay journaled and are republished on the next start", "count", left)
	}
	if err == nil {
		if cause := context.Cause(runCtx); ctx.Err() == nil && cause != nil {
			err = cause // a fault from a callback
		}
	}
	if err == nil && ferr != nil {
		err = fmt.Errorf("mqbridge: out %s: %w", o.Journal, ferr)
	}
	return err
}

// check verifies at start-up what can be verified: a stream captures the
// subject, its message size limit and the server's max_payload hold the
// queue's largest message.
func (b *outBridge) check(ctx context.Context, nc *nats.Conn) error {
	o, q := b.o, b.o.Queue
	need := q.MessageSize() + headerAllowance
	if mp := nc.MaxPayload(); mp > 0 && int64(need) > mp {
		return fmt.Errorf("mqbridge: out %s: the server's max_payload is %d bytes, less than the queue's MessageSize %d plus %d for headers: raise max_payload in the server configuration, or use a queue with smaller messages", q.Name(), mp, q.MessageSize(), headerAllowance)
	}
	name, err := b.js.StreamNameBySubject(ctx, o.Subject)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("mqbridge: out %s: no stream captures subject %q: create one first, e.g. `nats stream add %s --subjects %q --dupe-window 2h`", q.Name(), o.Subject, orDefault(o.Stream, "STREAM"), o.Subject)
		}
		return fmt.Errorf("mqbridge: out %s: look up the stream of subject %q: %w", q.Name(), o.Subject, err)
	}
	if o.Stream != "" && name != o.Stream {
		return fmt.Errorf("mqbridge: out %s: subject %q is captured by stream %q, not %q: fix -subject or -stream", q.Name(), o.Subject, name, o.Stream)
	}
	b.stream = name
	b.streamH = []string{name}
	s, err := b.js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("mqbridge: out %s: stream %q: %w", q.Name(), name, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.MaxMsgSize > 0 && int(cfg.MaxMsgSize) < need {
		return fmt.Errorf("mqbridge: out %s: stream %q takes messages up to %d bytes, less than the queue's MessageSize %d plus %d for headers: raise it (`nats stream edit %s --max-msg-size %d`) or use a queue with smaller messages", q.Name(), name, cfg.MaxMsgSize, q.MessageSize(), headerAllowance, name, need)
	}
	dw := cfg.Duplicates
	b.log.Info("stream checked", "stream", name, "duplicate_window", dw,
		"note", "a message republished after an outage longer than the duplicate window can be stored twice")
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
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

// recover reads the journal, returns the messages it holds that were never
// acknowledged (in journal order), and rewrites it to hold only those.
func (b *outBridge) recover() ([]*nats.Msg, error) {
	// Reserve room for the records up to a rewrite (past compactBytes),
	// with a margin for the one append that crosses it.
	b.jf = journalFile{path: b.o.Journal, fsync: b.o.Fsync, reserve: compactBytes + 1<<20}
	data, err := readJournal(b.o.Journal)
	if err != nil {
		return nil, err
	}
	if data != nil {
		if len(data) < len(outMagic) || string(data[:len(outMagic)]) != outMagic {
			return nil, fmt.Errorf("not an out-direction journal of chanmq-bridge (wrong header); move it away if it belongs to something else")
		}
		_, err := readRecords(data, len(outMagic), func(kind byte, p []byte) error {
			switch kind {
			case 'M':
				if len(p) < 1 || len(p) < 1+int(p[0])+2 {
					return errors.New("malformed message record")
				}
				id := string(p[1 : 1+p[0]])
				prio := binary.LittleEndian.Uint16(p[1+p[0]:])
				body := p[1+int(p[0])+2:]
				b.order++
				b.inflight[id] = flight{msg: b.newMsg(id, uint(prio), slices.Clone(body)), order: b.order, prio: prio}
			case 'A':
				delete(b.inflight, string(p))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
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
	contents := []byte(outMagic)
	for _, f := range b.flightsInOrder() {
		contents = appendMsgRecord(contents, f.msg.Header.Get(nats.MsgIdHdr), f.prio, f.msg.Data)
	}
	if err := b.jf.rewrite(contents); err != nil {
		return err
	}
	b.acked = b.acked[:0]
	return b.newEpoch()
}

// appendMsgRecord appends the record of a message: id length, id,
// priority, data.
func appendMsgRecord(b []byte, id string, prio uint16, data []byte) []byte {
	var head [3]byte
	head[0] = byte(len(id))
	binary.LittleEndian.PutUint16(head[1:], prio)
	return appendRecordS(b, 'M', head[:1], id, head[1:], data)
}

// newMsg builds the message to publish: its headers are the ID, the
// expected stream (a slice shared by all messages; nothing modifies it)
// and the priority when it is not 0.
func (b *outBridge) newMsg(id string, prio uint, data []byte) *nats.Msg {
	h := make(nats.Header, 3)
	h[nats.MsgIdHdr] = []string{id}
	if b.stream != "" {
		h[nats.ExpectedStreamHdr] = b.streamH
	}
	if prio != 0 {
		h[PriorityHeader] = []string{strconv.FormatUint(uint64(prio), 10)}
	}
	return &nats.Msg{Subject: b.o.Subject, Header: h, Data: data}
}

// forward republishes the recovered messages, then receives, journals and
// publishes until ctx is done.
func (b *outBridge) forward(ctx context.Context, recovered []*nats.Msg) error {
	for _, m := range recovered {
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
			// They stay journaled; the drain waits for those published.
			return nil
		}
		b.publish(m)
	}
	q := b.o.Queue
	burst := make([]*nats.Msg, 0, maxBurst)
	for {
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		data, prio, err := q.Receive(ctx)
		if err != nil {
			<-b.slots
			if ctx.Err() != nil {
				return nil // cancelled: nothing was taken
			}
			return fmt.Errorf("mqbridge: out: %w", err)
		}
		// Take what else is queued, journaling each message before the next
		// receive (so a crash still loses at most the one in hand), and
		// publish them together: one flush of the connection per burst
		// instead of a wake-up of nats.go's flusher per message.
		for {
			m, jerr := b.journal(data, prio)
			if jerr != nil {
				b.publishAll(burst)
				return b.unjournaled(data, prio, jerr)
			}
			burst = append(burst, m)
			if len(burst) == maxBurst || !b.trySlot() {
				break
			}
			if data, prio, err = q.TryReceive(); err != nil {
				<-b.slots
				break
			}
		}
		b.publishAll(burst)
		burst = burst[:0]
		if err != nil && !errors.Is(err, chanmq.ErrEmpty) {
			return fmt.Errorf("mqbridge: out: %w", err)
		}
	}
}

// trySlot takes a window slot if one is free.
func (b *outBridge) trySlot() bool {
	select {
	case b.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// maxBurst is the most messages published together.
const maxBurst = 64

func (b *outBridge) publishAll(ms []*nats.Msg) {
	for _, m := range ms {
		b.publish(m)
	}
}

// unjournaled reports a journal failure, trying to give the message in
// hand back to the queue first.
func (b *outBridge) unjournaled(data []byte, prio uint, err error) error {
	q := b.o.Queue
	if perr := q.TrySend(data, prio); perr != nil {
		return fmt.Errorf("mqbridge: out %s: %w; the message in hand (%d bytes, priority %d) could not be put back (%v) and is lost", q.Name(), err, len(data), prio, perr)
	}
	return fmt.Errorf("mqbridge: out %s: %w (the message in hand was put back into the queue)", q.Name(), err)
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

// publish sends m asynchronously; a failure goes to the retrier.
func (b *outBridge) publish(m *nats.Msg) {
	if _, err := b.js.PublishMsgAsync(m); err != nil {
		b.retry <- m // never full: it holds every message in flight
	}
}

// onAck runs in nats.go's goroutine when the server stored a message (or
// recognised it as a duplicate of a stored one).
func (b *outBridge) onAck(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
	if b.onAckID(m.Header.Get(nats.MsgIdHdr)) {
		<-b.slots
	}
}

// onAckID records that the message with this ID is stored, and reports
// whether it was in flight.
func (b *outBridge) onAckID(id string) bool {
	b.mu.Lock()
	_, ok := b.inflight[id]
	if ok {
		delete(b.inflight, id)
		b.acked = appendRecordS(b.acked, 'A', nil, id, nil, nil)
	}
	b.mu.Unlock()
	return ok
}

// onErr runs in nats.go's goroutines when a publish failed or timed out.
// The message may still have been stored; it is republished with its ID,
// never dropped. A rejection by the stream (a 4xx API error) stops the
// bridge instead: republishing cannot fix it.
func (b *outBridge) onErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	var je jetstream.JetStreamError
	if errors.As(err, &je) {
		if ae := je.APIError(); ae != nil && ae.Code >= 400 && ae.Code < 500 && ae.Code != 408 {
			b.fail(fmt.Errorf("mqbridge: out: stream %q rejected message %s: %w; the message stays journaled and is republished on the next start once the cause is fixed", b.stream, m.Header.Get(nats.MsgIdHdr), err))
			return
		}
	}
	select {
	case b.retry <- m: // never full: it holds every message in flight
	case <-b.done: // Run returned; the message is journaled for the next start
	}
}

// retrier republishes failed messages with their IDs after a short pause,
// and writes acknowledgements to the journal when no message comes to
// carry them.
func (b *outBridge) retrier(ctx context.Context) {
	flush := time.NewTicker(100 * time.Millisecond)
	defer flush.Stop()
	var backlog []*nats.Msg
	var wait <-chan time.Time
	var lastLog time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-b.retry:
			backlog = append(backlog, m)
			if wait == nil {
				wait = time.After(200 * time.Millisecond)
			}
		case <-flush.C:
			b.mu.Lock()
			err := b.flushAcksLocked()
			b.mu.Unlock()
			if err != nil {
				b.fail(fmt.Errorf("mqbridge: out %s: %w", b.o.Journal, err))
			}
		case <-wait:
			wait = nil
			var still []*nats.Msg
			for _, m := range backlog {
				b.mu.Lock()
				_, ok := b.inflight[m.Header.Get(nats.MsgIdHdr)]
				b.mu.Unlock()
				if !ok {
					continue // acknowledged meanwhile
				}
				// A fresh Msg: nats.go keeps the failed one in its records.
				if _, err := b.js.PublishMsgAsync(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}); err != nil {
					still = append(still, m)
				}
			}
			if n := len(backlog); n > 0 && time.Since(lastLog) > 5*time.Second {
				b.log.Warn("republishing messages whose publish failed or timed out, with their original IDs", "count", n)
				lastLog = time.Now()
			}
			backlog = still
			if len(backlog) > 0 {
				wait = time.After(time.Second)
			}
		}
	}
}

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
