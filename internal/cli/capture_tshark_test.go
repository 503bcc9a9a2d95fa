package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"tcptracer/internal/tsharkcheck"
)

// The committed captures (tcpdump and dumpcap on lo, veth and -i any, with
// a dropped segment, three drops in a bulk transfer, a zero window, resets
// and IPv6): analyze and tshark flag the same packets, kind by kind. Needs
// tshark, not root; test/e2e's TestCaptureTshark makes fresh captures.
func TestAnalyzeCorpusTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tshark not found (CI is set, so this is a failure, not a skip)")
		}
		t.Skip("needs tshark")
	}
	files, _ := filepath.Glob("../../capture/testdata/*.pcap*")
	if len(files) < 8 {
		t.Fatalf("%d captures in capture/testdata, want the corpus", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			if code := Run(context.Background(), []string{"analyze", "-"}, Env{Stdin: bytes.NewReader(b), Stdout: &out, Stderr: &errOut}); code > ExitFailure {
				t.Fatalf("analyze exit %d: %s", code, errOut.String())
			}
			got, err := tsharkcheck.Analyze(out.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			want, err := tsharkcheck.Tshark(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tsharkcheck.Compare(want, got) {
				if r.Tshark+r.Tracer > 0 {
					t.Log(r)
				}
				if !r.Agree() {
					t.Errorf("%v", r)
				}
			}
		})
	}
}
