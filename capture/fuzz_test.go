package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"tcptracer/event"
)

// The readers must never panic, loop or hand out data beyond a record on
// any input: every packet read is decoded too. The seeds are the committed
// tcpdump captures plus synthetic files of every link type; `go test`
// runs them, `go test -fuzz FuzzPcap ./capture` explores further.
func fuzzRead(t *testing.T, b []byte) {
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return
	}
	var ev event.Event
	for n := 1; ; n++ {
		p, err := r.Next()
		if errors.Is(err, io.EOF) || err != nil {
			return
		}
		if p.Number != n || len(p.Data) > len(b) {
			t.Fatalf("packet %d numbered %d with %d bytes", n, p.Number, len(p.Data))
		}
		_, _ = Decode(&p, &ev)
	}
}

// addSeeds adds every committed capture matching pattern.
func addSeeds(f *testing.F, pattern string) {
	files, _ := filepath.Glob(filepath.Join("testdata", pattern))
	if len(files) == 0 {
		f.Fatalf("no seed matches testdata/%s", pattern)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzPcap(f *testing.F) {
	addSeeds(f, "*.pcap")
	v4 := tcpIPv4(4, synOpts, 1, 2, 3)
	for _, link := range []uint32{LinkEthernet, LinkSLL, LinkSLL2, LinkRaw, LinkNull, LinkLoop} {
		f.Add(pcapFile(binary.BigEndian, true, link, v4, tcpIPv6(1, 2)))
	}
	f.Fuzz(fuzzRead)
}

func FuzzPcapng(f *testing.F) {
	addSeeds(f, "*.pcapng")
	f.Add(pcapngFile(f, []Interface{{Link: LinkRaw, Name: "x"}, {Link: LinkSLL2}},
		pcapngPacket{0, 1, tcpIPv6(1, 2), 99, DirOutbound, "c"}, pcapngPacket{1, 2, sll2(tcpIPv4(0, nil, 1, 2, 0), 3, 0), 0, DirInbound, ""}))
	f.Fuzz(fuzzRead)
}
