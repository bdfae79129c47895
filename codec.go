package chanmq

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// Codec turns values of T into message bytes and back. A message is exactly
// the bytes Append appends: chanmq adds no header, length or framing, so a
// peer written in C, Python or Rust reads and writes the codec's own format
// (JSON text, for JSON) with plain mq_receive and mq_send.
//
// A Codec must be safe for concurrent use; every built-in one is. Decode
// must not panic on any input: any process allowed to write to a queue can
// send it any bytes. The built-in codecs report failures as *CodecError.
//
// A zero-length message is reserved as the end-of-stream marker of typed
// senders that opt into one. JSON never produces a zero-length encoding;
// Bytes, String, Binary and Funcs can (an empty slice or string, a type
// whose binary form of some value is empty), and a sender that queues an
// end-of-stream marker refuses such a value rather than send it.
//
// There is no gob codec. encoding/gob is a stream format: it describes a
// type once per stream, then sends values. A message must stand on its own
// (a queue may have competing receivers, and a receiver may start in the
// middle of a stream), so a gob codec would need a fresh Encoder and
// Decoder per message, each message carrying the type's description.
// For a small struct, per-message gob is larger, slower and allocates
// more than JSON, and far more than a hand-written binary form (go test
// -run '^$' -bench Codec runs BenchmarkCodec in codec_bench_test.go to
// measure it); and only Go reads it. Use JSON, or Binary with hand-written
// or generated AppendBinary and UnmarshalBinary (Funcs adapts any other
// format, gob included).
type Codec[T any] interface {
	// Append appends the encoding of v to buf and returns the extended buffer.
	Append(buf []byte, v T) ([]byte, error)
	// Decode decodes one whole message into a new T (never merging into an old
	// value). It must not keep data after it returns: the caller reuses it.
	Decode(data []byte) (T, error)
}

// CodecError is a failure to encode a value or to decode a message. It
// unwraps to the encoding package's error (such as *json.SyntaxError) or to
// what a Funcs function returned, so errors.Is and errors.As see the cause.
type CodecError struct {
	Codec string       // "json", "binary" or "funcs"
	Op    string       // "encode" or "decode"
	Type  reflect.Type // the Go type encoded or decoded into, such as main.Job
	Err   error        // the cause
	Panic any          // the value the codec panicked with, if it did (then Err describes it); nil otherwise
}

// Error reads like "json decode into main.Job: unexpected end of JSON
// input" or "binary encode of main.Point: ..."; the Queue's errors that
// carry it add "chanmq: " and the operation.
func (e *CodecError) Error() string {
	prep := " of "
	if e.Op == "decode" {
		prep = " into "
	}
	return e.Codec + " " + e.Op + prep + typeString(e.Type) + ": " + errString(e.Err)
}

// Unwrap returns the cause.
func (e *CodecError) Unwrap() error { return e.Err }

var _ interface {
	error
	Unwrap() error
} = (*CodecError)(nil)

