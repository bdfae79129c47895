//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chanmq/chanmq"
)

// This file is the typed stream: the child side of the impls that move
// records (a small struct) rather than []byte, each compared in the report
// with its []byte counterpart from the same run:
//
//	typed-bin    Of(q, Binary[record]()) pumps           vs pumps
//	typed-json   Of(q, JSON[record]()) pumps             vs pumps-json
//	pumps-json   []byte pumps with json.Marshal on the sending side and
//	             json.Unmarshal on the receiving side, as a user writes
//	             them by hand without typed channels
//
// and each again with the suffix -gmp1: both processes with GOMAXPROCS=1,
// against pumps-gmp1 and pumps-json-gmp1.
//
// Every record's encoding is exactly the queue's message size (Body is
// padded to make it so, for the codec in use), so a typed stream moves as
// many bytes per message as the []byte stream of the same size.

// typedPairs maps each typed impl to its []byte counterpart.
var typedPairs = map[string]string{
	"typed-bin":       "pumps",
	"typed-bin-gmp1":  "pumps-gmp1",
	"typed-json":      "pumps-json",
	"typed-json-gmp1": "pumps-json-gmp1",
}

// typedKind returns the impl without its -gmp1 suffix, and whether it is
// one of this file's.
func typedKind(impl string) (string, bool) {
	k := strings.TrimSuffix(impl, "-gmp1")
	switch k {
	case "typed-bin", "typed-json", "pumps-json":
		return k, true
	}
	return "", false
}

// record is the value the typed stream moves.
type record struct {
	ID   int64  `json:"id"`
	Seq  int64  `json:"seq"`
	Path string `json:"path"`
	Body string `json:"body"`
}

// seqBase keeps every Seq at ten decimal digits, so that a record's JSON
// has the same length all through the stream.
const seqBase = 1_000_000_000

// AppendBinary writes ID and Seq as 8 bytes each, then Path and Body as a
// uvarint length and the bytes.
func (r *record) AppendBinary(b []byte) ([]byte, error) {
	b = binary.LittleEndian.AppendUint64(b, uint64(r.ID))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Seq))
	b = binary.AppendUvarint(b, uint64(len(r.Path)))
	b = append(b, r.Path...)
	b = binary.AppendUvarint(b, uint64(len(r.Body)))
	return append(b, r.Body...), nil
}

var errBadRecord = errors.New("malformed record")

// UnmarshalBinary parses what AppendBinary writes, and nothing else.
func (r *record) UnmarshalBinary(data []byte) error {
	if len(data) < 16 {
		return errBadRecord
	}
	r.ID = int64(binary.LittleEndian.Uint64(data))
	r.Seq = int64(binary.LittleEndian.Uint64(data[8:]))
	data = data[16:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(data)
		if k <= 0 || n > uint64(len(data)-k) {
			return "", false
		}
		s := string(data[k : k+int(n)])
		data = data[k+int(n):]
		return s, true
	}
	var ok1, ok2 bool
	r.Path, ok1 = str()
	r.Body, ok2 = str()
	if !ok1 || !ok2 || len(data) != 0 {
		return errBadRecord
	}
	return nil
}

// newRecord returns the first record of a stream whose encodings (with
// the codec of kind) are size bytes long.
func newRecord(kind string, size int) (record, error) {
	r := record{ID: 42, Seq: seqBase, Path: "images/a.png"}
	enc := func() int {
		var b []byte
		if kind == "typed-bin" {
			b, _ = r.AppendBinary(nil)
		} else {
			b, _ = json.Marshal(r)
		}
		return len(b)
	}
	// Shrink the body until the encoding fits: a longer body can take one
	// more byte of length prefix.
	for n := size; n >= 0; n-- {
		r.Body = strings.Repeat("x", n)
		if enc() == size {
			return r, nil
		}
	}
	return r, fmt.Errorf("no %s record encodes to %d bytes", kind, size)
}

