package output

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tcptracer/event"
)

// TestSchemaExamplesAreGolden keeps README.md honest: every example line
// must be a line of a golden file, and every type must have one.
func TestSchemaExamplesAreGolden(t *testing.T) {
	doc, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	golden := map[string]bool{}
	for _, tt := range goldenCases {
		data, err := os.ReadFile(filepath.Join("testdata", tt.name+".golden"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			golden[line] = true
		}
	}
	seen := map[event.Type]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, `{"type":`) || isReportExample(line) {
			continue
		}
		if !golden[line] {
			t.Errorf("README.md example is not in a golden file: %s", line)
		}
		var ev event.Event
		if err := Decode([]byte(line), &ev); err != nil {
			t.Errorf("README.md example does not decode: %v", err)
		}
		seen[ev.Type] = true
	}
	for typ := event.TypeStart; typ <= event.TypeDrop; typ++ {
		if !seen[typ] {
			t.Errorf("README.md has no example for %s", typ)
		}
	}
}

// Report lines (finding, violation, summary) are checked by package report.
func isReportExample(line string) bool {
	for _, t := range []string{"finding", "violation", "summary"} {
		if strings.HasPrefix(line, `{"type":"`+t+`"`) {
			return true
		}
	}
	return false
}
