package cli

import (
	"fmt"
	"strings"
)

// BashCompletion is the bash completion script, from the command table.
func BashCompletion() string {
	var b strings.Builder
	b.WriteString("# bash completion for tcptracer. Generated from internal/cli/spec.go by make docs; do not edit.\n")
	b.WriteString("_tcptracer() {\n")
	b.WriteString("    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i\n")
	fmt.Fprintf(&b, "    if (( COMP_CWORD > 1 )); then\n        case ${COMP_WORDS[1]} in\n            %s) cmd=${COMP_WORDS[1]} ;;\n        esac\n    fi\n",
		strings.Join(subcommandNames(), "|"))
	b.WriteString(`    if [[ $cmd == verify ]]; then
        for ((i = 2; i < COMP_CWORD; i++)); do
            if [[ ${COMP_WORDS[i]} == -- ]]; then
                if (( i == COMP_CWORD - 1 )); then
                    COMPREPLY=($(compgen -c -- "$cur"))
                else
                    COMPREPLY=($(compgen -f -- "$cur"))
                fi
                return 0
            fi
        done
    fi
    case $prev in
`)
	for i := range flagSpecs {
		f := &flagSpecs[i]
		if f.arg == "" {
			continue
		}
		fmt.Fprintf(&b, "        %s) %s; return 0 ;;\n", f.dashed(), bashValues(f))
	}
	b.WriteString("    esac\n    local flags\n    case $cmd in\n")
	for _, c := range commands {
		var names []string
		for _, f := range flagsOf(c.name) {
			names = append(names, f.dashed())
		}
		names = append(names, "--help")
		fmt.Fprintf(&b, "        %s) flags=%q ;;\n", bashCase(c.name), strings.Join(names, " "))
	}
	b.WriteString(`    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return 0
    fi
    case $cmd in
`)
	fmt.Fprintf(&b, "        '') (( COMP_CWORD == 1 )) && COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", strings.Join(subcommandNames(), " "))
	b.WriteString("        analyze) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n")
	fmt.Fprintf(&b, "        help) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", strings.Join(subcommandNames(), " "))
	b.WriteString("    esac\n    return 0\n}\ncomplete -F _tcptracer tcptracer\n")
	return b.String()
}

func bashCase(name string) string {
	if name == "" {
		return "''"
	}
	return name
}

// bashValues completes a flag's value.
func bashValues(f *flagSpec) string {
	switch {
	case f.kind == kindEnum:
		return fmt.Sprintf("COMPREPLY=($(compgen -W %q -- \"$cur\"))", strings.Join(f.values, " "))
	case f.complete == "file":
		return `COMPREPLY=($(compgen -f -- "$cur"))`
	case f.complete == "user":
		return `COMPREPLY=($(compgen -u -- "$cur"))`
	case f.complete == "iface":
		return `COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur"))`
	}
	return "COMPREPLY=()"
}

// ZshCompletion is the zsh completion function (_tcptracer), from the
// command table.
func ZshCompletion() string {
	var b strings.Builder
	b.WriteString("#compdef tcptracer\n# zsh completion for tcptracer. Generated from internal/cli/spec.go by make docs; do not edit.\n\n")
	b.WriteString("_tcptracer() {\n    local -a commands\n    commands=(\n")
	for _, c := range commands {
		if c.name != "" {
			fmt.Fprintf(&b, "        %s\n", zshQuote(c.name+":"+c.summary))
		}
	}
	b.WriteString("    )\n    case $words[2] in\n")
	for _, c := range commands {
		if c.name == "" {
			continue
		}
		fmt.Fprintf(&b, "    %s)\n        words=(\"${(@)words[2,-1]}\"); (( CURRENT-- ))\n        _arguments -s -S \\\n", c.name)
		writeZshFlags(&b, c.name)
		switch {
		case c.withCommand:
			b.WriteString("            '*::command:_normal'\n")
		case c.name == "analyze":
			b.WriteString("            '1:file:_files'\n")
		case c.name == "help":
			b.WriteString("            '1:command:(" + strings.Join(subcommandNames(), " ") + ")'\n")
		default:
			b.WriteString("\n")
		}
		b.WriteString("        ;;\n")
	}
	b.WriteString("    *)\n        _arguments -s -S \\\n")
	writeZshFlags(&b, "")
	b.WriteString("            '1: :->command'\n")
	b.WriteString("        [[ $state == command ]] && _describe -t commands 'tcptracer command' commands\n        ;;\n")
	b.WriteString("    esac\n}\n\n_tcptracer \"$@\"\n")
	return b.String()
}

func writeZshFlags(b *strings.Builder, cmd string) {
	for _, f := range flagsOf(cmd) {
		spec := f.dashed() + "[" + zshDesc(f.usage) + "]"
		if f.kind == kindList {
			spec = "*" + spec
		}
		if f.arg != "" {
			spec += ":" + f.arg + ":" + zshAction(f)
		}
		fmt.Fprintf(b, "            %s \\\n", zshQuote(spec))
	}
	b.WriteString("            '(- *)'{-h,--help}'[print the help and exit]' \\\n")
}

func zshAction(f *flagSpec) string {
	switch {
	case f.kind == kindEnum:
		return "(" + strings.Join(f.values, " ") + ")"
	case f.complete == "file":
		return "_files"
	case f.complete == "user":
		return "_users"
	case f.complete == "iface":
		return "_net_interfaces"
	}
	return " "
}

// zshDesc is the usage text without its parenthesised asides, up to the
// first semicolon, and without the characters that mean something inside
// an _arguments description.
func zshDesc(usage string) string {
	var b strings.Builder
	depth := 0
	for _, r := range usage {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	usage, _, _ = strings.Cut(b.String(), ";")
	usage = strings.Join(strings.Fields(usage), " ")
	usage = strings.NewReplacer(" ,", ",", "[", "", "]", "", ":", `\:`, "'", "").Replace(usage)
	return strings.TrimSuffix(usage, ".")
}

func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
