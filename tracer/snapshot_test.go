package tracer

import (
	"bytes"
	"testing"
)

// The iterator's output decodes record by record; a length that is not a
// whole number of records is an error, not a short or shifted read.
func TestDecodeSnapshot(t *testing.T) {
	a := tcptracerSnapshotRec{Sk: 1, Cookie: 2, Ino: 3, Sport: 20000, Family: afInet, State: 10}
	b := tcptracerSnapshotRec{Sk: 4, Cookie: 5, Ino: 6, Sport: 40000, Dport: 20000, Family: afInet6, State: 1, SndUna: 7}
	data := append(bytes.Clone(raw(&a)), raw(&b)...)
	recs, err := decodeSnapshot(data)
	if err != nil || len(recs) != 2 || recs[0] != a || recs[1] != b {
		t.Fatalf("decode: %+v, %v; want the two records", recs, err)
	}
	if _, err := decodeSnapshot(data[:len(data)-1]); err == nil {
		t.Fatal("a truncated record decoded")
	}
}
