package mqbridge

import (
	"crypto/sha256"
	"encoding/hex"
	"sync/atomic"

	"github.com/chanmq/chanmq"
)

// OriginHeader, on every message Out publishes, names the queue it was
// read from: 32 hex digits of a SHA-256 of the host's boot ID, the IPC
// namespace and the queue's name. In refuses (ErrLoop) a message whose
// origin is its own queue's: the out and in bridges of one queue on one
// host would otherwise pass each message round for ever. The boot ID
// differs per host and per boot, and the IPC namespace per pod or
// container that has its own, so chained bridges (a queue of the same
// name on two hosts, or in two namespaces of one host) are not a loop. A
// digest keeps the header the same short size whatever the queue's name
// (up to 255 bytes), inside the room for headers the out direction
// checks the stream for.
//
// A loop through more than one queue (host A's /q to host B's /q and
// back) cannot be seen this way: a queue carries only bytes, so nothing
// of the first hop reaches the second.
const OriginHeader = "Chanmq-Origin"

// queueOrigin is the origin of the queue named name, as seen from this
// process, or "" where the host or namespace cannot be told (no header is
// set and no loop is looked for then).
func queueOrigin(name string) string {
	host := localHost()
	if host == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(host + "\x00" + name))
	return hex.EncodeToString(sum[:16])
}

// lastOrigin caches the header value of the last queue originHeader was
// asked for (a process usually bridges one queue out).
var lastOrigin atomic.Pointer[originEntry]

type originEntry struct {
	name string
	h    []string // shared by every message: nothing modifies it
}

// originHeader is the OriginHeader value of q (nil if unknown, or q is
// nil: a header with no value is not sent), without allocating for a
// queue asked for just before.
func originHeader(q *chanmq.Queue) []string {
	if q == nil {
		return nil
	}
	name := q.Name()
	if e := lastOrigin.Load(); e != nil && e.name == name {
		return e.h
	}
	e := &originEntry{name: name}
	if o := queueOrigin(name); o != "" {
		e.h = []string{o}
	}
	lastOrigin.Store(e)
	return e.h
}
