package chanmq_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"strconv"

	"github.com/chanmq/chanmq"
)

type Job struct {
	Path  string `json:"path"`
	Width int    `json:"width"`
}

// The JSON codec's message is the JSON text itself, so a peer in any
// language reads it with its own JSON parser.
func ExampleJSON() {
	codec := chanmq.JSON[Job]()
	msg, err := codec.Append(nil, Job{Path: "a.png", Width: 640})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", msg)

	// A newer peer's extra field is ignored; a broken message is an error
	// that names the codec and the type.
	job, err := codec.Decode([]byte(`{"path":"b.png","width":320,"priority":9}`))
	fmt.Println(job, err)
	_, err = codec.Decode([]byte(`{"path":`))
	fmt.Println(err)
	// Output:
	// {"path":"a.png","width":640}
	// {b.png 320} <nil>
	// json decode into chanmq_test.Job: unexpected end of JSON input
}

// Point has a hand-written binary form: two big-endian 32-bit numbers.
type Point struct{ X, Y int32 }

func (p Point) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint32(b, uint32(p.X))
	return binary.BigEndian.AppendUint32(b, uint32(p.Y)), nil
}

func (p *Point) UnmarshalBinary(data []byte) error {
	if len(data) != 8 {
		return fmt.Errorf("point: %d bytes, want 8", len(data))
	}
	p.X = int32(binary.BigEndian.Uint32(data))
	p.Y = int32(binary.BigEndian.Uint32(data[4:]))
	return nil
}

// Binary uses a type's own AppendBinary (or MarshalBinary) and
// UnmarshalBinary; the second type parameter is inferred.
func ExampleBinary() {
	codec := chanmq.Binary[Point]()
	msg, _ := codec.Append(nil, Point{X: 1, Y: -1})
	fmt.Printf("% x\n", msg)
	p, err := codec.Decode(msg)
	fmt.Println(p, err)
	_, err = codec.Decode(msg[:3])
	var ce *chanmq.CodecError
	fmt.Println(errors.As(err, &ce), ce.Op, ce.Type)
	// Output:
	// 00 00 00 01 ff ff ff ff
	// {1 -1} <nil>
	// true decode chanmq_test.Point
}

// Funcs plugs in a format chanmq does not import (protobuf, MessagePack;
// see Funcs for both). Here, decimal text.
func ExampleFuncs() {
	codec := chanmq.Funcs(
		func(buf []byte, n int64) ([]byte, error) { return strconv.AppendInt(buf, n, 10), nil },
		func(data []byte) (int64, error) { return strconv.ParseInt(string(data), 10, 64) })
	msg, _ := codec.Append(nil, -42)
	n, err := codec.Decode(msg)
	fmt.Printf("%q %d %v\n", msg, n, err)
	_, err = codec.Decode([]byte("forty-two"))
	fmt.Println(errors.Is(err, strconv.ErrSyntax))
	// Output:
	// "-42" -42 <nil>
	// true
}
