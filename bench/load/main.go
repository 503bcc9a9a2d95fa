// Command load is the loopback benchmark's load generator. One process runs
// both ends: a server listening on -addr and -conns clients that either
// stream bytes as fast as they can (bulk) or exchange fixed-size messages
// (pingpong) for -duration, then it prints one JSON line with the rate.
//
//	load -mode bulk|pingpong -conns N -duration 5s -addr 127.0.0.1:20000 -size 64
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// bulkChunk is the default write size in bulk mode: large enough that the
// syscall count, not the copy, stops mattering.
const (
	bulkChunk    = 128 << 10
	pingpongSize = 64
)

type config struct {
	mode     string
	conns    int
	duration time.Duration
	addr     string
	size     int
}

// result is the one JSON line load prints; field order is the schema.
type result struct {
	Mode       string  `json:"mode"`
	Conns      int     `json:"conns"`
	Seconds    float64 `json:"seconds"`
	Bytes      int64   `json:"bytes"`
	RoundTrips int64   `json:"round_trips"`
	Rate       float64 `json:"rate"`
	Unit       string  `json:"unit"`
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		os.Exit(2)
	}
	res, err := run(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintf(os.Stderr, "load: write result: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.StringVar(&c.mode, "mode", "pingpong", "bulk or pingpong")
	fs.IntVar(&c.conns, "conns", 1, "parallel connections")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "how long to generate load")
	fs.StringVar(&c.addr, "addr", "127.0.0.1:20000", "address the server listens on")
	fs.IntVar(&c.size, "size", 0, "message size (pingpong, default 64) or write size (bulk, default 128 KiB)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, c.check()
}

func (c *config) check() error {
	switch c.mode {
	case "bulk":
		if c.size == 0 {
			c.size = bulkChunk
		}
	case "pingpong":
		if c.size == 0 {
			c.size = pingpongSize
		}
	default:
		return fmt.Errorf("-mode %q: want bulk or pingpong", c.mode)
	}
	if c.conns < 1 || c.size < 1 || c.duration <= 0 {
		return errors.New("-conns, -size and -duration must be positive")
	}
	return nil
}

// run connects every client before the clock starts, so connection setup is
// not part of the measured window, then lets all of them work until end.
func run(c config) (result, error) {
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return result{}, fmt.Errorf("listen on %s: %w", c.addr, err)
	}
	defer ln.Close()
	accepted := make(chan acceptResult, 1)
	go func() { accepted <- acceptN(ln, c.conns) }()
	clients, err := dialN(c.addr, c.conns)
	servers := <-accepted
	defer closeAll(clients)
	defer closeAll(servers.conns)
	if err != nil {
		return result{}, err
	}
	if servers.err != nil {
		return result{}, servers.err
	}
	return measure(c, clients, servers.conns)
}

type acceptResult struct {
	conns []net.Conn
	err   error
}

func acceptN(ln net.Listener, n int) acceptResult {
	var r acceptResult
	for len(r.conns) < n {
		conn, err := ln.Accept()
		if err != nil {
			r.err = fmt.Errorf("accept on %s: %w", ln.Addr(), err)
			return r
		}
		r.conns = append(r.conns, conn)
	}
	return r
}

func dialN(addr string, n int) ([]net.Conn, error) {
	var conns []net.Conn
	for range n {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return conns, fmt.Errorf("dial %s: %w", addr, err)
		}
		conns = append(conns, conn)
	}
	return conns, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// measure runs one worker per end of every connection. Every socket gets
// the same deadline, so a call blocked at the end returns instead of
// hanging, and only work finished before the deadline is counted.
func measure(c config, clients, servers []net.Conn) (result, error) {
	start := time.Now()
	end := start.Add(c.duration)
	var bytes, trips atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2*c.conns)
	for i := range clients {
		clients[i].SetDeadline(end)
		servers[i].SetDeadline(end)
		client, server := workers(c, clients[i], servers[i], end, &bytes, &trips)
		wg.Go(func() { errs <- client() })
		wg.Go(func() { errs <- server() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return result{}, err
		}
	}
	return newResult(c, bytes.Load(), trips.Load()), nil
}

func workers(c config, client, server net.Conn, end time.Time, bytes, trips *atomic.Int64) (func() error, func() error) {
	if c.mode == "bulk" {
		return func() error { return sendBulk(client, c.size) },
			func() error { return receiveBulk(server, bytes) }
	}
	return func() error { return ping(client, c.size, end, bytes, trips) },
		func() error { return pong(server, c.size) }
}

func sendBulk(conn net.Conn, size int) error {
	buf := make([]byte, size)
	for {
		if _, err := conn.Write(buf); err != nil {
			return ignoreDeadline(err)
		}
	}
}

// receiveBulk counts at the receiver: bytes still queued in socket buffers
// at the deadline were not delivered and do not count.
func receiveBulk(conn net.Conn, bytes *atomic.Int64) error {
	buf := make([]byte, 256<<10)
	for {
		n, err := conn.Read(buf)
		bytes.Add(int64(n))
		if err != nil {
			return ignoreDeadline(err)
		}
	}
}

// ping sends a message and waits for the whole reply; one round trip.
func ping(conn net.Conn, size int, end time.Time, bytes, trips *atomic.Int64) error {
	msg := make([]byte, size)
	reply := make([]byte, size)
	var n int64
	defer func() {
		trips.Add(n)
		bytes.Add(2 * n * int64(size))
	}()
	for time.Now().Before(end) {
		if _, err := conn.Write(msg); err != nil {
			return ignoreDeadline(err)
		}
		if _, err := io.ReadFull(conn, reply); err != nil {
			return ignoreDeadline(err)
		}
		n++
	}
	return nil
}

func pong(conn net.Conn, size int) error {
	msg := make([]byte, size)
	for {
		if _, err := io.ReadFull(conn, msg); err != nil {
			return ignoreDeadline(err)
		}
		if _, err := conn.Write(msg); err != nil {
			return ignoreDeadline(err)
		}
	}
}

// ignoreDeadline treats the end of the run as success. The server's pong
// may also see EOF when its client stops right after its last round trip.
func ignoreDeadline(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, io.EOF) {
		return nil
	}
	return fmt.Errorf("transfer: %w", err)
}

func newResult(c config, bytes, trips int64) result {
	secs := c.duration.Seconds()
	r := result{Mode: c.mode, Conns: c.conns, Seconds: secs, Bytes: bytes, RoundTrips: trips}
	if c.mode == "bulk" {
		r.Rate, r.Unit = float64(bytes)/1e6/secs, "MB/s"
	} else {
		r.Rate, r.Unit = float64(trips)/secs, "round_trips/s"
	}
	return r
}