// openTyped makes the record kind sends at size and opens the queue.
func openTyped(kind string, size int, name string) (record, *chanmq.Queue, error) {
	rec, err := newRecord(kind, size)
	if err != nil {
		return rec, nil, err
	}
	q, err := chanmq.Open(name)
	return rec, q, err
}

// typedSend sends n records through the sending side of kind.
func typedSend(kind string, size, n int, name string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec, q, err := openTyped(kind, size, name)
	if err != nil {
		return err
	}
	defer q.Close()
	switch kind {
	case "typed-bin", "typed-json":
		codec := chanmq.Binary[record]()
		if kind == "typed-json" {
			codec = chanmq.JSON[record]()
		}
		return feed(chanmq.Of(q, codec).Sender(ctx), n, func(i int) (record, error) {
			rec.Seq = seqBase + int64(i)
			return rec, nil
		})
	case "pumps-json":
		return feed(q.Sender(ctx), n, func(i int) ([]byte, error) {
			rec.Seq = seqBase + int64(i)
			return json.Marshal(rec)
		})
	}
	return fmt.Errorf("unknown typed impl %q", kind)
}

// feed sends the values next makes for 0..n-1 on tx, closes tx.C and
// returns what Wait returns (or next's error).
func feed[T any](tx *chanmq.SenderOf[T], n int, next func(i int) (T, error)) error {
	for i := range n {
		v, err := next(i)
		if err != nil {
			close(tx.C)
			return errors.Join(err, tx.Wait())
		}
		select {
		case tx.C <- v:
		case <-tx.Done():
			return tx.Wait()
		}
	}
	close(tx.C)
	return tx.Wait()
}

// stopReceiver returns a func that cancels rx's context, drains rx.C and
// returns rx.Err.
func stopReceiver[T any](cancel context.CancelFunc, rx *chanmq.ReceiverOf[T]) func() error {
	return func() error {
		cancel()
		for range rx.C {
		}
		return rx.Err()
	}
}

// typedRecv receives n records through the receiving side of kind,
// checking each, and times the first to the last as roleRecv does.
func typedRecv(out io.Writer, kind string, size, n int, name string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	want, q, err := openTyped(kind, size, name)
	if err != nil {
		return err
	}
	defer q.Close()
	var next func() (record, error)
	var stop func() error
	switch kind {
	case "typed-bin", "typed-json":
		codec := chanmq.Binary[record]()
		if kind == "typed-json" {
			codec = chanmq.JSON[record]()
		}
		rx := chanmq.Of(q, codec).Receiver(ctx)
		next = func() (record, error) {
			v, ok := <-rx.C
			if !ok {
				return v, stopped(rx.Err())
			}
			return v, nil
		}
		stop = stopReceiver(cancel, rx)
	case "pumps-json":
		rx := q.Receiver(ctx)
		next = func() (record, error) {
			var v record
			m, ok := <-rx.C
			if !ok {
				return v, stopped(rx.Err())
			}
			err := json.Unmarshal(m, &v)
			return v, err
		}
		stop = stopReceiver(cancel, rx)
	default:
		return fmt.Errorf("unknown typed impl %q", kind)
	}
	var t0 time.Time
	for i := range n {
		v, err := next()
		if err != nil {
			_ = stop()
			return err
		}
		if v.Seq != seqBase+int64(i) || len(v.Body) != len(want.Body) || v.Path != want.Path {
			_ = stop()
			return fmt.Errorf("record %d: seq %d, body %d bytes, path %q; want seq %d, %d bytes, %q",
				i, v.Seq, len(v.Body), v.Path, seqBase+int64(i), len(want.Body), want.Path)
		}
		if i == 0 {
			t0 = time.Now()
		}
	}
	elapsed := time.Since(t0)
	if err := stop(); err != nil {
		return err
	}
	fmt.Fprintf(out, "msgs=%d elapsed_ns=%d\n", n-1, elapsed.Nanoseconds())
	return nil
}

func stopped(err error) error {
	if err != nil {
		return err
	}
	return errors.New("receive pump stopped")
}
