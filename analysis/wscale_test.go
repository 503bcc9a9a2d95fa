package analysis

import (
	"testing"

	"tcptracer/event"
)

// TestWindowScaleClamped: a SYN announcing a shift above 14 (a crafted or
// broken peer) is taken as 14, as RFC 7323 says, so its windows are not
// shifted out of range into false zero windows.
func TestWindowScaleClamped(t *testing.T) {
	c := NewConn()
	c.Segment(Seg{Index: 1, From: 0, Seq: 100, Flags: event.SYN, Win: 65535, Opts: event.Options{HasWS: true, WScale: 200}})
	c.Segment(Seg{Index: 2, From: 1, Seq: 500, Ack: 101, Flags: event.SYN | event.ACK, Win: 65535, Opts: event.Options{HasWS: true, WScale: 7}})
	r := c.Segment(Seg{Index: 3, From: 0, Seq: 101, Ack: 501, Flags: event.ACK, Win: 1})
	if r.Window != 1<<14 || !r.WindowScaled || r.has(ZeroWindow) {
		t.Fatalf("window %d scaled %v findings %v; want 16384, scaled, no zero_window", r.Window, r.WindowScaled, r.Findings)
	}
}