func typeString(t reflect.Type) string {
	if t == nil {
		return "<nil>"
	}
	return t.String()
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// codecError wraps err (not nil) as codec's failure to encode or decode a T.
func codecError[T any](codec, op string, err error) error {
	return &CodecError{Codec: codec, Op: op, Type: reflect.TypeFor[T](), Err: err}
}

// codecRefusal returns why codec cannot carry T in the direction op
// ("encode" for senders, "decode" for receivers), or nil: an error that
// every Append (or Decode) of codec would return, whatever the value, such
// as JSON's refusal of a T with unexported fields or Binary's of a T with
// no encoder. Entry points that have an error result call it before they
// start, so that a pump does not fail on each value instead; it is a
// *CodecError matching errors.ErrUnsupported. A nil codec gives an error
// matching ErrInvalidOption.
func codecRefusal[T any](codec Codec[T], op string) error {
	if codec == nil {
		return fmt.Errorf("%w: nil Codec; pass one such as chanmq.JSON[%v]()", ErrInvalidOption, reflect.TypeFor[T]())
	}
	if r, ok := codec.(interface{ refusal(op string) error }); ok {
		return r.refusal(op)
	}
	return nil
}

// codecName is the name c uses in *CodecError ("json"...), or its Go type
// for a codec outside this package.
func codecName[T any](c Codec[T]) string {
	if n, ok := c.(interface{ name() string }); ok {
		return n.name()
	}
	return fmt.Sprintf("%T", c)
}

// JSON returns the codec for encoding/json: a message is the JSON text of
// one value, exactly as encoding/json writes it, with no newline and no
// framing, so any language's JSON parser reads it.
//
// JSON refuses a T that encoding/json would carry only in part. It skips
// unexported struct fields without a word, so Job{id: 42, Name: "a"} would
// arrive as Job{id: 0, Name: "a"}, where a Go channel carries every field.
// Such a T is refused: Append and Decode fail with a *CodecError that names
// the fields (such as Job.inner.id) and matches errors.ErrUnsupported (and
// ErrEncode, from a send), and typed pumps refuse it when they start. The
// check follows encoding/json's rules, once per type: fields tagged
// `json:"-"` are left out on purpose and are fine; the exported fields of
// an embedded struct, even an unexported one, are carried; a type with its
// own MarshalJSON or MarshalText (UnmarshalJSON or UnmarshalText, to
// decode) on T or *T carries itself, whatever its fields; pointers,
// slices, arrays and maps are followed, recursive types included; values
// held in interfaces are known only at run time and are not checked. To
// carry only the exported fields on purpose, use JSONSkipUnexported.
//
// Append(buf, v) appends what json.Marshal(&v) returns. That is the same as
// json.Marshal(v), except that MarshalJSON and MarshalText methods with
// pointer receivers are used too (json.Marshal(v) skips them on a value it
// cannot address), so a type with such methods round-trips through Decode,
// which uses its pointer-receiver UnmarshalJSON. Append reuses an internal
// encoder and a copy of v, so encoding a plain struct into a buffer with
// room allocates nothing; custom marshalers allocate what they allocate.
//
// Decode is json.Unmarshal into a new T, with its rules: fields the JSON has
// and T lacks are ignored (so a peer that added a field does not break an
// older receiver; note that re-encoding such a value drops the field),
// fields T has and the JSON lacks keep their zero values, and JSON null
// gives the zero T. Anything after the one JSON value, other than white
// space, is an error, and so is an empty message. On error Decode returns
// the zero T and a *CodecError wrapping encoding/json's error.
//
// JSON never encodes a value to zero bytes (the shortest JSON text is one
// byte long), so an empty message can never be one of its values.
func JSON[T any]() Codec[T] { return &jsonCodec[T]{refused: jsonRefusalsFor[T]()} }

// JSONSkipUnexported is JSON for a T whose unexported fields are meant to
// stay behind: it carries the exported fields only, as encoding/json does,
// and never refuses T. A decoded value has its unexported fields zero.
//
//	codec := chanmq.JSONSkipUnexported[Job]() // Job.cache is local to each process
func JSONSkipUnexported[T any]() Codec[T] { return &jsonCodec[T]{refused: &jsonRefusals{}} }

type jsonCodec[T any] struct {
	refused *jsonRefusals // why T cannot be carried whole; never nil
	scratch sync.Pool     // *jsonScratch[T]
}

// jsonScratch is what one Append needs: a copy of the value (so that the
// encoder gets a pointer without making the caller's value escape) and an
// encoder that writes into the caller's buffer.
type jsonScratch[T any] struct {
	v   T
	w   appendWriter
	enc *json.Encoder
}

// appendWriter is an io.Writer that appends to b.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (*jsonCodec[T]) name() string { return "json" }

func (c *jsonCodec[T]) refusal(op string) error {
	if op == "decode" {
		return c.refused.decode
	}
	return c.refused.encode
}

func (c *jsonCodec[T]) Append(buf []byte, v T) ([]byte, error) {
	if c.refused.encode != nil {
		return buf, c.refused.encode
	}
	s, _ := c.scratch.Get().(*jsonScratch[T])
	if s == nil {
		s = new(jsonScratch[T])
		s.enc = json.NewEncoder(&s.w) // escapes HTML, as json.Marshal does
	}
	s.v, s.w.b = v, buf
	err := s.enc.Encode(&s.v) // writes nothing on error
	out := s.w.b
	var zero T
	s.v, s.w.b = zero, nil // keep no references to the caller's data
	c.scratch.Put(s)
	if err != nil {
		return buf, codecError[T]("json", "encode", err)
	}
	return out[:len(out)-1], nil // drop the newline Encode writes after each value
}

func (c *jsonCodec[T]) Decode(data []byte) (T, error) {
	var v T
	if c.refused.decode != nil {
		return v, c.refused.decode
	}
	if err := json.Unmarshal(data, &v); err != nil {
		var zero T
		return zero, codecError[T]("json", "decode", err)
	}
	return v, nil
}

// Binary returns the codec for a type with its own binary form, such as
// netip.Addr, time.Time or a type with hand-written or generated methods:
// chanmq.Binary[Point]() (the second type parameter is inferred).
//
// Append uses AppendBinary (encoding.BinaryAppender) when T or *T has it,
// else MarshalBinary (encoding.BinaryMarshaler); with AppendBinary,
// appending into a buffer with room allocates nothing beyond what the
// method allocates. If T has neither, Append fails with a *CodecError that
// names T and matches errors.ErrUnsupported; such a codec can still Decode.
//
// Decode calls UnmarshalBinary on a new T, so a message never merges into
// an old value; encoding.BinaryUnmarshaler already requires that the method
// copy the data it keeps. The new T is one allocation. Decode is as robust
// against hostile bytes as T's UnmarshalBinary: it must return an error,
// not panic, on any input.
//
// Whether a value can encode to zero bytes depends on T (the zero
// netip.Addr does); see Codec on why that matters.
func Binary[T any, PT interface {
	*T
	encoding.BinaryUnmarshaler
}]() Codec[T] {
	c := &binaryCodec[T, PT]{}
	switch any((*T)(nil)).(type) { // *T's methods include T's
	case encoding.BinaryAppender:
		c.appender = true
	case encoding.BinaryMarshaler:
		c.marshaler = true
	default:
		t := reflect.TypeFor[T]()
		c.noEncoder = codecError[T]("binary", "encode", fmt.Errorf(
			"%w: neither %v nor *%v implements encoding.BinaryAppender or encoding.BinaryMarshaler",
			errors.ErrUnsupported, t, t))
	}
	return c
}

type binaryCodec[T any, PT interface {
	*T
	encoding.BinaryUnmarshaler
}] struct {
	appender, marshaler bool
	noEncoder           error     // Append's error when T has neither method
	scratch             sync.Pool // *T: calling a method through &v would move v to the heap
}

func (*binaryCodec[T, PT]) name() string { return "binary" }

func (c *binaryCodec[T, PT]) refusal(op string) error {
	if op == "encode" {
		return c.noEncoder
	}
	return nil
}

func (c *binaryCodec[T, PT]) Append(buf []byte, v T) ([]byte, error) {
	if c.noEncoder != nil {
		return buf, c.noEncoder
	}
	p, _ := c.scratch.Get().(*T)
	if p == nil {
		p = new(T)
	}
	*p = v
	var out []byte
	var err error
	if c.appender {
		out, err = any(p).(encoding.BinaryAppender).AppendBinary(buf)
	} else {
		var b []byte
		if b, err = any(p).(encoding.BinaryMarshaler).MarshalBinary(); err == nil {
			out = append(buf, b...)
		}
	}
	var zero T
	*p = zero // keep no references to the caller's data
	c.scratch.Put(p)
	if err != nil {
		return buf, codecError[T]("binary", "encode", err)
	}
	return out, nil
}

func (*binaryCodec[T, PT]) Decode(data []byte) (T, error) {
	var v T
	if err := PT(&v).UnmarshalBinary(data); err != nil {
		var zero T
		return zero, codecError[T]("binary", "decode", err)
	}
	return v, nil
}

// Bytes returns the codec for raw bytes: a message is the slice's bytes.
// Append never fails and, into a buffer with room, never allocates. Decode
// never fails and returns a copy of the message (a non-nil empty slice for
// an empty one), so nil and empty slices both arrive as empty slices. An
// empty slice encodes to zero bytes; see Codec on why that matters.
func Bytes() Codec[[]byte] { return bytesCodec{} }

type bytesCodec struct{}

func (bytesCodec) name() string { return "bytes" }

func (bytesCodec) Append(buf []byte, v []byte) ([]byte, error) { return append(buf, v...), nil }

func (bytesCodec) Decode(data []byte) ([]byte, error) {
	if len(data) == 0 {
		return []byte{}, nil
	}
	return bytes.Clone(data), nil
}

// String returns the codec for strings: a message is the string's bytes,
// with no terminating NUL (a C peer gets the length from mq_receive).
// Append never fails and, into a buffer with room, never allocates. Decode
// never fails and does not check that the bytes are UTF-8, as a Go
// string conversion does not. The empty string encodes to zero bytes; see
// Codec on why that matters.
func String() Codec[string] { return stringCodec{} }

type stringCodec struct{}

func (stringCodec) name() string { return "string" }

func (stringCodec) Append(buf []byte, v string) ([]byte, error) { return append(buf, v...), nil }

func (stringCodec) Decode(data []byte) (string, error) { return string(data), nil }

// Funcs returns a codec made of two functions, for formats chanmq does not
// import, such as protobuf or MessagePack. appendFn appends the encoding of
// v to buf; decodeFn decodes one whole message into a new T and must not
// keep data (copy what you keep). Their errors come back wrapped in a
// *CodecError, with buf from Append and the zero T from Decode (whatever the
// function returned with its error is dropped). A nil function makes that direction fail with an error
// matching errors.ErrUnsupported: Funcs(appendFn, nil) is an encode-only
// codec for a sender. Both functions must be safe for concurrent use, and
// decodeFn must not panic on any input.
//
// Protocol buffers (google.golang.org/protobuf/proto; proto.Unmarshal
// copies what it keeps):
//
//	codec := chanmq.Funcs(
//		func(buf []byte, job *pb.Job) ([]byte, error) {
//			return proto.MarshalOptions{}.MarshalAppend(buf, job)
//		},
//		func(data []byte) (*pb.Job, error) {
//			job := new(pb.Job)
//			return job, proto.Unmarshal(data, job)
//		})
//
// MessagePack (github.com/vmihailenco/msgpack/v5):
//
//	codec := chanmq.Funcs(
//		func(buf []byte, job Job) ([]byte, error) {
//			b, err := msgpack.Marshal(job)
//			return append(buf, b...), err
//		},
//		func(data []byte) (job Job, err error) {
//			err = msgpack.Unmarshal(data, &job)
//			return job, err
//		})
//
// Whether a value can encode to zero bytes depends on the format (an empty
// protobuf message does); see Codec on why that matters.
func Funcs[T any](appendFn func(buf []byte, v T) ([]byte, error), decodeFn func(data []byte) (T, error)) Codec[T] {
	return &funcsCodec[T]{appendFn: appendFn, decodeFn: decodeFn}
}

type funcsCodec[T any] struct {
	appendFn func(buf []byte, v T) ([]byte, error)
	decodeFn func(data []byte) (T, error)
}

func (*funcsCodec[T]) name() string { return "funcs" }

func (c *funcsCodec[T]) refusal(op string) error {
	switch {
	case op == "encode" && c.appendFn == nil:
		_, err := c.Append(nil, *new(T))
		return err
	case op == "decode" && c.decodeFn == nil:
		_, err := c.Decode(nil)
		return err
	}
	return nil
}

func (c *funcsCodec[T]) Append(buf []byte, v T) ([]byte, error) {
	if c.appendFn == nil {
		return buf, codecError[T]("funcs", "encode", fmt.Errorf("%w: no append function (Funcs was given nil)", errors.ErrUnsupported))
	}
	out, err := c.appendFn(buf, v)
	if err != nil {
		return buf, codecError[T]("funcs", "encode", err)
	}
	return out, nil
}

func (c *funcsCodec[T]) Decode(data []byte) (T, error) {
	var zero T
	if c.decodeFn == nil {
		return zero, codecError[T]("funcs", "decode", fmt.Errorf("%w: no decode function (Funcs was given nil)", errors.ErrUnsupported))
	}
	v, err := c.decodeFn(data)
	if err != nil {
		return zero, codecError[T]("funcs", "decode", err)
	}
	return v, nil
}
