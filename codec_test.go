package chanmq

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// codecJob is the small struct the codec tests and benchmarks move: it has
// a hand-written binary form (AppendBinary, MarshalBinary, UnmarshalBinary
// on the pointer) as well as JSON tags.
type codecJob struct {
	ID     int64    `json:"id"`
	Path   string   `json:"path"`
	Width  int      `json:"width"`
	Height int      `json:"height"`
	Tags   []string `json:"tags"`
}

// AppendBinary writes ID, Path, Width, Height and Tags as varints and
// length-prefixed strings. It cannot tell a nil Tags from an empty one.
func (j *codecJob) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendVarint(b, j.ID)
	b = binary.AppendUvarint(b, uint64(len(j.Path)))
	b = append(b, j.Path...)
	b = binary.AppendVarint(b, int64(j.Width))
	b = binary.AppendVarint(b, int64(j.Height))
	b = binary.AppendUvarint(b, uint64(len(j.Tags)))
	for _, t := range j.Tags {
		b = binary.AppendUvarint(b, uint64(len(t)))
		b = append(b, t...)
	}
	return b, nil
}

func (j *codecJob) MarshalBinary() ([]byte, error) { return j.AppendBinary(nil) }

var errBadJob = errors.New("malformed codecJob")

// UnmarshalBinary parses what AppendBinary writes and refuses anything
// else, including lengths that run past the end and trailing bytes, so
// that hostile input gives an error rather than a panic or a huge
// allocation.
func (j *codecJob) UnmarshalBinary(data []byte) error {
	r := binReader{data: data}
	j.ID = r.varint()
	j.Path = r.str()
	j.Width = int(r.varint())
	j.Height = int(r.varint())
	n := r.uvarint()
	if n > uint64(len(r.data)) { // every tag takes at least one byte
		return errBadJob
	}
	j.Tags = nil
	for range n {
		j.Tags = append(j.Tags, r.str())
	}
	if r.bad || len(r.data) != 0 {
		return errBadJob
	}
	return nil
}

// binReader reads varints and strings, remembering the first failure.
type binReader struct {
	data []byte
	bad  bool
}

func (r *binReader) varint() int64   { return readVarint(r, binary.Varint) }
func (r *binReader) uvarint() uint64 { return readVarint(r, binary.Uvarint) }

// readVarint reads one value with read (binary.Varint or Uvarint).
func readVarint[V int64 | uint64](r *binReader, read func([]byte) (V, int)) V {
	v, n := read(r.data)
	if n <= 0 {
		r.bad, r.data = true, nil
		return 0
	}
	r.data = r.data[n:]
	return v
}

func (r *binReader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.data)) {
		r.bad, r.data = true, nil
		return ""
	}
	s := string(r.data[:n]) // a copy: UnmarshalBinary keeps nothing of data
	r.data = r.data[n:]
	return s
}

func sampleJob() codecJob {
	return codecJob{ID: 42, Path: "images/a.png", Width: 640, Height: 480, Tags: []string{"thumb"}}
}

// codecRoundTrip encodes v after a prefix already in the buffer, checks that the
// prefix survives and that the encoding decodes to want, and returns the
// encoding.
func codecRoundTrip[T any](t *testing.T, c Codec[T], v, want T) []byte {
	t.Helper()
	prefix := []byte("prefix")
	buf := append(make([]byte, 0, 64), prefix...)
	out, err := c.Append(buf, v)
	if err != nil {
		t.Fatalf("Append(%#v): %v", v, err)
	}
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("Append overwrote the bytes already in buf: %q", out[:len(prefix)])
	}
	msg := out[len(prefix):]
	got, err := c.Decode(msg)
	if err != nil {
		t.Fatalf("Decode(%q): %v", msg, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip of %#v gave %#v, want %#v (message %q)", v, got, want, msg)
	}
	return msg
}

