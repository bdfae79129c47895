package chanmq

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// JSON[T] refuses a T that encoding/json would carry only in part (issue
// 16, item 5): unexported fields are dropped without a word.

type fieldsJob struct {
	id   int
	Name string
}

type fieldsInner struct {
	Exported int
	id       int
}

type fieldsNested struct {
	Name  string
	Inner fieldsInner
}

// fieldsBase is an unexported struct whose exported fields encoding/json
// promotes when it is embedded.
type fieldsBase struct{ A, B int }

type fieldsEmbedsBase struct {
	fieldsBase
	C int
}

type fieldsEmbedsBasePtr struct {
	*fieldsBase
	C int
}

type fieldsEmbedsInner struct {
	fieldsInner
	Name string
}

type fieldsSkipped struct {
	Name  string
	cache map[string]int `json:"-"`
}

type fieldsSelfCoded struct {
	When time.Time    // MarshalJSON on the value, unexported fields inside
	P    ptrMarshaled // MarshalJSON on the pointer: fields are addressable
}

// ptrTextOnly encodes itself through a pointer, and has no decoder.
type ptrTextOnly struct{ n int }

func (p *ptrTextOnly) MarshalText() ([]byte, error) { return []byte("text"), nil }

type fieldsMapOfPtrText struct {
	M map[string]ptrTextOnly // not addressable: encoded as {}, decoded as zero
}

type fieldsMapOfPtrMarshaled struct {
	M map[string]ptrMarshaled // map values are not addressable: encoding/json walks the fields
}

type fieldsContainers struct {
	Ptr   *fieldsInner
	Slice []fieldsInner
	Array [1]fieldsInner
	Map   map[string]fieldsInner
}

type fieldsNode struct {
	Next *fieldsNode
	Kids []fieldsNode
	v    int
}

type fieldsCleanNode struct {
	Next *fieldsCleanNode
	Kids map[string]fieldsCleanNode
	V    int
}

type fieldsIface struct{ Any any }

// fieldsEmbeddedNamed embeds an unexported struct under a JSON name: it is
// carried as a field, like any struct field, and its own fields count.
type fieldsEmbeddedNamed struct {
	fieldsBase `json:"base"`
}

type fieldsEmbeddedInt int

type fieldsEmbedsInt struct {
	fieldsEmbeddedInt
	Name string
}

// jsonRefusalCase is one T: a value with every field set, and the fields
// JSON must name when it refuses (none: it must accept).
type jsonRefusalCase struct {
	name         string
	v            any    // a T with every field set
	encodeDrops  string // "" when JSON[T] must encode it
	decodeDrops  string // "" when JSON[T] must decode it
	codec        func() (refusal func(op string) error, roundTrip func() (any, error))
	lossyForJSON bool // encoding/json's own round trip loses part of v without an error
	failsForJSON bool // encoding/json's own round trip fails out loud
}

func refusalCase[T any](name string, v T, encodeDrops, decodeDrops string) jsonRefusalCase {
	c := jsonRefusalCase{name: name, v: v, encodeDrops: encodeDrops, decodeDrops: decodeDrops}
	c.codec = func() (func(string) error, func() (any, error)) {
		codec := JSON[T]()
		return func(op string) error { return codecRefusal(codec, op) }, func() (any, error) {
			b, err := codec.Append(nil, v)
			if err != nil {
				return nil, err
			}
			return codec.Decode(b)
		}
	}
	b, err := json.Marshal(&v)
	var back T
	if err == nil {
		err = json.Unmarshal(b, &back)
	}
	c.failsForJSON = err != nil
	c.lossyForJSON = err == nil && !reflect.DeepEqual(back, v)
	return c
}

