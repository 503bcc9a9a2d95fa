package fault

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"tcptracer/internal/privtest"
	"testing"
	"time"

	"tcptracer/internal/netns"
)

func requireRoot(t *testing.T) { t.Helper(); privtest.RequireRoot(t) }

// The program marshals, and native16 yields what a load of the
// network-order bytes reads on this machine.
func TestProgramAssembles(t *testing.T) {
	if err := program(3, 20000).Marshal(io.Discard, binary.LittleEndian); err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], uint16(native16(0x4e20)))
	if b != [2]byte{0x4e, 0x20} {
		t.Fatalf("native16(0x4e20) stores as % x, want 4e 20", b)
	}
}

// One data segment is dropped, TCP retransmits it, and the bytes arrive:
// in each attach mode.
func TestDropFirstData(t *testing.T) {
	requireRoot(t)
	for _, clsact := range []bool{false, true} {
		t.Run(fmt.Sprintf("clsact=%v", clsact), func(t *testing.T) { testDrop(t, clsact) })
	}
}

func testDrop(t *testing.T, clsact bool) {
	pair, err := netns.NewPair("fault")
	if err != nil {
		t.Fatalf("create namespaces: %v", err)
	}
	defer pair.Close()
	d, err := Drop(Spec{Netns: pair.B, Iface: pair.IfB, Port: 20000, Clsact: clsact})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	defer d.Close()
	if clsact && d.Mode() != ModeClsact {
		t.Fatalf("mode %s, want clsact", d.Mode())
	}
	addr := fmt.Sprintf("%s:20000", pair.AddrB)
	ln, err := netns.Listen(pair.B, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := netns.Dial(ctx, pair.A, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("AB"))
	c.Close()
	select {
	case s := <-got:
		if s != "AB" {
			t.Fatalf("server read %q, want AB", s)
		}
	case <-ctx.Done():
		t.Fatal("the server never got the data")
	}
	n, seq, err := d.Dropped()
	if err != nil || n != 1 || seq == 0 {
		t.Fatalf("dropped %d (first seq %d, err %v), want exactly 1", n, seq, err)
	}
	t.Logf("mode %s dropped seq %d", d.Mode(), seq)
	if err := d.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}
