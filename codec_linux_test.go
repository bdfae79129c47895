//go:build linux

package chanmq

import (
	"bytes"
	"errors"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// TestCodecAppendAllocations pins the allocation figures of Append into a
// buffer with room: none for Binary with AppendBinary, Bytes, String and
// JSON of a plain struct. It logs Decode's figures, which are the new value
// and what the encoding package allocates.
func TestCodecAppendAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, so scratch space is reallocated")
	}
	job := sampleJob()
	payload := []byte("resize images/a.png to 640x480")
	text := string(payload)
	addr := netip.MustParseAddr("2001:db8::1")
	buf := make([]byte, 0, 1024)
	// Codecs are built outside the measured functions: a pump makes its
	// codec once, not once per message.
	jc, bc, ac, yc, sc := JSON[codecJob](), Binary[codecJob](), Binary[netip.Addr](), Bytes(), String()
	appends := []struct {
		name string
		max  float64
		fn   func()
	}{
		{"binary (AppendBinary on *T)", 0, func() { buf, _ = bc.Append(buf[:0], job) }},
		{"binary (AppendBinary on T)", 0, func() { buf, _ = ac.Append(buf[:0], addr) }},
		{"bytes", 0, func() { buf, _ = yc.Append(buf[:0], payload) }},
		{"string", 0, func() { buf, _ = sc.Append(buf[:0], text) }},
		{"json (plain struct)", 0, func() { buf, _ = jc.Append(buf[:0], job) }},
	}
	for _, a := range appends {
		if got := testing.AllocsPerRun(1000, a.fn); got > a.max {
			t.Errorf("%s: Append allocates %v times, want %v", a.name, got, a.max)
		} else {
			t.Logf("%s: Append allocates %v times", a.name, got)
		}
	}
	jsonMsg, _ := jc.Append(nil, job)
	binMsg, _ := bc.Append(nil, job)
	t.Logf("json Decode of %d bytes: %v allocations", len(jsonMsg), testing.AllocsPerRun(1000, func() { _, _ = jc.Decode(jsonMsg) }))
	t.Logf("binary Decode of %d bytes: %v allocations (the new T, its string, slice and tag)", len(binMsg),
		testing.AllocsPerRun(1000, func() { _, _ = bc.Decode(binMsg) }))
	t.Logf("string Decode: %v allocations", testing.AllocsPerRun(1000, func() { _, _ = sc.Decode(payload) }))
	t.Logf("bytes Decode: %v allocations", testing.AllocsPerRun(1000, func() { _, _ = yc.Decode(payload) }))
}

// TestCodecMessagesCrossTheKernelUnchanged sends each codec's encoding
// through a real queue with Send and takes it with Receive: the kernel
// message is exactly Append's bytes (no header, no framing), including
// zero-length and full-size (8192-byte) encodings, and it decodes to the
// value sent.
func TestCodecMessagesCrossTheKernelUnchanged(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t, MaxMessages(1), MessageSize(8192))
	ctx := t.Context()
	through := func(t *testing.T, msg []byte) []byte {
		t.Helper()
		if err := q.Send(ctx, msg, 7); err != nil {
			t.Fatalf("Send of %d bytes: %v", len(msg), err)
		}
		got, prio, err := q.Receive(ctx)
		if err != nil || prio != 7 || !bytes.Equal(got, msg) {
			t.Fatalf("Receive = %d bytes prio %d %v; want the %d bytes sent, prio 7", len(got), prio, err, len(msg))
		}
		return got
	}
	big := codecJob{ID: math.MaxInt64, Path: strings.Repeat("日本", 1300), Tags: []string{strings.Repeat("x", 300)}}
	for _, job := range []codecJob{{}, sampleJob(), big} {
		for _, c := range []Codec[codecJob]{JSON[codecJob](), Binary[codecJob]()} {
			msg, err := c.Append(nil, job)
			if err != nil || len(msg) > 8192 {
				t.Fatalf("%s: %d bytes, %v", codecName(c), len(msg), err)
			}
			if back, err := c.Decode(through(t, msg)); err != nil || !reflect.DeepEqual(back, job) {
				t.Fatalf("%s: %+v came back as %+v, %v", codecName(c), job, back, err)
			}
		}
	}
	full := bytes.Repeat([]byte{0, 0xff, '\n'}, 8192/3+1)[:8192]
	for _, v := range [][]byte{nil, {0}, full} {
		msg, _ := Bytes().Append(nil, v)
		if back, err := Bytes().Decode(through(t, msg)); err != nil || !bytes.Equal(back, v) {
			t.Fatalf("bytes: %d bytes came back as %d, %v", len(v), len(back), err)
		}
	}
	for _, v := range []string{"", "é", string(full)} {
		msg, _ := String().Append(nil, v)
		if back, err := String().Decode(through(t, msg)); err != nil || back != v {
			t.Fatalf("string: %d bytes came back as %d, %v", len(v), len(back), err)
		}
	}
}

// TestQueueOfRefusesJSONTypeWithUnexportedFields: a send of a T whose
// unexported field would be dropped fails with ErrEncode, names the field,
// and queues nothing.
func TestQueueOfRefusesJSONTypeWithUnexportedFields(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	err := Of(q, JSON[fieldsJob]()).Send(t.Context(), fieldsJob{id: 42, Name: "a"}, 0)
	if !errors.Is(err, ErrEncode) || !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "fieldsJob.id") {
		t.Fatalf("Send = %v, want ErrEncode and ErrUnsupported naming fieldsJob.id", err)
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("queue holds %d messages after the refused send, want 0", n)
	}
	if err := Of(q, JSONSkipUnexported[fieldsJob]()).Send(t.Context(), fieldsJob{id: 42, Name: "a"}, 0); err != nil {
		t.Fatalf("Send with JSONSkipUnexported = %v", err)
	}
	if msg, _, err := q.TryReceive(); err != nil || string(msg) != `{"Name":"a"}` {
		t.Fatalf("queued %q, %v; want {\"Name\":\"a\"}", msg, err)
	}
}

// Pumps and the Open* constructors refuse such a T before they start: no
// value is accepted only to be reported unsent, no message is taken out of
// the kernel only to fail to decode.
func TestPumpsRefuseJSONTypeWithUnexportedFieldsAtStart(t *testing.T) {
	t.Parallel()
	q := newTestQueue(t)
	sendMessages(t, q, msg(`{"Name":"a"}`, 0))
	jobs := Of(q, JSON[fieldsJob]())
	rx := jobs.Receiver(t.Context())
	waitClosed(t, rx.C)
	if err := rx.Err(); !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "fieldsJob.id") {
		t.Fatalf("Receiver Err = %v, want ErrUnsupported naming fieldsJob.id", err)
	}
	if _, _, err := jobs.TryReceive(); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("TryReceive = %v, want ErrUnsupported", err)
	}
	if n := q.Len(); n != 1 {
		t.Fatalf("the refused receives took the message: %d queued, want 1", n)
	}
	tx := jobs.Sender(t.Context())
	<-tx.Done()
	if err := closeAndWait(tx); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Sender Wait = %v, want ErrUnsupported", err)
	}
	if _, err := OpenSenderOf(t.Context(), q.Name(), JSON[fieldsJob]()); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("OpenSenderOf = %v, want ErrUnsupported", err)
	}
	if _, err := OpenReceiverOf(t.Context(), q.Name(), JSON[fieldsJob]()); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("OpenReceiverOf = %v, want ErrUnsupported", err)
	}
}