func jsonRefusalCases() []jsonRefusalCase {
	inner := fieldsInner{Exported: 1, id: 2}
	base := fieldsBase{A: 1, B: 2}
	return []jsonRefusalCase{
		refusalCase("unexported field", fieldsJob{id: 42, Name: "a"}, "fieldsJob.id", "fieldsJob.id"),
		refusalCase("anonymous struct", struct{ x int }{x: 1}, "struct { x int }.x", "struct { x int }.x"),
		refusalCase("nested", fieldsNested{Name: "n", Inner: inner}, "fieldsNested.Inner.id", "fieldsNested.Inner.id"),
		refusalCase("embedded unexported struct, exported fields", fieldsEmbedsBase{fieldsBase: base, C: 3}, "", ""),
		// Decoding into it fails out loud ("cannot set embedded pointer to
		// unexported struct"): nothing is lost quietly.
		refusalCase("embedded pointer to unexported struct", fieldsEmbedsBasePtr{fieldsBase: &base, C: 3}, "", ""),
		refusalCase("embedded struct with an unexported field", fieldsEmbedsInner{fieldsInner: inner, Name: "n"},
			"fieldsEmbedsInner.fieldsInner.id", "fieldsEmbedsInner.fieldsInner.id"),
		refusalCase("embedded unexported non-struct", fieldsEmbedsInt{fieldsEmbeddedInt: 5, Name: "n"},
			"fieldsEmbedsInt.fieldsEmbeddedInt", "fieldsEmbedsInt.fieldsEmbeddedInt"),
		refusalCase("embedded struct under a JSON name", fieldsEmbeddedNamed{fieldsBase: base}, "", ""),
		// Left out on purpose: a value with it set would not round-trip.
		refusalCase("tagged json:\"-\"", fieldsSkipped{Name: "n", cache: nil}, "", ""),
		refusalCase("types that marshal themselves", fieldsSelfCoded{When: time.Unix(1, 2).UTC(), P: ptrMarshaled{n: 3}}, "", ""),
		refusalCase("pointer-receiver MarshalText as a map value", fieldsMapOfPtrText{M: map[string]ptrTextOnly{"a": {n: 1}}},
			"fieldsMapOfPtrText.M[].n", "fieldsMapOfPtrText.M[].n"),
		// encoding/json encodes {} and then fails to decode it: loud.
		refusalCase("pointer-receiver marshaler as a map value", fieldsMapOfPtrMarshaled{M: map[string]ptrMarshaled{"a": {n: 1}}},
			"fieldsMapOfPtrMarshaled.M[].n", ""),
		refusalCase("pointer, slice, array and map of structs",
			fieldsContainers{Ptr: &inner, Slice: []fieldsInner{inner}, Array: [1]fieldsInner{inner}, Map: map[string]fieldsInner{"k": inner}},
			"fieldsContainers.Ptr.id", "fieldsContainers.Ptr.id"),
		refusalCase("slice of structs", []fieldsInner{inner}, "[]chanmq.fieldsInner[].id", "[]chanmq.fieldsInner[].id"),
		refusalCase("pointer at the top", &fieldsJob{id: 1, Name: "p"}, "*chanmq.fieldsJob.id", "*chanmq.fieldsJob.id"),
		refusalCase("recursive type", fieldsNode{Next: &fieldsNode{v: 2}, Kids: []fieldsNode{{v: 3}}, v: 1}, "fieldsNode.v", "fieldsNode.v"),
		refusalCase("recursive type, all exported", fieldsCleanNode{Next: &fieldsCleanNode{V: 2}, Kids: map[string]fieldsCleanNode{"k": {V: 3}}, V: 1}, "", ""),
		refusalCase("interface field", fieldsIface{Any: "x"}, "", ""),
		refusalCase("plain map", map[string]int{"a": 1}, "", ""),
	}
}

// TestJSONRefusesTypesWithUnexportedFields checks, for each kind of T,
// that JSON[T] refuses exactly the types whose values encoding/json would
// not carry whole (the test's own json round trip of a value with every
// field set is the judge), naming the first field lost, from Append,
// Decode and codecRefusal alike, and that what it accepts round-trips.
func TestJSONRefusesTypesWithUnexportedFields(t *testing.T) {
	t.Parallel()
	for _, c := range jsonRefusalCases() {
		t.Run(c.name, func(t *testing.T) {
			refusal, roundTrip := c.codec()
			refused := c.encodeDrops != "" || c.decodeDrops != ""
			// What encoding/json loses quietly must be refused; what it
			// carries whole must not be; where it fails out loud, either.
			if !c.failsForJSON && refused != c.lossyForJSON {
				t.Fatalf("test case is wrong: encoding/json loses part of %#v: %v, but the case expects refused=%v", c.v, c.lossyForJSON, refused)
			}
			for _, d := range []struct{ op, drops string }{{"encode", c.encodeDrops}, {"decode", c.decodeDrops}} {
				err := refusal(d.op)
				if d.drops == "" {
					if err != nil {
						t.Errorf("%s: refused %#v: %v", d.op, c.v, err)
					}
					continue
				}
				checkUnexportedRefusal(t, err, d.op, d.drops)
			}
			got, err := roundTrip()
			switch {
			case c.encodeDrops != "":
				checkUnexportedRefusal(t, err, "encode", c.encodeDrops)
			case c.decodeDrops != "":
				checkUnexportedRefusal(t, err, "decode", c.decodeDrops)
			case c.failsForJSON:
				if err == nil {
					t.Fatalf("round trip of %#v: %v, want encoding/json's own error", c.v, err)
				}
			case err != nil:
				t.Fatalf("round trip of %#v: %v", c.v, err)
			case !reflect.DeepEqual(got, c.v):
				t.Fatalf("round trip of %#v gave %#v", c.v, got)
			}
		})
	}
}

