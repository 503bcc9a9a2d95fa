package cli

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"tcptracer/capture"
	"tcptracer/event"
	"tcptracer/timeline"
	"tcptracer/tracer"
)

// pcapFlags are --write and its rotation flags (tcpdump's -w, -C, -G, -W).
type pcapFlags struct {
	path  string
	size  uint64
	every time.Duration
	files uint64
}

// writeOptions reads them from the command line and checks they fit.
func writeOptions(in *invocation) (pcapFlags, error) {
	w := pcapFlags{path: in.str("write"), every: in.dur("write-every"), files: in.uint("write-files")}
	if v := in.str("write-size"); v != "" {
		n, err := parseBytes(v)
		if err != nil {
			return w, usagef("--write-size %q: %v", v, err)
		}
		w.size = n
	}
	return w, w.check()
}

// parseBytes reads a positive byte count with an optional K, M or G
// (binary) suffix; unlike --ring-size, any size will do.
func parseBytes(v string) (uint64, error) {
	num, mult := strings.ToUpper(v), uint64(1)
	for i, suffix := range []string{"K", "M", "G"} {
		if s, ok := strings.CutSuffix(num, suffix); ok {
			num, mult = s, 1<<(10*(i+1))
		}
	}
	n, err := strconv.ParseUint(num, 10, 40)
	if err != nil || n == 0 {
		return 0, errors.New("want a positive number of bytes, optionally with a K, M or G suffix (e.g. 100M)")
	}
	return n * mult, nil
}

func (w *pcapFlags) check() error {
	rotate := w.size > 0 || w.every > 0
	switch {
	case w.path == "" && (rotate || w.files > 0):
		return usagef("--write-size, --write-every and --write-files need --write FILE")
	case w.path == "-" && rotate:
		return usagef("--write -: standard output cannot rotate")
	case w.files > 0 && !rotate:
		return usagef("--write-files needs --write-size or --write-every")
	}
	return nil
}

// Interfaces are described with LINKTYPE_RAW: the kernel records from the
// network header on, whatever the interface's link layer.
const headersSnaplen = 128

// pcapWriter writes one enhanced packet block per wire segment, with the
// header bytes the kernel recorded and a comment with what the tracer knows
// of the segment. The kernel sends the header bytes in a record of their
// own right after the segment's; segments wait in a small ring until their
// bytes arrive.
type pcapWriter struct {
	flags   pcapFlags
	out     io.Writer // standard output for -
	file    *os.File
	w       *capture.Writer
	section capture.Section
	ifaces  map[uint32]uint32 // ifindex → interface id in the current file
	offset  int64             // wall clock minus CLOCK_MONOTONIC, ns
	opened  int64             // monotonic time the current file was opened (0: at its first packet)
	num     uint64            // current file number
	lost    uint64
	pending [64]pendingSegment
	next    int
}

type pendingSegment struct {
	key     segmentKey
	ts      uint64 // the segment record's time (the headers record's is later)
	iface   string
	comment []byte
}

var lostComment = []byte("tcptracer: the segment's own record was lost")

// segmentKey is what a headers record repeats of its segment.
type segmentKey struct {
	ifindex      uint32
	dir          event.Dir
	point        event.Point
	saddr, daddr netip.Addr
	sport, dport uint16
	seq, ack     uint32
}

func keyOf(ev *event.Event) segmentKey {
	return segmentKey{ifindex: ev.Ifindex, dir: ev.Dir, point: ev.Point, saddr: ev.Saddr, daddr: ev.Daddr,
		sport: ev.Sport, dport: ev.Dport, seq: ev.Seq, ack: ev.Ack}
}

func newPCAPWriter(f pcapFlags, stdout io.Writer) (*pcapWriter, error) {
	p := &pcapWriter{flags: f, offset: wallClockOffset()}
	if f.path == "-" {
		p.out = stdout
	}
	return p, nil
}

// start takes the start event: the section header says what ran.
func (p *pcapWriter) start(s *event.Start) error {
	fam := map[uint8]string{0: "any", 4: "ipv4", 6: "ipv6"}[s.Family]
	pid := "any"
	if s.PID != 0 {
		pid = fmt.Sprint(s.PID)
	}
	p.section = capture.Section{
		Comment: fmt.Sprintf("tcptracer %s on Linux %s; filters: port %d (0 = any), pid %s, family %s; interfaces %s; "+
			"header bytes as the kernel saw them (IP and TCP, no payload, at most %d bytes); "+
			"lost records are counted in each interface's statistics block at the end",
			s.Version, s.Kernel, s.Port, pid, fam, strings.Join(s.Ifaces, ","), headersSnaplen),
		OS:          "Linux " + s.Kernel,
		Application: "tcptracer " + s.Version,
	}
	return p.open()
}

func (p *pcapWriter) open() error {
	var out io.Writer = p.out
	if out == nil {
		f, err := os.Create(p.fileName())
		if err != nil {
			return fmt.Errorf("--write: %w", err)
		}
		p.file, out = f, f
	}
	w, err := capture.NewWriter(out, p.section)
	if err != nil {
		return fmt.Errorf("--write: %w", err)
	}
	p.w, p.ifaces, p.opened = w, map[uint32]uint32{}, 0
	return nil
}

