package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"tcptracer/event"
	"tcptracer/output"
	"tcptracer/report"
	"tcptracer/tracer"
)

// TestMidConnection starts tracing on a connection that is already
// established and has carried data, then closes it. No SYN is seen: the
// client's state event (ESTABLISHED > FIN_WAIT1, just before its FIN) gives
// the bases from the kernel's snd_una and rcv_nxt, the roles are guessed
// from the ports, and every relative number is marked derived. The JSON
// numbers and the ladder's are the same, and the saved stream gives the
// report the live one does.
func TestMidConnection(t *testing.T) {
	requireRoot(t)
	addr := serveEcho(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	echoOnce(t, c, "before tracing")

	o := tracer.DefaultOptions()
	o.Ifaces = []string{"lo"}
	r := startTracer(t, o)
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	r.col.waitFor(t, "both sockets to close", func(evs []event.Event) bool { return countConnCloses(evs) >= 2 })
	r.stop(t)
	evs := r.col.snapshot()

	id := findConn(t, evs)
	checkMidConnection(t, evs, id, c.LocalAddr().(*net.TCPAddr).Port)
	checkSavedSameAsLive(t, evs)
}

func echoOnce(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read the echo: %v", err)
	}
}

// checkMidConnection: the client's FIN is relative 1 from snd_una and acks
// relative 1 from rcv_nxt; every event says its side, guessed, and every
// segment's numbers are derived.
func checkMidConnection(t *testing.T, evs []event.Event, id uint64, clientPort int) {
	t.Helper()
	var fin *event.Event
	for i := range evs {
		ev := &evs[i]
		if ev.Conn != id {
			continue
		}
		want := event.Server
		if int(ev.Sport) == clientPort {
			want = event.Client
		}
		if ev.Side != want || !ev.RolesGuessed {
			t.Errorf("%s #%d from port %d: side %s guessed %v, want %s guessed", ev.Type, ev.Index, ev.Sport, ev.Side, ev.RolesGuessed, want)
		}
		if ev.Type != event.TypeSegment {
			continue
		}
		if !ev.HasSeqRel || !ev.HasAckRel || !ev.RelDerived {
			t.Errorf("segment #%d: seq_rel known %v, ack_rel known %v, derived %v; want both known and derived",
				ev.Index, ev.HasSeqRel, ev.HasAckRel, ev.RelDerived)
		}
		if fin == nil && ev.Side == event.Client && ev.Flags&event.FIN != 0 {
			fin = ev
		}
	}
	if fin == nil {
		t.Fatal("no FIN from the client")
	}
	if fin.SeqRel != 1 || fin.AckRel != 1 {
		t.Errorf("client FIN seq_rel %d ack_rel %d, want 1 and 1 (snd_una and rcv_nxt are relative 1)", fin.SeqRel, fin.AckRel)
	}
}

// checkSavedSameAsLive writes the events as the tracer's JSON, reads them
// back as analyze does, and compares the two reports; each ladder arrow
// carries the numbers of its JSON line.
func checkSavedSameAsLive(t *testing.T, evs []event.Event) {
	t.Helper()
	var stream bytes.Buffer
	w := output.NewJSONWriter(&stream)
	for i := range evs {
		if err := w.Write(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var saved []event.Event
	for _, line := range bytes.Split(bytes.TrimSpace(stream.Bytes()), []byte("\n")) {
		var ev event.Event
		if err := output.Decode(line, &ev); err != nil {
			t.Fatalf("decode %s: %v", line, err)
		}
		saved = append(saved, ev)
	}
	live := textReport(t, evs)
	if got := textReport(t, saved); got != live {
		t.Errorf("report of the saved stream:\n%s\nlive:\n%s", got, live)
	}
	n := 0
	for _, ev := range evs {
		if ev.Type != event.TypeSegment || !ev.Wire || ev.Conn == 0 {
			continue
		}
		label := fmt.Sprintf("] Seq=%d Ack=%d Len=%d ~ ", ev.SeqRel, ev.AckRel, ev.Len)
		if !strings.Contains(live, fmt.Sprintf("#%d ", ev.Index)) || !strings.Contains(live, label) {
			t.Errorf("segment #%d: the ladder lacks %q:\n%s", ev.Index, label, live)
		}
		n++
	}
	if n == 0 {
		t.Error("no segment to compare")
	}
}

func textReport(t *testing.T, evs []event.Event) string {
	t.Helper()
	var out bytes.Buffer
	r := report.New(&out, report.Options{Format: report.Text})
	for i := range evs {
		ev := evs[i]
		if err := r.Feed(&ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}
