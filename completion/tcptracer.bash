# bash completion for tcptracer. Generated from internal/cli/spec.go by make docs; do not edit.
_tcptracer() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i
    if (( COMP_CWORD > 1 )); then
        case ${COMP_WORDS[1]} in
            verify|analyze|demo|echo-server|echo-client|cleanup|help) cmd=${COMP_WORDS[1]} ;;
        esac
    fi
    if [[ $cmd == verify ]]; then
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
        --port) COMPREPLY=(); return 0 ;;
        --iface) COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur")); return 0 ;;
        --pid) COMPREPLY=(); return 0 ;;
        --duration) COMPREPLY=(); return 0 ;;
        --attach) COMPREPLY=($(compgen -W "auto fentry kprobe tracepoint" -- "$cur")); return 0 ;;
        --tc) COMPREPLY=($(compgen -W "auto tcx clsact" -- "$cur")); return 0 ;;
        --netns) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
        --ring-size) COMPREPLY=(); return 0 ;;
        --max-memory) COMPREPLY=(); return 0 ;;
        --format) COMPREPLY=($(compgen -W "json text" -- "$cur")); return 0 ;;
        --color) COMPREPLY=($(compgen -W "auto always never" -- "$cur")); return 0 ;;
        --expect) COMPREPLY=(); return 0 ;;
        --grace) COMPREPLY=(); return 0 ;;
        --user) COMPREPLY=($(compgen -u -- "$cur")); return 0 ;;
        --addr) COMPREPLY=(); return 0 ;;
        --payload) COMPREPLY=(); return 0 ;;
        --timeout) COMPREPLY=(); return 0 ;;
    esac
    local flags
    case $cmd in
        '') flags="--port --iface --pid -4 -6 --duration --attach --tc --netns --ring-size --max-memory --format --color --verbose --version --help" ;;
        verify) flags="--port --iface --pid -4 -6 --duration --attach --tc --netns --ring-size --max-memory --format --color --verbose --expect --grace --user --help" ;;
        analyze) flags="--max-memory --format --color --expect --help" ;;
        demo) flags="--iface --attach --tc --ring-size --max-memory --format --color --verbose --help" ;;
        echo-server) flags="--addr --help" ;;
        echo-client) flags="--addr --payload --timeout --help" ;;
        cleanup) flags="--netns --apply --help" ;;
        help) flags="--help" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return 0
    fi
    case $cmd in
        '') (( COMP_CWORD == 1 )) && COMPREPLY=($(compgen -W "verify analyze demo echo-server echo-client cleanup help" -- "$cur")) ;;
        analyze) COMPREPLY=($(compgen -f -- "$cur")) ;;
        help) COMPREPLY=($(compgen -W "verify analyze demo echo-server echo-client cleanup help" -- "$cur")) ;;
    esac
    return 0
}
complete -F _tcptracer tcptracer