// TestCodecsRoundTrip moves values through each built-in codec and back:
// zero values, nil and empty slices, unicode and invalid UTF-8 strings, and
// values whose encodings come close to 8192 bytes (the default largest
// message on Linux).
func TestCodecsRoundTrip(t *testing.T) {
	t.Parallel()
	bigPath := strings.Repeat("é/", 2000) // 6000 bytes of UTF-8
	bigJob := codecJob{ID: math.MinInt64, Path: bigPath, Width: -1, Height: math.MaxInt32, Tags: []string{strings.Repeat("t", 2000)}}
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	unicode := "héllo, 世界 🎉 \u2028 <&> \"quoted\" \\ \x00"

	t.Run("json", func(t *testing.T) {
		t.Parallel()
		c := JSON[codecJob]()
		codecRoundTrip(t, c, codecJob{}, codecJob{})
		codecRoundTrip(t, c, sampleJob(), sampleJob())
		// JSON keeps nil (null) and empty ([]) slices apart.
		codecRoundTrip(t, c, codecJob{Tags: []string{}}, codecJob{Tags: []string{}})
		codecRoundTrip(t, c, codecJob{Path: unicode, Tags: []string{unicode, ""}}, codecJob{Path: unicode, Tags: []string{unicode, ""}})
		if msg := codecRoundTrip(t, c, bigJob, bigJob); len(msg) < 8000 || len(msg) > 8192 {
			t.Errorf("the large job encodes to %d bytes, want 8000..8192", len(msg))
		}
		// Invalid UTF-8 is replaced by U+FFFD, as encoding/json does.
		codecRoundTrip(t, JSON[string](), "a\xffb", "a\uFFFDb")
		codecRoundTrip(t, JSON[string](), "", "")
		codecRoundTrip(t, JSON[[]int](), nil, nil)
		codecRoundTrip(t, JSON[[]int](), []int{}, []int{})
		codecRoundTrip(t, JSON[map[string]int](), map[string]int{"b": 2, "a": 1}, map[string]int{"a": 1, "b": 2})
		codecRoundTrip(t, JSON[*codecJob](), nil, nil)
		job := sampleJob()
		codecRoundTrip(t, JSON[*codecJob](), &job, &job)
		codecRoundTrip(t, JSON[any](), any(map[string]any{"n": 1.5, "s": []any{"x", true, nil}}), any(map[string]any{"n": 1.5, "s": []any{"x", true, nil}}))
		codecRoundTrip(t, JSON[float64](), math.MaxFloat64, math.MaxFloat64)
		codecRoundTrip(t, JSON[json.RawMessage](), json.RawMessage(`{"raw":[1,2]}`), json.RawMessage(`{"raw":[1,2]}`))
	})
	t.Run("binary", func(t *testing.T) {
		t.Parallel()
		c := Binary[codecJob]() // AppendBinary on *codecJob
		codecRoundTrip(t, c, codecJob{}, codecJob{})
		codecRoundTrip(t, c, sampleJob(), sampleJob())
		// This binary form has no way to say "empty, not nil".
		codecRoundTrip(t, c, codecJob{Tags: []string{}}, codecJob{})
		codecRoundTrip(t, c, codecJob{Path: unicode + "\xff", Tags: []string{unicode, ""}}, codecJob{Path: unicode + "\xff", Tags: []string{unicode, ""}})
		if msg := codecRoundTrip(t, c, bigJob, bigJob); len(msg) < 8000 || len(msg) > 8192 {
			t.Errorf("the large job encodes to %d bytes, want 8000..8192", len(msg))
		}
		// Standard library types: AppendBinary on the value (netip.Addr,
		// time.Time), MarshalBinary only (url.URL, on the pointer).
		for _, s := range []string{"", "192.0.2.1", "2001:db8::1", "fe80::1%eth0"} {
			var a netip.Addr
			if s != "" {
				a = netip.MustParseAddr(s)
			}
			codecRoundTrip(t, Binary[netip.Addr](), a, a)
		}
		utc := time.Date(2026, 11, 26, 10, 30, 0, 123456789, time.UTC)
		codecRoundTrip(t, Binary[time.Time](), utc, utc)
		// A fixed zone comes back with its offset but without its name.
		cet := utc.In(time.FixedZone("CET", 3600))
		msg, err := Binary[time.Time]().Append(nil, cet)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Binary[time.Time]().Decode(msg)
		if _, off := got.Zone(); err != nil || !got.Equal(cet) || off != 3600 {
			t.Errorf("time.Time in CET came back as %v, %v", got, err)
		}
		u, _ := url.Parse("https://user@example.com:8443/p%20q?x=1#frag")
		codecRoundTrip(t, Binary[url.URL](), *u, *u)
	})
	t.Run("bytes", func(t *testing.T) {
		t.Parallel()
		c := Bytes()
		// Nil and empty both arrive as a non-nil empty slice, as Receive
		// returns an empty message.
		codecRoundTrip(t, c, nil, []byte{})
		codecRoundTrip(t, c, []byte{}, []byte{})
		codecRoundTrip(t, c, allBytes, allBytes)
		codecRoundTrip(t, c, []byte(unicode), []byte(unicode))
		big := bytes.Repeat(allBytes, 32) // 8192 bytes
		if msg := codecRoundTrip(t, c, big, big); len(msg) != 8192 {
			t.Errorf("8192 bytes encode to %d", len(msg))
		}
	})
	t.Run("string", func(t *testing.T) {
		t.Parallel()
		c := String()
		codecRoundTrip(t, c, "", "")
		codecRoundTrip(t, c, unicode, unicode)
		codecRoundTrip(t, c, "a\xffb", "a\xffb") // kept as is: no UTF-8 check
		codecRoundTrip(t, c, string(allBytes), string(allBytes))
		big := strings.Repeat("世", 2730) // 8190 bytes
		if msg := codecRoundTrip(t, c, big, big); len(msg) != 8190 {
			t.Errorf("the large string encodes to %d bytes", len(msg))
		}
	})
	t.Run("funcs", func(t *testing.T) {
		t.Parallel()
		c := uint32Codec()
		for _, v := range []uint32{0, 1, math.MaxUint32} {
			if msg := codecRoundTrip(t, c, v, v); len(msg) != 4 {
				t.Errorf("%d encodes to %d bytes, want 4", v, len(msg))
			}
		}
	})
}

