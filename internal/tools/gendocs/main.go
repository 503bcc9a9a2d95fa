// Command gendocs writes the files generated from the command table (the
// man page, the shell completions) and the README's flag table. Run it
// from the repository's root: make docs.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"tcptracer/internal/cli"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run() error {
	for path, text := range cli.Docs() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return err
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		return err
	}
	out, err := replaceBetween(string(readme), cli.FlagTableBegin, cli.FlagTableEnd, cli.FlagTable())
	if err != nil {
		return fmt.Errorf("README.md: %w", err)
	}
	return os.WriteFile("README.md", []byte(out), 0o644)
}

func replaceBetween(doc, begin, end, body string) (string, error) {
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("no %q ... %q section", begin, end)
	}
	return doc[:i+len(begin)] + "\n" + body + doc[j:], nil
}
