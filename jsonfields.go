package chanmq

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// This file is the check that makes JSON[T] refuse a T whose values
// encoding/json would carry only in part: it drops unexported struct
// fields without a word, so Job{id: 42} would arrive as Job{id: 0}, where
// an in-process channel carries every field.

// jsonRefusals are JSON[T]'s errors for one T, computed once per type:
// nil when encoding/json carries every field of T.
type jsonRefusals struct {
	encode, decode error // a *CodecError each, or nil
}

// jsonChecked caches jsonRefusals by reflect.Type: the walk is reflection
// over every field type reachable from T, so it runs once per type, not
// once per JSON[T]() call.
var jsonChecked sync.Map // reflect.Type -> *jsonRefusals

// jsonRefusalsFor returns JSON[T]'s refusals for T.
func jsonRefusalsFor[T any]() *jsonRefusals {
	t := reflect.TypeFor[T]()
	if r, ok := jsonChecked.Load(t); ok {
		return r.(*jsonRefusals)
	}
	r := &jsonRefusals{}
	if dropped := droppedJSONFields(t, encodesItself); len(dropped) > 0 {
		r.encode = codecError[T]("json", "encode", unexportedFieldsError(t, dropped, "encode", "MarshalJSON"))
	}
	if dropped := droppedJSONFields(t, decodesItself); len(dropped) > 0 {
		r.decode = codecError[T]("json", "decode", unexportedFieldsError(t, dropped, "decode", "UnmarshalJSON"))
	}
	got, _ := jsonChecked.LoadOrStore(t, r)
	return got.(*jsonRefusals)
}

// unexportedFieldsError says which fields encoding/json would lose and the
// ways out. It matches errors.ErrUnsupported, as Binary's refusal of a
// type without an encoder does.
func unexportedFieldsError(t reflect.Type, dropped []string, op, method string) error {
	const shown = 3
	what, it := "field "+dropped[0]+" is", "it"
	switch {
	case len(dropped) > shown:
		what, it = fmt.Sprintf("fields %s and %d more are", strings.Join(dropped[:shown], ", "), len(dropped)-shown), "them"
	case len(dropped) > 1:
		what, it = "fields "+strings.Join(dropped, ", ")+" are", "them"
	}
	lost := "drop " + it
	if op == "decode" {
		lost = "leave " + it + " zero"
	}
	return fmt.Errorf("%w: %s unexported, and encoding/json would %s; export %s, tag %s `json:\"-\"` to leave %s out on purpose, "+
		"give %v its own %s method, or use chanmq.JSONSkipUnexported[%v]() to carry only the exported fields",
		errors.ErrUnsupported, what, lost, it, it, it, t, method, t)
}

var (
	jsonMarshalerType   = reflect.TypeFor[json.Marshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// encodesItself reports whether encoding/json encodes a value of t with
// the value's own method instead of walking its fields: MarshalJSON or
// MarshalText on t, or on *t where the value is addressable (JSON encodes
// &v, so v, its fields, and the elements of slices and pointed-to values
// are; map values are not).
func encodesItself(t reflect.Type, addressable bool) bool {
	if t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) {
		return true
	}
	if !addressable || t.Kind() == reflect.Pointer {
		return false
	}
	pt := reflect.PointerTo(t)
	return pt.Implements(jsonMarshalerType) || pt.Implements(textMarshalerType)
}

// decodesItself is encodesItself for json.Unmarshal, which decodes into
// addressable values only and so finds UnmarshalJSON and UnmarshalText on
// t or *t.
func decodesItself(t reflect.Type, _ bool) bool {
	if t.Implements(jsonUnmarshalerType) || t.Implements(textUnmarshalerType) {
		return true
	}
	if t.Kind() == reflect.Pointer {
		return false
	}
	pt := reflect.PointerTo(t)
	return pt.Implements(jsonUnmarshalerType) || pt.Implements(textUnmarshalerType)
}

// droppedJSONFields returns the paths (such as "Job.inner.id") of the
// struct fields reachable from t that encoding/json skips silently:
// unexported fields, except those tagged `json:"-"` (left out on purpose)
// and those of types that code themselves (selfCoded). It follows
// encoding/json's rules: the exported fields of an embedded struct, even an
// unexported one, are carried as the outer struct's own. Values inside
// interfaces are not known until run time and are not checked.
func droppedJSONFields(t reflect.Type, selfCoded func(t reflect.Type, addressable bool) bool) []string {
	w := fieldWalk{selfCoded: selfCoded, seen: map[walkKey]bool{}}
	root := t.Name()
	if root == "" {
		root = t.String()
	}
	w.value(t, true, root)
	return w.dropped
}

// fieldWalk is one walk of droppedJSONFields.
type fieldWalk struct {
	selfCoded func(t reflect.Type, addressable bool) bool
	seen      map[walkKey]bool // struct types already walked: recursive types end
	dropped   []string
}

type walkKey struct {
	t           reflect.Type
	addressable bool
}

// value walks a value of type t found at path.
func (w *fieldWalk) value(t reflect.Type, addressable bool, path string) {
	if w.selfCoded(t, addressable) {
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		w.value(t.Elem(), true, path)
	case reflect.Slice, reflect.Array:
		// A slice's elements are addressable; an array's are when it is.
		w.value(t.Elem(), addressable || t.Kind() == reflect.Slice, path+"[]")
	case reflect.Map:
		// Keys are strings, integers or TextMarshalers, or encoding/json
		// fails out loud; values are not addressable.
		w.value(t.Elem(), false, path+"[]")
	case reflect.Struct:
		w.fields(t, addressable, path)
	}
}

// fields walks the fields of the struct type t (once per type and
// addressability, so that a recursive type ends).
func (w *fieldWalk) fields(t reflect.Type, addressable bool, path string) {
	k := walkKey{t, addressable}
	if w.seen[k] {
		return
	}
	w.seen[k] = true
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue // left out on purpose
		}
		name, _, _ := strings.Cut(tag, ",")
		ft, fieldAddressable := f.Type, addressable
		if ft.Kind() == reflect.Pointer {
			ft, fieldAddressable = ft.Elem(), true
		}
		embeddedStruct := f.Anonymous && ft.Kind() == reflect.Struct
		switch {
		case embeddedStruct && name == "":
			// encoding/json promotes its fields, exported or not, and
			// ignores its methods (the outer type has them, if any,
			// and was checked first).
			w.fields(ft, fieldAddressable, path+"."+f.Name)
		case !f.IsExported() && !embeddedStruct:
			w.dropped = append(w.dropped, path+"."+f.Name)
		default:
			w.value(f.Type, addressable, path+"."+f.Name)
		}
	}
}