// uint32Codec is a Funcs codec for a 4-byte big-endian number.
func uint32Codec() Codec[uint32] {
	return Funcs(
		func(buf []byte, v uint32) ([]byte, error) { return binary.BigEndian.AppendUint32(buf, v), nil },
		func(data []byte) (uint32, error) {
			if len(data) != 4 {
				return 0, fmt.Errorf("want 4 bytes, got %d", len(data))
			}
			return binary.BigEndian.Uint32(data), nil
		})
}

// TestJSONAppendsEncodingJSONBytes proves the payload is exactly
// encoding/json's output: no newline, no header, no framing, HTML
// characters escaped as json.Marshal escapes them, map keys sorted.
func TestJSONAppendsEncodingJSONBytes(t *testing.T) {
	t.Parallel()
	values := []any{
		sampleJob(),
		codecJob{Path: "<script>&amp;</script> \u2028\u2029 é 世界 \x7f"},
		map[string]int{"z": 1, "a": 2, "m": 3},
		[]float64{0, -0.5, 1e21, 1e-7, math.MaxFloat64},
		"",
		nil,
		42,
		true,
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := JSON[any]().Append(nil, v)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("JSON[any]().Append(%#v) = %q, %v; json.Marshal gives %q", v, got, err, want)
		}
	}
	job := codecJob{Path: "<&>", Tags: []string{"x"}}
	want, _ := json.Marshal(job)
	got, err := JSON[codecJob]().Append([]byte("keep"), job)
	if err != nil || string(got) != "keep"+string(want) {
		t.Errorf("Append after a prefix = %q, %v; want %q", got, err, "keep"+string(want))
	}
	if bytes.HasSuffix(got, []byte("\n")) {
		t.Errorf("Append left a trailing newline: %q", got)
	}
}

// ptrMarshaled has MarshalJSON and UnmarshalJSON on the pointer, the
// combination json.Marshal(v) gets wrong (it skips the method on a value).
type ptrMarshaled struct{ n int }

func (p *ptrMarshaled) MarshalJSON() ([]byte, error) { return json.Marshal(fmt.Sprintf("n=%d", p.n)) }

func (p *ptrMarshaled) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	_, err := fmt.Sscanf(s, "n=%d", &p.n)
	return err
}

