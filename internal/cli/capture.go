package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"tcptracer/capture"
	"tcptracer/conn"
	"tcptracer/event"
	"tcptracer/report"
)

// maxMalformedNotes bounds the packets named on stderr as malformed.
const maxMalformedNotes = 5

// feedCapture turns every TCP packet of a capture into the segment event a
// live wire record gives, annotates it as the live pipeline does, and feeds
// the report. An event's id is the packet's number in the capture (Wireshark's
// frame.number), so report lines point at the packet Wireshark shows.
func feedCapture(ctx context.Context, in io.Reader, name string, r *report.Reporter, stderr io.Writer) error {
	rd, err := capture.NewReader(in)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	tr := conn.NewTracker(nil)
	var ev event.Event
	bad := 0
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		ok, err := capture.Decode(&p, &ev)
		if err != nil {
			if !errors.Is(err, capture.ErrMalformed) {
				return fmt.Errorf("%s: packet %d: %w", name, p.Number, err)
			}
			if bad++; bad <= maxMalformedNotes {
				fmt.Fprintf(stderr, "tcptracer: %s: packet %d skipped: %v\n", name, p.Number, err)
			}
			continue
		}
		if !ok {
			continue
		}
		tr.Annotate(&ev)
		ev.Index = uint64(p.Number)
		if err := r.Feed(&ev); err != nil {
			return err
		}
	}
	if bad > maxMalformedNotes {
		fmt.Fprintf(stderr, "tcptracer: %s: %d malformed packets skipped in all\n", name, bad)
	}
	return nil
}