// fileName is the path, with the file number before the extension when
// files rotate (x.pcapng: x.0.pcapng, x.1.pcapng, …).
func (p *pcapWriter) fileName() string {
	if p.flags.size == 0 && p.flags.every == 0 {
		return p.flags.path
	}
	ext := filepath.Ext(p.flags.path)
	return fmt.Sprintf("%s.%d%s", strings.TrimSuffix(p.flags.path, ext), p.num, ext)
}

// segment remembers a wire segment's comment until its header bytes come.
// The slot's buffer is reused: no allocation per record.
func (p *pcapWriter) segment(ev *event.Event, s *timeline.Segment) {
	slot := &p.pending[p.next]
	slot.key, slot.ts, slot.iface = keyOf(ev), ev.TS, ev.Iface
	slot.comment = appendComment(slot.comment[:0], ev, s)
	p.next = (p.next + 1) % len(p.pending)
}

// appendComment writes e.g. "tcptracer id 12 conn 1; owner pid 300 comm
// curl; findings: duplicate_ack 2 of id 9; violations: ack-in-range (…)".
func appendComment(b []byte, ev *event.Event, s *timeline.Segment) []byte {
	b = append(b, "tcptracer id "...)
	b = strconv.AppendUint(b, ev.Index, 10)
	b = append(b, " conn "...)
	b = strconv.AppendUint(b, ev.Conn, 10)
	if ev.PIDSrc == event.PIDOwner {
		b = append(b, "; owner pid "...)
		b = strconv.AppendUint(b, uint64(ev.PID), 10)
		b = append(b, " comm "...)
		b = append(b, ev.Comm...)
	}
	if s == nil {
		return b
	}
	for i, f := range s.Findings {
		b = append(b, sep(i, "; findings: ")...)
		b = append(b, f.Kind.String()...)
		if f.Num > 0 {
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(f.Num), 10)
		}
		if f.Ref > 0 {
			b = append(b, " of id "...)
			b = strconv.AppendUint(b, f.Ref, 10)
		}
	}
	for i, v := range s.Violations {
		b = append(b, sep(i, "; violations: ")...)
		b = fmt.Appendf(b, "%s (%s)", v.Rule, v.Detail)
	}
	return b
}

func sep(i int, first string) string {
	if i == 0 {
		return first
	}
	return ", "
}

// headers writes the packet whose header bytes arrived.
func (p *pcapWriter) headers(h *tracer.Headers) error {
	key := keyOf(&h.Seg)
	seg := &pendingSegment{ts: h.Seg.TS, comment: lostComment}
	for i := range p.pending {
		j := (p.next - 1 - i + 2*len(p.pending)) % len(p.pending)
		if p.pending[j].key == key {
			seg = &p.pending[j]
			seg.key = segmentKey{} // taken: a second headers record for the same key is a new packet
			break
		}
	}
	if err := p.rotate(seg.ts); err != nil {
		return err
	}
	id, err := p.iface(h.Seg.Ifindex, seg.iface)
	if err != nil {
		return err
	}
	dir := capture.DirInbound
	if h.Seg.Dir == event.Egress {
		dir = capture.DirOutbound
	}
	return p.w.WritePacket(id, int64(seg.ts)+p.offset, h.Data, int(h.OrigLen), dir, seg.comment)
}

func (p *pcapWriter) iface(ifindex uint32, name string) (uint32, error) {
	if id, ok := p.ifaces[ifindex]; ok {
		return id, nil
	}
	if name == "" {
		name = fmt.Sprintf("ifindex %d", ifindex)
	}
	id, err := p.w.AddInterface(capture.Interface{Link: capture.LinkRaw, Snaplen: headersSnaplen, Name: name,
		Comment: fmt.Sprintf("ifindex %d; packets from the network header on (LINKTYPE_RAW)", ifindex)})
	if err != nil {
		return 0, err
	}
	p.ifaces[ifindex] = id
	return id, nil
}

// rotate starts the next file when the current one is full or old enough.
func (p *pcapWriter) rotate(ts uint64) error {
	if p.opened == 0 {
		p.opened = int64(ts)
	}
	full := p.flags.size > 0 && p.w.Size() >= int64(p.flags.size)
	old := p.flags.every > 0 && int64(ts)-p.opened >= int64(p.flags.every)
	if !full && !old {
		return nil
	}
	if err := p.closeFile(ts); err != nil {
		return err
	}
	p.num++
	if p.flags.files > 0 {
		p.num %= p.flags.files
	}
	if err := p.open(); err != nil {
		return err
	}
	p.opened = int64(ts)
	return nil
}

// closeFile ends the current file with the lost-record count.
func (p *pcapWriter) closeFile(ts uint64) error {
	for _, id := range p.ifaces {
		c := fmt.Sprintf("tcptracer: %d records lost since the start (ring buffer full); their segments are missing here", p.lost)
		if err := p.w.WriteStatistics(id, int64(ts)+p.offset, c); err != nil {
			return err
		}
	}
	err := p.w.Flush()
	if p.file != nil {
		if cerr := p.file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("--write: %w", cerr)
		}
		p.file = nil
	}
	return err
}

// close ends the last file; ts is the time of the last event.
func (p *pcapWriter) close(ts uint64) error {
	if p.w == nil {
		return nil
	}
	err := p.closeFile(ts)
	p.w = nil
	return err
}
