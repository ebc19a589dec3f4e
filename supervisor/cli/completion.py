# ruff: noqa: E501  (the shell scripts keep their own line lengths)
"""`ptysup completion SHELL`: completion scripts that complete commands, flags, and the
ids and names of the sessions of the daemon that answers (never starting one)."""

import argparse

from supervisor.cli.common import client

SESSION_COMMANDS = "attach info write read expect wait kill resize rm rename screen"

BASH = r"""# ptysup completion for bash: eval "$(ptysup completion bash)"
_ptysup() {
    local cur prev words cword
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="@COMMANDS@"
    local cmd="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --socket) ((i++)) ;;
            -*) ;;
            *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands --socket --no-start --version --help" -- "$cur"))
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(ptysup "$cmd" --help 2>/dev/null | grep -oE -- '--?[a-z][a-z-]*' | sort -u)" -- "$cur"))
        return
    fi
    case " @SESSION_COMMANDS@ " in
        *" $cmd "*) COMPREPLY=($(compgen -W "$(ptysup --no-start completion bash --sessions 2>/dev/null)" -- "$cur")) ;;
    esac
}
complete -F _ptysup ptysup
"""

ZSH = r"""#compdef ptysup
# ptysup completion for zsh: eval "$(ptysup completion zsh)" (after compinit)
_ptysup() {
    local -a commands sessions
    commands=(@COMMANDS@)
    if (( CURRENT == 2 )); then
        compadd -- $commands
        return
    fi
    if [[ $words[CURRENT] == -* ]]; then
        compadd -- ${(f)"$(ptysup $words[2] --help 2>/dev/null | grep -oE -- '--?[a-z][a-z-]*' | sort -u)"}
        return
    fi
    case " @SESSION_COMMANDS@ " in
        *" $words[2] "*)
            sessions=(${(f)"$(ptysup --no-start completion zsh --sessions 2>/dev/null)"})
            compadd -- $sessions ;;
    esac
}
compdef _ptysup ptysup
"""

FISH = r"""# ptysup completion for fish: ptysup completion fish | source
complete -c ptysup -f
complete -c ptysup -n __fish_use_subcommand -a "@COMMANDS@"
complete -c ptysup -n "__fish_seen_subcommand_from @SESSION_COMMANDS@" -a "(ptysup --no-start completion fish --sessions 2>/dev/null)"
complete -c ptysup -l socket -r -d "the daemon's socket"
complete -c ptysup -l no-start -d "do not start a daemon"
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}


def commands() -> str:
    from supervisor.cli.main import ALIASES, MODULES

    return " ".join(sorted({*MODULES, *ALIASES, "daemon", "service"}))


def cmd_completion(args: argparse.Namespace) -> int:
    if args.sessions:
        from supervisor.client.errors import ClientError

        try:
            with client(args) as c:
                sessions = c.list()
        except ClientError:
            return 0
        for s in sessions:
            print(s["id"])
            if s.get("name"):
                print(s["name"])
        return 0
    script = SCRIPTS[args.shell]
    print(
        script.replace("@COMMANDS@", commands()).replace("@SESSION_COMMANDS@", SESSION_COMMANDS),
        end="",
    )
    return 0
