# pitmux: attach to the tmux session where pi runs, or start it.
#   pitmux          the session "pi", in ~/pi-config
#   pitmux NAME     another session, e.g. one per project
# pi starts through pi-run (~/.local/bin), which loads the provider keys from
# ~/.config/pi/providers.env for pi only.
pitmux() {
    local session="${1:-pi}"
    if ! command -v tmux >/dev/null 2>&1; then
        echo "pitmux: tmux is not installed" >&2
        return 127
    fi
    if ! tmux has-session -t "=$session" 2>/dev/null; then
        tmux new-session -d -s "$session" -c "$HOME/pi-config" pi-run || return
    fi
    if [ -n "${TMUX:-}" ]; then
        tmux switch-client -t "=$session"
    else
        tmux attach-session -t "=$session"
    fi
}
