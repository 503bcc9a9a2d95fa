package echo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Bulk dials addr with dial and streams total bytes through the echo server
// in writes of chunk bytes, reading the echo back at the same time (a
// client that wrote everything before reading would stall as soon as both
// directions' buffers filled). Every byte of the echo is checked. It then
// closes as ClientWith does: FIN, the server's FIN, close. So traffic flows
// both ways in bulk, and the session ends by itself. ctx bounds it all.
func Bulk(ctx context.Context, dial DialFunc, addr string, total, chunk int) error {
	if total <= 0 || chunk <= 0 {
		return fmt.Errorf("bulk transfer of %d bytes in writes of %d: want both positive", total, chunk)
	}
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := bulkExchange(c, total, chunk); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return err
	}
	return nil
}

func bulkExchange(c net.Conn, total, chunk int) error {
	read := make(chan error, 1)
	go func() { read <- readPattern(c, total) }()
	werr := writePattern(c, total, chunk)
	if werr != nil {
		c.Close() // unblocks the reader
		return errors.Join(werr, <-read)
	}
	if err := <-read; err != nil {
		return err
	}
	if err := waitEOF(c); err != nil {
		return err
	}
	if err := c.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// patternByte is the byte at offset i of the stream: a period of 251 (a
// prime) keeps it out of step with every power-of-two segment and write
// size, so a shifted or repeated chunk shows.
func patternByte(i int) byte { return byte(i % 251) }

func writePattern(c net.Conn, total, chunk int) error {
	buf := make([]byte, chunk)
	for off := 0; off < total; off += chunk {
		n := min(chunk, total-off)
		for i := range n {
			buf[i] = patternByte(off + i)
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return fmt.Errorf("write bytes %d..%d: %w", off, off+n, err)
		}
	}
	return closeWrite(c)
}

func readPattern(c net.Conn, total int) error {
	buf := make([]byte, 64<<10)
	for off := 0; off < total; {
		n, err := c.Read(buf[:min(len(buf), total-off)])
		for i := range n {
			if buf[i] != patternByte(off+i) {
				return fmt.Errorf("echo byte %d is %d, want %d", off+i, buf[i], patternByte(off+i))
			}
		}
		off += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read echo at byte %d of %d: %w", off, total, err)
		}
	}
	return nil
}