// TestJSONUsesPointerReceiverMarshalers pins the one documented difference
// from json.Marshal(v): Append encodes through a pointer, so a type whose
// MarshalJSON has a pointer receiver is encoded by it and round-trips.
func TestJSONUsesPointerReceiverMarshalers(t *testing.T) {
	t.Parallel()
	v := ptrMarshaled{n: 7}
	got, err := JSON[ptrMarshaled]().Append(nil, v)
	want, _ := json.Marshal(&v)
	if err != nil || !bytes.Equal(got, want) || string(got) != `"n=7"` {
		t.Fatalf("Append = %q, %v; want json.Marshal(&v) = %q", got, err, want)
	}
	back, err := JSON[ptrMarshaled]().Decode(got)
	if err != nil || back != v {
		t.Fatalf("Decode(%q) = %+v, %v; want %+v", got, back, err, v)
	}
}

// TestCodecsAppendInPlace checks that Append writes into buf's spare
// capacity instead of allocating a new array.
func TestCodecsAppendInPlace(t *testing.T) {
	t.Parallel()
	check := func(name string, appendTo func([]byte) ([]byte, error)) {
		buf := make([]byte, 3, 1024)
		out, err := appendTo(buf)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if len(out) <= 3 || &out[0] != &buf[0] {
			t.Errorf("%s: Append returned a new array (or nothing) though buf had room", name)
		}
	}
	job := sampleJob()
	check("json", func(b []byte) ([]byte, error) { return JSON[codecJob]().Append(b, job) })
	check("binary", func(b []byte) ([]byte, error) { return Binary[codecJob]().Append(b, job) })
	check("binary (MarshalBinary)", func(b []byte) ([]byte, error) {
		u, _ := url.Parse("https://example.com/")
		return Binary[url.URL]().Append(b, *u)
	})
	check("bytes", func(b []byte) ([]byte, error) { return Bytes().Append(b, []byte("abc")) })
	check("string", func(b []byte) ([]byte, error) { return String().Append(b, "abc") })
	check("funcs", func(b []byte) ([]byte, error) { return uint32Codec().Append(b, 7) })
}

// mergingBinary's UnmarshalBinary appends to what is already there, so
// decoding into an old value would accumulate.
type mergingBinary struct{ Seen []byte }

func (m *mergingBinary) UnmarshalBinary(data []byte) error {
	m.Seen = append(m.Seen, data...)
	return nil
}

