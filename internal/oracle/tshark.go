package oracle

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"

	"tcptracer/event"
)

// AnalysisFields are the tcp.analysis flags Tshark reads, by the suffix
// after "tcp.analysis.": Wireshark's expert findings on TCP sequence and
// window behaviour.
var AnalysisFields = []string{
	"retransmission", "fast_retransmission", "spurious_retransmission",
	"out_of_order", "lost_segment", "ack_lost_segment", "duplicate_ack",
	"zero_window", "zero_window_probe", "zero_window_probe_ack",
	"window_update", "window_full", "keep_alive", "keep_alive_ack", "reused_ports",
}

// Frame is one TCP packet as tshark dissected it.
type Frame struct {
	Number int // frame.number: 1-based position in the capture
	Stream int // tcp.stream: Wireshark's connection index
	Key    Key
	// Analysis lists the AnalysisFields set on the frame, in that order.
	// Wireshark sets "retransmission" beside "fast_retransmission" and
	// beside "spurious_retransmission"; both are kept, as tshark says them.
	Analysis  []string
	DupAckNum int // tcp.analysis.duplicate_ack_num, 0 when not a duplicate ACK
}

// Has reports whether tshark set tcp.analysis.<field> on the frame.
func (f Frame) Has(field string) bool {
	for _, a := range f.Analysis {
		if a == field {
			return true
		}
	}
	return false
}

// Key fields first, then the analysis flags, then the duplicate ACK number.
var tsharkKeyFields = []string{
	"frame.number", "tcp.stream", "ip.src", "ipv6.src", "tcp.srcport",
	"ip.dst", "ipv6.dst", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "tcp.len",
}

// TsharkArgs is the command line Tshark runs on a capture read from stdin.
// Preferences that change the analysis are set explicitly so a user's
// Wireshark profile cannot change the result; occurrence=f keeps the
// outer header's field where a packet holds two (an ICMP error quoting TCP).
func TsharkArgs() []string {
	args := []string{"-r", "-", "-n", "-Y", "tcp", "-T", "fields", "-E", "header=n", "-E", "separator=/t",
		"-E", "occurrence=f", "-o", "tcp.analyze_sequence_numbers:TRUE", "-o", "tcp.relative_sequence_numbers:FALSE"}
	for _, f := range tsharkKeyFields {
		args = append(args, "-e", f)
	}
	for _, f := range AnalysisFields {
		args = append(args, "-e", "tcp.analysis."+f)
	}
	return append(args, "-e", "tcp.analysis.duplicate_ack_num")
}

// Tshark runs `tshark -r` on a classic pcap (as Capture.Pcap returns it)
// and returns its TCP frames with Wireshark's analysis flags.
func Tshark(ctx context.Context, pcap []byte) ([]Frame, error) {
	path, err := exec.LookPath("tshark")
	if err != nil {
		return nil, fmt.Errorf("find tshark (install Debian's tshark package): %w", err)
	}
	cmd := exec.CommandContext(ctx, path, TsharkArgs()...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(pcap), &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run tshark: %w: %s", err, strings.TrimSpace(errOut.String()))
	}
	frames, err := ParseTshark(&out)
	if err != nil {
		return frames, fmt.Errorf("read tshark output: %w", err)
	}
	return frames, nil
}

// ParseTshark reads the tab-separated lines TsharkArgs asks for.
func ParseTshark(r io.Reader) ([]Frame, error) {
	var frames []Frame
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		f, err := parseTsharkLine(sc.Text())
		if err != nil {
			return frames, fmt.Errorf("line %d: %w", n, err)
		}
		frames = append(frames, f)
	}
	return frames, sc.Err()
}

func parseTsharkLine(line string) (Frame, error) {
	cols := strings.Split(line, "\t")
	if want := len(tsharkKeyFields) + len(AnalysisFields) + 1; len(cols) != want {
		return Frame{}, fmt.Errorf("%d fields, want %d: %q", len(cols), want, line)
	}
	var f Frame
	var err error
	p := fieldParser{cols: cols, err: &err}
	f.Number, f.Stream = int(p.uint(0, 32)), int(p.uint(1, 32))
	f.Key = Key{
		Saddr: p.addr(2, 3), Sport: uint16(p.uint(4, 16)),
		Daddr: p.addr(5, 6), Dport: uint16(p.uint(7, 16)),
		Seq: uint32(p.uint(8, 32)), Ack: uint32(p.uint(9, 32)),
		Flags: uint16(p.uint(10, 16)), Len: uint32(p.uint(11, 32)),
	}
	for i, name := range AnalysisFields {
		if cols[len(tsharkKeyFields)+i] != "" {
			f.Analysis = append(f.Analysis, name)
		}
	}
	if last := cols[len(cols)-1]; last != "" {
		f.DupAckNum = int(p.uint(len(cols)-1, 32))
	}
	return f, err
}

// fieldParser keeps the first error, so a line is parsed in one pass.
type fieldParser struct {
	cols []string
	err  *error
}

// uint parses column i; tcp.flags comes as hex ("0x0018"), the rest in
// decimal.
func (p fieldParser) uint(i, bits int) uint64 {
	v, err := strconv.ParseUint(p.cols[i], 0, bits)
	if err != nil && *p.err == nil {
		*p.err = fmt.Errorf("field %d (%s): %w", i, p.name(i), err)
	}
	return v
}

// addr reads the IPv4 column v4, or the IPv6 column v6 when v4 is empty.
func (p fieldParser) addr(v4, v6 int) netip.Addr {
	s := p.cols[v4]
	if s == "" {
		s = p.cols[v6]
	}
	a, err := netip.ParseAddr(s)
	if err != nil && *p.err == nil {
		*p.err = fmt.Errorf("address fields %d/%d: %w", v4, v6, err)
	}
	return a
}

func (p fieldParser) name(i int) string {
	if i < len(tsharkKeyFields) {
		return tsharkKeyFields[i]
	}
	if i -= len(tsharkKeyFields); i < len(AnalysisFields) {
		return "tcp.analysis." + AnalysisFields[i]
	}
	return "tcp.analysis.duplicate_ack_num"
}

// RFC5681Exempt returns tshark's duplicate ACKs that acknowledge everything
// their receiver had sent so far: RFC 5681 counts an ACK as a duplicate
// only while the receiver has data outstanding (its condition (a)),
// Wireshark regardless. Sent means the highest sequence end (SYN and FIN
// count one) among the frames before, in the order given. The tracer
// follows RFC 5681, so these frames are Wireshark's duplicate ACKs but not
// its own, as after a spurious retransmission the receiver's D-SACK ACKs.
func RFC5681Exempt(frames []Frame) []Frame {
	sent := map[netip.AddrPort]uint32{} // per sender: the highest end so far
	seen := map[netip.AddrPort]bool{}
	var out []Frame
	for _, f := range frames {
		k := f.Key
		src, dst := netip.AddrPortFrom(k.Saddr, k.Sport), netip.AddrPortFrom(k.Daddr, k.Dport)
		if f.Has("duplicate_ack") && seen[dst] && int32(sent[dst]-k.Ack) <= 0 {
			out = append(out, f)
		}
		end := k.Seq + k.Len
		if k.Flags&(event.SYN|event.FIN) != 0 {
			end++
		}
		if !seen[src] || int32(end-sent[src]) > 0 {
			sent[src], seen[src] = end, true
		}
	}
	return out
}
