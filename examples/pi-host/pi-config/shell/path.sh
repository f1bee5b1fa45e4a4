# The helper CLIs (agents-db, phase-run, memory-queue, pi-run) are linked into
# ~/.local/bin; put it first on PATH, once.
case ":$PATH:" in
    *":$HOME/.local/bin:"*) ;;
    *) export PATH="$HOME/.local/bin:$PATH" ;;
esac
