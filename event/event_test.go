package event

import "testing"

func TestNamesRoundTrip(t *testing.T) {
	for typ := TypeStart; typ <= TypeLost; typ++ {
		if got := ParseType(typ.String()); got != typ {
			t.Errorf("ParseType(%q) = %d, want %d", typ.String(), got, typ)
		}
	}
	if ParseType("nonsense") != 0 || Type(200).String() != "unknown" {
		t.Error("unknown types must parse to 0 and print as unknown")
	}
	for s := uint8(1); s <= 13; s++ {
		if got := ParseState(StateName(s)); got != s {
			t.Errorf("ParseState(%q) = %d, want %d", StateName(s), got, s)
		}
	}
	if StateName(0) != "UNKNOWN" || StateName(99) != "UNKNOWN" || ParseState("UNKNOWN") != 0 {
		t.Error("state 0 and out-of-range states are UNKNOWN, which parses to 0")
	}
	// The flag names follow the header's bit order, FIN first.
	if FlagNames[0] != "FIN" || FlagNames[8] != "NS" || NS != 1<<8 || ACK != 1<<4 {
		t.Error("flag bits out of order")
	}
	if Egress.String() != "egress" || Ingress.String() != "ingress" || PIDOwner.String() != "owner" || PIDNone.String() != "none" {
		t.Error("direction or pid source names")
	}
}

// TestSeqWraparound: comparisons and distances stay right across 2^32.
func TestSeqWraparound(t *testing.T) {
	const isn Seq = 0xfffffff0
	after := isn.Add(0x20) // 0x10, past the wrap
	if after != 0x10 {
		t.Fatalf("Add across the wrap = %#x, want 0x10", uint32(after))
	}
	checks := []struct {
		name string
		got  bool
	}{
		{"isn < after", isn.LT(after)},
		{"isn <= after", isn.LE(after)},
		{"after > isn", after.GT(isn)},
		{"after >= isn", after.GE(isn)},
		{"not after < isn", !after.LT(isn)},
		{"not isn > after", !isn.GT(after)},
		{"equal is LE and GE, not LT or GT", isn.LE(isn) && isn.GE(isn) && !isn.LT(isn) && !isn.GT(isn)},
		{"Max picks the later", isn.Max(after) == after && after.Max(isn) == after},
	}
	for _, c := range checks {
		if !c.got {
			t.Error(c.name)
		}
	}
	if d := after.Diff(isn); d != 0x20 {
		t.Errorf("after.Diff(isn) = %d, want 32", d)
	}
	if d := isn.Diff(after); d != -0x20 {
		t.Errorf("isn.Diff(after) = %d, want -32", d)
	}
}

func TestFlags(t *testing.T) {
	for _, c := range []struct {
		f               Flags
		bits, wireshark string
	}{
		{SYN, "SYN", "SYN"},
		{SYN | ACK, "SYN|ACK", "SYN, ACK"},
		{FIN | PSH | ACK, "FIN|PSH|ACK", "FIN, PSH, ACK"},
		{NS | CWR | SYN | FIN, "FIN|SYN|CWR|NS", "SYN, FIN, CWR, NS"},
		{0, "<none>", "<none>"},
	} {
		if got := c.f.String(); got != c.bits {
			t.Errorf("Flags(%#x).String() = %q, want %q", uint16(c.f), got, c.bits)
		}
		if got := c.f.Wireshark(); got != c.wireshark {
			t.Errorf("Flags(%#x).Wireshark() = %q, want %q", uint16(c.f), got, c.wireshark)
		}
	}
	for i, n := range FlagNames {
		if f, ok := ParseFlag(n); !ok || f != 1<<i || f.Name() != n {
			t.Errorf("ParseFlag(%q) = %#x, %v", n, uint16(f), ok)
		}
	}
	if _, ok := ParseFlag("XYZ"); ok {
		t.Error("ParseFlag accepted an unknown name")
	}
}

func TestStateConstants(t *testing.T) {
	for _, c := range []struct {
		s    uint8
		name string
	}{{StateEstablished, "ESTABLISHED"}, {StateSynSent, "SYN_SENT"}, {StateClose, "CLOSE"}, {StateListen, "LISTEN"}, {StateBoundInactive, "BOUND_INACTIVE"}} {
		if StateName(c.s) != c.name || State(c.s).String() != c.name {
			t.Errorf("state %d named %q, want %q", c.s, StateName(c.s), c.name)
		}
	}
	if Client.Peer() != Server || Server.Peer() != Client || Server.String() != "server" {
		t.Error("sides")
	}
}
