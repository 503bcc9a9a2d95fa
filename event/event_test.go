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
