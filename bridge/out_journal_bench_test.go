package mqbridge

import (
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkOutJournal is the out direction's work per message between a
// receive and the publish (ID, journal record with the acknowledgements
// since the last write, one write(2), the message to publish), and the
// acknowledgement that follows.
func BenchmarkOutJournal(b *testing.B) {
	ob := &outBridge{cfg: &Out{Subject: "jobs.work", Journal: filepath.Join(b.TempDir(), "out.journal")},
		inflight: map[string]flight{}, stream: "JOBS", streamH: []string{"JOBS"}}
	if _, err := ob.recover(); err != nil {
		b.Fatal(err)
	}
	defer ob.jf.close()
	data := make([]byte, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		m, err := ob.journal(data, 0)
		if err != nil {
			b.Fatal(err)
		}
		ob.onAckID(m.Header.Get(jetstream.MsgIDHeader))
	}
}
