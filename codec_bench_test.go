package chanmq

import (
	"bytes"
	"encoding/gob"
	"testing"
)

// gobPerMessage is gob as a message codec would have to use it: a fresh
// Encoder and Decoder per message, because each message must stand on its
// own (competing receivers, receivers that start mid-stream), so every
// message carries gob's description of the type. It is here to be
// measured against JSON and Binary (see Codec's doc), not offered. It
// encodes a gobJob, codecJob without its methods: gob would otherwise
// carry codecJob's MarshalBinary output, which is not what a gob codec
// would be chosen for.
func gobPerMessage() Codec[codecJob] {
	return Funcs(
		func(buf []byte, v codecJob) ([]byte, error) {
			w := bytes.NewBuffer(buf)
			g := gobJob(v)
			err := gob.NewEncoder(w).Encode(&g)
			return w.Bytes(), err
		},
		func(data []byte) (codecJob, error) {
			var g gobJob
			err := gob.NewDecoder(bytes.NewReader(data)).Decode(&g)
			return codecJob(g), err
		})
}

// gobJob is codecJob without its methods.
type gobJob codecJob

// BenchmarkCodec encodes and decodes sampleJob, a small struct, with JSON,
// Binary (hand-written AppendBinary and UnmarshalBinary) and per-message
// gob, reporting each message's size as bytes/msg:
//
//	go test -run '^$' -bench '^BenchmarkCodec$' -benchmem -count 5
func BenchmarkCodec(b *testing.B) {
	codecs := []struct {
		name  string
		codec Codec[codecJob]
	}{
		{"json", JSON[codecJob]()},
		{"binary", Binary[codecJob]()},
		{"gob-per-message", gobPerMessage()},
	}
	job := sampleJob()
	for _, c := range codecs {
		msg, err := c.codec.Append(nil, job)
		if err != nil {
			b.Fatal(err)
		}
		if back, err := c.codec.Decode(msg); err != nil || back.ID != job.ID {
			b.Fatalf("%s round trip: %+v, %v", c.name, back, err)
		}
		size := float64(len(msg))
		b.Run(c.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				buf, _ = c.codec.Append(buf[:0], job)
			}
			b.ReportMetric(size, "bytes/msg")
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.codec.Decode(msg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(size, "bytes/msg")
		})
	}
}

// BenchmarkCodecAppend measures Append into a reused buffer for each
// built-in codec; allocs/op is the figure to watch (0 for Binary with
// AppendBinary, Bytes and String).
func BenchmarkCodecAppend(b *testing.B) {
	job := sampleJob()
	payload := []byte("resize images/a.png to 640x480")
	bench := func(name string, appendTo func([]byte) ([]byte, error)) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				buf, _ = appendTo(buf[:0])
			}
		})
	}
	text := string(payload)
	jc, bc, yc, sc := JSON[codecJob](), Binary[codecJob](), Bytes(), String()
	bench("json", func(buf []byte) ([]byte, error) { return jc.Append(buf, job) })
	bench("binary", func(buf []byte) ([]byte, error) { return bc.Append(buf, job) })
	bench("bytes", func(buf []byte) ([]byte, error) { return yc.Append(buf, payload) })
	bench("string", func(buf []byte) ([]byte, error) { return sc.Append(buf, text) })
}