// TestDecodeNeverMergesIntoAnOldValue decodes two messages with one codec
// and checks that nothing of the first shows in the second, for struct
// fields, map keys, slice elements and an UnmarshalBinary that appends.
func TestDecodeNeverMergesIntoAnOldValue(t *testing.T) {
	t.Parallel()
	type ab struct{ A, B int }
	cs := JSON[ab]()
	if _, err := cs.Decode([]byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if v, err := cs.Decode([]byte(`{"b":2}`)); err != nil || v != (ab{B: 2}) {
		t.Errorf(`second Decode = %+v, %v; want {A:0 B:2}`, v, err)
	}
	cm := JSON[map[string]int]()
	_, _ = cm.Decode([]byte(`{"a":1}`))
	if v, err := cm.Decode([]byte(`{"b":2}`)); err != nil || !reflect.DeepEqual(v, map[string]int{"b": 2}) {
		t.Errorf(`second map Decode = %v, %v; want map[b:2]`, v, err)
	}
	cl := JSON[[]int]()
	_, _ = cl.Decode([]byte(`[1,2,3]`))
	if v, err := cl.Decode([]byte(`[4]`)); err != nil || !reflect.DeepEqual(v, []int{4}) {
		t.Errorf(`second slice Decode = %v, %v; want [4]`, v, err)
	}
	cb := Binary[mergingBinary]()
	_, _ = cb.Decode([]byte("first"))
	if v, err := cb.Decode([]byte("second")); err != nil || string(v.Seen) != "second" {
		t.Errorf(`second binary Decode = %q, %v; want "second"`, v.Seen, err)
	}
	// A failed decode returns the zero value, not what was filled in before
	// the failure.
	if v, err := JSON[codecJob]().Decode([]byte(`{"id":1,"width":"wide"}`)); err == nil || !reflect.DeepEqual(v, codecJob{}) {
		t.Errorf("Decode of a half-valid message = %+v, %v; want the zero value and an error", v, err)
	}
}

// TestDecodeKeepsNoReferenceToData scribbles over each message after
// Decode, as a pump reusing its buffer does, and checks the values.
func TestDecodeKeepsNoReferenceToData(t *testing.T) {
	t.Parallel()
	scribble := func(b []byte) {
		for i := range b {
			b[i] = 'X'
		}
	}
	job := sampleJob()
	jsonMsg, _ := JSON[codecJob]().Append(nil, job)
	jv, _ := JSON[codecJob]().Decode(jsonMsg)
	rawMsg := []byte(`{"raw":"kept"}`)
	rv, _ := JSON[json.RawMessage]().Decode(rawMsg)
	binMsg, _ := Binary[codecJob]().Append(nil, job)
	bv, _ := Binary[codecJob]().Decode(binMsg)
	bytesMsg := []byte("bytes")
	yv, _ := Bytes().Decode(bytesMsg)
	strMsg := []byte("string")
	sv, _ := String().Decode(strMsg)
	for _, m := range [][]byte{jsonMsg, rawMsg, binMsg, bytesMsg, strMsg} {
		scribble(m)
	}
	if !reflect.DeepEqual(jv, job) || string(rv) != `{"raw":"kept"}` || !reflect.DeepEqual(bv, job) ||
		string(yv) != "bytes" || sv != "string" {
		t.Errorf("values changed with the message buffers: %+v %s %+v %q %q", jv, rv, bv, yv, sv)
	}
}

// jobV1 and jobV2 are one message type as an older and a newer program see
// it: the newer one added Priority.
type jobV1 struct {
	Path  string `json:"path"`
	Width int    `json:"width"`
}

type jobV2 struct {
	Path     string `json:"path"`
	Width    int    `json:"width"`
	Priority int    `json:"priority"`
}

// TestJSONToleratesFieldsFromANewerPeer decodes a newer peer's message into
// the older type without error, and shows that re-encoding the decoded
// value drops the new field: that is why a typed pump that stops puts back
// a message's original bytes, never a re-encoding.
func TestJSONToleratesFieldsFromANewerPeer(t *testing.T) {
	t.Parallel()
	newer, err := JSON[jobV2]().Append(nil, jobV2{Path: "a.png", Width: 640, Priority: 9})
	if err != nil {
		t.Fatal(err)
	}
	old, err := JSON[jobV1]().Decode(newer)
	if err != nil || old != (jobV1{Path: "a.png", Width: 640}) {
		t.Fatalf("older type decoded %q as %+v, %v", newer, old, err)
	}
	again, _ := JSON[jobV1]().Append(nil, old)
	if bytes.Equal(again, newer) || bytes.Contains(again, []byte("priority")) {
		t.Fatalf("re-encoding gave %q; expected it to lose the newer field of %q", again, newer)
	}
	if back, _ := JSON[jobV2]().Decode(again); back.Priority != 0 {
		t.Fatalf("priority survived re-encoding: %+v", back)
	}
}

// TestJSONDecodeStrictness pins what Decode accepts: one JSON value with
// optional surrounding white space; no trailing data, no empty message;
// null is the zero value, as with json.Unmarshal.
func TestJSONDecodeStrictness(t *testing.T) {
	t.Parallel()
	c := JSON[codecJob]()
	for _, bad := range []string{"", " ", `{"id":1}x`, `{"id":1} {"id":2}`, `{"id":1}` + "\n{", `{"id":`, "\xff", `[]`, `{"id":"one"}`} {
		v, err := c.Decode([]byte(bad))
		var ce *CodecError
		if !errors.As(err, &ce) || ce.Codec != "json" || ce.Op != "decode" || ce.Type != reflect.TypeFor[codecJob]() {
			t.Errorf("Decode(%q) = %+v, %v; want a json decode *CodecError for codecJob", bad, v, err)
			continue
		}
		if !reflect.DeepEqual(v, codecJob{}) {
			t.Errorf("Decode(%q) returned %+v with its error, want the zero value", bad, v)
		}
	}
	for _, good := range []string{`{"id":1}`, " \t\r\n{\"id\":1}\n", `{"id":1,"unknown":{"deep":[1,2]}}`, `{"ID":1}`} {
		if v, err := c.Decode([]byte(good)); err != nil || v.ID != 1 {
			t.Errorf("Decode(%q) = %+v, %v; want ID 1", good, v, err)
		}
	}
	if v, err := c.Decode([]byte("null")); err != nil || !reflect.DeepEqual(v, codecJob{}) {
		t.Errorf("Decode(null) = %+v, %v; want the zero value, as json.Unmarshal", v, err)
	}
}

// failingAppender appends a partial encoding and then fails, to check
// that a failed Append gives back buf as it was.
type failingAppender struct{}

var errAppend = errors.New("cannot encode")

func (*failingAppender) AppendBinary(b []byte) ([]byte, error) {
	return append(b, "partial"...), errAppend
}
func (*failingAppender) UnmarshalBinary([]byte) error { return errors.New("cannot decode") }

// unmarshalOnly can be decoded but has no binary encoding.
type unmarshalOnly struct{ b []byte }

func (u *unmarshalOnly) UnmarshalBinary(data []byte) error { u.b = bytes.Clone(data); return nil }

// valueMarshaler has MarshalBinary on the value and no AppendBinary.
type valueMarshaler struct{ s string }

func (v valueMarshaler) MarshalBinary() ([]byte, error)     { return []byte(v.s), nil }
func (v *valueMarshaler) UnmarshalBinary(data []byte) error { v.s = string(data); return nil }

// bothMethods has AppendBinary and MarshalBinary with different output.
type bothMethods struct{}

func (bothMethods) AppendBinary(b []byte) ([]byte, error) { return append(b, "append"...), nil }
func (bothMethods) MarshalBinary() ([]byte, error)        { return []byte("marshal"), nil }
func (*bothMethods) UnmarshalBinary([]byte) error         { return nil }

// TestCodecErrorsNameCodecAndType checks every failure a built-in codec
// reports: a *CodecError naming the codec, the operation and the Go type,
// unwrapping to the cause, with buf given back unchanged by Append.
func TestCodecErrorsNameCodecAndType(t *testing.T) {
	t.Parallel()
	buf := []byte("keep")
	check := func(what string, out []byte, err error, codec, op, text string, cause any) {
		t.Helper()
		var ce *CodecError
		if !errors.As(err, &ce) || ce.Codec != codec || ce.Op != op {
			t.Errorf("%s: %v, want a %s %s *CodecError", what, err, codec, op)
			return
		}
		if !strings.HasPrefix(err.Error(), text) {
			t.Errorf("%s: error %q, want it to start with %q", what, err, text)
		}
		switch c := cause.(type) {
		case error:
			if !errors.Is(err, c) {
				t.Errorf("%s: %v does not match %v", what, err, c)
			}
		default:
			if !errors.As(err, cause) {
				t.Errorf("%s: %v does not unwrap to %T", what, err, cause)
			}
		}
		if out != nil && string(out) != "keep" {
			t.Errorf("%s: Append returned %q, want buf unchanged", what, out)
		}
	}

	out, err := JSON[float64]().Append(buf, math.NaN())
	check("json NaN", out, err, "json", "encode", "json encode of float64: json: unsupported value: NaN", new(*json.UnsupportedValueError))
	out, err = JSON[chan int]().Append(buf, make(chan int))
	check("json chan", out, err, "json", "encode", "json encode of chan int: ", new(*json.UnsupportedTypeError))
	_, err = JSON[codecJob]().Decode([]byte(`{"id":`))
	check("json truncated", nil, err, "json", "decode", "json decode into chanmq.codecJob: unexpected end of JSON input", new(*json.SyntaxError))
	_, err = JSON[codecJob]().Decode([]byte(`{"width":"wide"}`))
	check("json wrong type", nil, err, "json", "decode", "json decode into chanmq.codecJob: json: cannot unmarshal", new(*json.UnmarshalTypeError))

	_, err = Binary[codecJob]().Decode([]byte{0x80})
	check("binary truncated", nil, err, "binary", "decode", "binary decode into chanmq.codecJob: malformed codecJob", errBadJob)
	out, err = Binary[failingAppender]().Append(buf, failingAppender{})
	check("binary append fails", out, err, "binary", "encode", "binary encode of chanmq.failingAppender: cannot encode", errAppend)
	out, err = Binary[unmarshalOnly]().Append(buf, unmarshalOnly{})
	check("binary no encoder", out, err, "binary", "encode",
		"binary encode of chanmq.unmarshalOnly: unsupported operation: neither chanmq.unmarshalOnly nor *chanmq.unmarshalOnly implements encoding.BinaryAppender or encoding.BinaryMarshaler",
		errors.ErrUnsupported)
	if v, err := Binary[unmarshalOnly]().Decode([]byte("ok")); err != nil || string(v.b) != "ok" {
		t.Errorf("a type without an encoder still decodes: got %q, %v", v.b, err)
	}

	errUser := errors.New("user codec failed")
	fc := Funcs(
		func(buf []byte, v int) ([]byte, error) { return append(buf, "junk"...), errUser },
		func([]byte) (int, error) { return 5, errUser })
	out, err = fc.Append(buf, 1)
	check("funcs encode", out, err, "funcs", "encode", "funcs encode of int: user codec failed", errUser)
	v, err := fc.Decode(nil)
	check("funcs decode", nil, err, "funcs", "decode", "funcs decode into int: user codec failed", errUser)
	if v != 0 {
		t.Errorf("failed funcs Decode returned %d, want the zero value", v)
	}
	encodeOnly := Funcs[int](func(buf []byte, v int) ([]byte, error) { return append(buf, byte(v)), nil }, nil)
	_, err = encodeOnly.Decode([]byte{1})
	check("funcs without decode", nil, err, "funcs", "decode", "funcs decode into int: unsupported operation", errors.ErrUnsupported)
	decodeOnly := Funcs[int](nil, func([]byte) (int, error) { return 1, nil })
	out, err = decodeOnly.Append(buf, 1)
	check("funcs without append", out, err, "funcs", "encode", "funcs encode of int: unsupported operation", errors.ErrUnsupported)
}

// TestBinaryPrefersAppendBinary checks the method order: AppendBinary when
// there is one, else MarshalBinary, on the value or the pointer.
func TestBinaryPrefersAppendBinary(t *testing.T) {
	t.Parallel()
	if out, err := Binary[bothMethods]().Append(nil, bothMethods{}); err != nil || string(out) != "append" {
		t.Errorf("with both methods Append = %q, %v; want AppendBinary's %q", out, err, "append")
	}
	if out, err := Binary[valueMarshaler]().Append([]byte("x:"), valueMarshaler{"v"}); err != nil || string(out) != "x:v" {
		t.Errorf("with MarshalBinary on the value Append = %q, %v; want %q", out, err, "x:v")
	}
}

// TestZeroLengthEncodings records which codecs can produce the zero-length
// message that a typed sender's end-of-stream marker uses: JSON cannot
// (and refuses to decode one), the others can.
func TestZeroLengthEncodings(t *testing.T) {
	t.Parallel()
	for _, v := range []any{nil, "", []int(nil), codecJob{}, (*codecJob)(nil), 0, map[string]int(nil)} {
		if out, err := JSON[any]().Append(nil, v); err != nil || len(out) == 0 {
			t.Errorf("JSON of %#v = %q, %v; want a non-empty encoding", v, out, err)
		}
	}
	if _, err := JSON[any]().Decode(nil); err == nil {
		t.Error("JSON decoded an empty message (the end-of-stream marker) without error")
	}

	// The others can: that is why a send pump with EndOfStream refuses
	// zero-length encodings itself (ErrEmptyMessage), whatever the codec.
	empties := []struct {
		name   string
		encode func() ([]byte, error)
	}{
		{"bytes", func() ([]byte, error) { return Bytes().Append(nil, nil) }},
		{"string", func() ([]byte, error) { return String().Append(nil, "") }},
		{"binary", func() ([]byte, error) { return Binary[netip.Addr]().Append(nil, netip.Addr{}) }},
		{"funcs", func() ([]byte, error) {
			return Funcs(func(b []byte, s string) ([]byte, error) { return append(b, s...), nil }, nil).Append(nil, "")
		}},
	}
	for _, e := range empties {
		out, err := e.encode()
		if err != nil || len(out) != 0 {
			t.Errorf("%s: example encoding %q, %v; want a zero-length encoding", e.name, out, err)
		}
	}

	if name := codecName(Codec[int](userCodec{})); name != "chanmq.userCodec" {
		t.Errorf("codecName of a codec from outside = %q", name)
	}
}

// userCodec stands for a Codec implemented outside this package.
type userCodec struct{}

func (userCodec) Append(buf []byte, v int) ([]byte, error) { return append(buf, byte(v)), nil }
func (userCodec) Decode(data []byte) (int, error)          { return len(data), nil }

// TestCodecsConcurrentUse shares one codec of each kind between goroutines
// (run with -race): the scratch space JSON and Binary reuse is per call.
func TestCodecsConcurrentUse(t *testing.T) {
	t.Parallel()
	jc, bc := JSON[codecJob](), Binary[codecJob]()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			buf := make([]byte, 0, 256)
			for i := range 200 {
				job := codecJob{ID: int64(g*1000 + i), Path: fmt.Sprint("p", g, i), Tags: []string{fmt.Sprint(i)}}
				for _, c := range []Codec[codecJob]{jc, bc} {
					var err error
					buf, err = c.Append(buf[:0], job)
					if err != nil {
						t.Error(err)
						return
					}
					got, err := c.Decode(buf)
					if err != nil || !reflect.DeepEqual(got, job) {
						t.Errorf("%s: got %+v, %v; want %+v", codecName(c), got, err, job)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// FuzzCodecDecode feeds arbitrary messages to every built-in codec's
// Decode: none may panic; a failure is a *CodecError with the zero value;
// a success re-encodes to something that decodes to the same value (for
// the types whose decoding is stable), and Bytes and String return the
// message's bytes.
func FuzzCodecDecode(f *testing.F) {
	job, _ := JSON[codecJob]().Append(nil, sampleJob())
	bin, _ := Binary[codecJob]().Append(nil, sampleJob())
	addr, _ := Binary[netip.Addr]().Append(nil, netip.MustParseAddr("2001:db8::1"))
	when, _ := Binary[time.Time]().Append(nil, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC))
	for _, seed := range [][]byte{
		nil, {}, job, bin, addr, when,
		[]byte(`{"id":1,"tags":null}`), []byte(`null`), []byte(`{"id":1}x`), []byte(`[[[[[[[[[[`),
		[]byte(`{"path":"\ud800"}`), []byte("\xff\xfe"), {0x80, 0x80, 0x80}, {0x02, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		fuzzDecode(t, JSON[codecJob](), data, true)
		fuzzDecode(t, JSON[map[string]any](), data, false)
		fuzzDecode(t, JSON[any](), data, false)
		fuzzDecode(t, JSON[[]string](), data, true)
		fuzzDecode(t, Binary[codecJob](), data, true)
		fuzzDecode(t, Binary[netip.Addr](), data, false)
		fuzzDecode(t, Binary[time.Time](), data, false)
		fuzzDecode(t, Binary[url.URL](), data, false)
		if v, err := Bytes().Decode(data); err != nil || !bytes.Equal(v, data) || v == nil {
			t.Fatalf("Bytes().Decode(%q) = %q, %v", data, v, err)
		}
		if v, err := String().Decode(data); err != nil || v != string(data) {
			t.Fatalf("String().Decode(%q) = %q, %v", data, v, err)
		}
		if !bytes.Equal(data, orig) {
			t.Fatalf("a Decode changed its input: %q became %q", orig, data)
		}
	})
}

// fuzzDecode decodes data with c. On failure it wants a *CodecError and the
// zero value; on success, when stable is true, it wants the value to
// survive another encode and decode unchanged.
func fuzzDecode[T any](t *testing.T, c Codec[T], data []byte, stable bool) {
	t.Helper()
	v, err := c.Decode(data)
	if err != nil {
		var ce *CodecError
		var zero T
		if !errors.As(err, &ce) || !reflect.DeepEqual(v, zero) {
			t.Fatalf("%s Decode(%q) = %#v, %v; want the zero value and a *CodecError", codecName(c), data, v, err)
		}
		return
	}
	if !stable {
		return
	}
	enc, err := c.Append(nil, v)
	if err != nil {
		t.Fatalf("%s: Append of a decoded value %#v: %v", codecName(c), v, err)
	}
	again, err := c.Decode(enc)
	if err != nil || !reflect.DeepEqual(again, v) {
		t.Fatalf("%s: %q decoded to %#v, re-encoded to %q, decoded to %#v, %v", codecName(c), data, v, enc, again, err)
	}
	if !utf8.Valid(enc) && codecName(c) == "json" {
		t.Fatalf("JSON encoding is not UTF-8: %q", enc)
	}
}