func checkUnexportedRefusal(t *testing.T, err error, op, field string) {
	t.Helper()
	var ce *CodecError
	switch {
	case !errors.As(err, &ce) || ce.Codec != "json" || ce.Op != op:
		t.Errorf("%s: %v, want a json %s *CodecError", op, err, op)
	case !errors.Is(err, errors.ErrUnsupported):
		t.Errorf("%s: %v does not match errors.ErrUnsupported", op, err)
	case !strings.Contains(err.Error(), field+" is unexported") && !strings.Contains(err.Error(), field+", "):
		t.Errorf("%s: %q does not name the field %s", op, err, field)
	case !strings.Contains(err.Error(), "JSONSkipUnexported["):
		t.Errorf("%s: %q does not say how to carry only the exported fields", op, err)
	}
}

// TestJSONRefusalNamesEveryLostField lists several fields, then a count.
func TestJSONRefusalNamesEveryLostField(t *testing.T) {
	t.Parallel()
	type many struct{ a, b, c, d, e int }
	_, err := JSON[many]().Append(nil, many{1, 2, 3, 4, 5})
	want := "fields many.a, many.b, many.c and 2 more are unexported, and encoding/json would drop them"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Append = %v, want it to say %q", err, want)
	}
	_, err = JSON[many]().Decode([]byte(`{}`))
	want = "would leave them zero"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Decode = %v, want it to say %q", err, want)
	}
}

// TestJSONSkipUnexportedCarriesExportedFieldsOnly is the "I mean it" way:
// the same bytes as encoding/json, never a refusal.
func TestJSONSkipUnexportedCarriesExportedFieldsOnly(t *testing.T) {
	t.Parallel()
	codec := JSONSkipUnexported[fieldsJob]()
	if err := codecRefusal(codec, "encode"); err != nil {
		t.Fatalf("codecRefusal(encode) = %v", err)
	}
	if err := codecRefusal(codec, "decode"); err != nil {
		t.Fatalf("codecRefusal(decode) = %v", err)
	}
	b, err := codec.Append(nil, fieldsJob{id: 42, Name: "a"})
	if err != nil || string(b) != `{"Name":"a"}` {
		t.Fatalf("Append = %q, %v; want {\"Name\":\"a\"}", b, err)
	}
	v, err := codec.Decode(b)
	if err != nil || v != (fieldsJob{Name: "a"}) {
		t.Fatalf("Decode = %+v, %v; want {id:0 Name:a}", v, err)
	}
}

// TestJSONChecksEachTypeOnce: the reflection walk is cached per type.
func TestJSONChecksEachTypeOnce(t *testing.T) {
	t.Parallel()
	type onceChecked struct{ n int }
	if _, err := JSON[onceChecked]().Append(nil, onceChecked{n: 1}); err == nil {
		t.Fatal("JSON[onceChecked] encoded a value with an unexported field")
	}
	a := JSON[onceChecked]().(*jsonCodec[onceChecked]).refused
	b := JSON[onceChecked]().(*jsonCodec[onceChecked]).refused
	if a != b || a.encode == nil {
		t.Fatalf("two JSON[T]() calls walked T twice (or accepted it): %p %p %v", a, b, a.encode)
	}
}

// TestCodecRefusal covers the hook the pumps call before they start.
func TestCodecRefusal(t *testing.T) {
	t.Parallel()
	if err := codecRefusal[int](nil, "encode"); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("nil codec: %v, want ErrInvalidOption", err)
	}
	if err := codecRefusal(JSON[codecJob](), "encode"); err != nil {
		t.Errorf("JSON[codecJob]: %v", err)
	}
	if err := codecRefusal(Binary[unmarshalOnly](), "encode"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Binary without an encoder, encode: %v, want ErrUnsupported", err)
	}
	if err := codecRefusal(Binary[unmarshalOnly](), "decode"); err != nil {
		t.Errorf("Binary without an encoder, decode: %v", err)
	}
	if err := codecRefusal(Funcs[int](nil, nil), "decode"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Funcs without decodeFn: %v, want ErrUnsupported", err)
	}
	if err := codecRefusal(Funcs(func(b []byte, v int) ([]byte, error) { return b, nil }, nil), "encode"); err != nil {
		t.Errorf("Funcs with appendFn, encode: %v", err)
	}
	if err := codecRefusal[int](userCodec{}, "decode"); err != nil {
		t.Errorf("a codec from outside the package: %v", err)
	}
}
