package main

import (
	"strings"
	"testing"
	"time"
)

func TestCountStream(t *testing.T) {
	in := `{"type":"start","ts_ns":1,"conn":null,"id":1,"kernel":"6.18","version":"x","hooks":[],"filters":{"port":20000,"pid":null,"family":"any"},"ifaces":["lo"]}
{"type":"segment","ts_ns":2,"conn":1,"id":2,"iface":"lo","ifindex":1,"dir":"egress","point":"tc","wire":false,"family":"ipv4","saddr":"127.0.0.1","sport":40000,"daddr":"127.0.0.1","dport":20000,"seq":1,"ack":0,"seq_rel":0,"ack_rel":null,"flags":["SYN"],"len":0,"win":1,"hdr_len":20,"gso_segs":0,"gso_size":0,"options":{},"twin_of":null,"pid":null,"comm":null,"pid_src":"none"}
{"type":"lost","ts_ns":3,"conn":null,"id":3,"count":7}
{"type":"summary","ts_ns":4,"conn":1}
`
	segs, lost, err := countStream(strings.NewReader(in))
	if err != nil || segs != 1 || lost != 7 {
		t.Fatalf("countStream = %d segments, %d lost, %v; want 1, 7, nil", segs, lost, err)
	}
	if _, _, err := countStream(strings.NewReader(`{"type":"segment","seq":"x"}` + "\n")); err == nil {
		t.Fatal("a segment line that does not decode was counted")
	}
}

func TestTcpdumpCounts(t *testing.T) {
	msg := "listening on lo\n12 packets captured\n14 packets received by filter\n1 packet dropped by kernel\n"
	if c, d := tcpdumpCounts([]byte(msg)); c != 12 || d != 1 {
		t.Fatalf("tcpdumpCounts = %d, %d; want 12, 1", c, d)
	}
}

func TestStatTicks(t *testing.T) {
	line := "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 1 1 1\n"
	if got := statTicks([]byte(line)) * clockTick; got != 100*time.Millisecond {
		t.Fatalf("cpu time %v, want 100ms", got)
	}
}

func TestFdinfoProgID(t *testing.T) {
	b := []byte("pos:\t0\nflags:\t02000002\nprog_type:\t3\nprog_id:\t417\n")
	if id, ok := fdinfoProgID(b); !ok || id != 417 {
		t.Fatalf("fdinfoProgID = %d, %v; want 417", id, ok)
	}
	if _, ok := fdinfoProgID([]byte("pos:\t0\n")); ok {
		t.Fatal("a file descriptor without prog_id gave a program")
	}
}

func TestParseMicro(t *testing.T) {
	out := "goos: linux\nBenchmarkPipeline-1   	  336951	      4179 ns/op	    239299 records/s	     453 B/op	       0 allocs/op\nPASS\n"
	ms := parseMicro([]byte(out))
	if len(ms) != 1 || ms[0].name != "BenchmarkPipeline" || ms[0].nsOp != 4179 || ms[0].rate != 239299 || ms[0].bytesOp != 453 {
		t.Fatalf("parseMicro = %+v", ms)
	}
}

func TestRatios(t *testing.T) {
	base := []sample{{rate: 100}, {rate: 200}, {rate: 100}}
	runs := []sample{{rate: 90}, {rate: 100}, {rate: 95}}
	if st := ratios(runs, base); st.med != 0.9 || st.lo != 0.5 || st.hi != 0.95 {
		t.Fatalf("ratios = %+v; want median 0.9 within 0.5-0.95", st)
	}
}

func TestGoals(t *testing.T) {
	r := &results{cfg: &config{dur: time.Second, reps: 1}, samples: map[string]map[configName][]sample{
		"ping-pong, 4 conns": {
			baseline: {{rate: 100}},
			tracer:   {{rate: 95, cpu: 0.2, records: 100000}},
			tcpdump:  {{rate: 90}},
		},
	}, micro: []micro{{name: "BenchmarkPipeline", rate: 3e6}}}
	out := r.render()
	for _, want := range []string{
		"| ping-pong, 4 conns: tracer/base >= 0.90 and >= tcpdump/base | 0.950 (tcpdump 0.900) | yes |",
		"| tracer process <= 5% of one core at 250k records/s | 50.0% (2.00 µs of CPU per record, 4-conn ping-pong) | no |",
		"| with timeline and analysis >= 2.5 M records/s on one core | 3.00 M/s (BenchmarkPipeline, 0 ns) | yes |",
		"| bulk, 1 conn: tracer/base >= 0.97 and >= tcpdump/base | 0.000 (tcpdump 0.000) | not measured |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
