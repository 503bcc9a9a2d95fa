package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"tcptracer/event"
)

// fieldOrder caches Fields, which encodes one event per type.
var fieldOrder = sync.OnceValue(func() map[event.Type][]string {
	m := map[event.Type][]string{}
	for t := event.TypeStart; t <= event.TypeLost; t++ {
		b, err := AppendJSON(nil, &event.Event{Type: t})
		if err != nil {
			panic(fmt.Sprintf("encode a %s event: %v", t, err))
		}
		keys, err := TopLevelKeys(b)
		if err != nil {
			panic(fmt.Sprintf("read back a %s event: %v", t, err))
		}
		m[t] = keys
	}
	return m
})

// Fields lists the top-level fields of a line of type t, in the order
// JSONWriter writes them ("ts", written only with a wall clock, aside).
// It is read off the writer itself, so it cannot drift from it.
func Fields(t event.Type) []string { return fieldOrder()[t] }

// MissingField returns the first field of type t's lines that line lacks,
// or "" when it has them all.
func MissingField(line []byte, t event.Type) (string, error) {
	keys, err := TopLevelKeys(line)
	if err != nil {
		return "", err
	}
	have := make(map[string]bool, len(keys))
	for _, k := range keys {
		have[k] = true
	}
	for _, f := range Fields(t) {
		if !have[f] {
			return f, nil
		}
	}
	return "", nil
}

// TopLevelKeys lists the keys of the JSON object in line, in order.
func TopLevelKeys(line []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("decode event: want a JSON object")
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("decode event: %w", err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, fmt.Errorf("decode event: field %q: %w", tok, err)
		}
	}
	return keys, nil
}
