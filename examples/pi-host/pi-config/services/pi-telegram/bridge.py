#!/usr/bin/python3
"""pi-telegram: the Telegram bridge, as a stand-in for the example host.

The real bridge is Pi itself running a Telegram extension, `pi -e <extension> --mode rpc`,
with a stdin that never closes (without a TTY, pi would answer once and exit). This stand-in keeps the parts the host's tooling can
check, without talking to Telegram:

- it refuses to start (exit 78, EX_CONFIG) unless TELEGRAM_BOT_TOKEN is set, which the
  unit loads from ~/.config/pi-telegram/telegram.env; the token is never printed;
- while it runs, it rewrites a heartbeat file every HEARTBEAT_SECONDS, and removes it
  on SIGTERM, so "is the heartbeat fresh" is its health check.

Environment:
    TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID   from the env file (secrets)
    TELEGRAM_RUNTIME_DIR   where the heartbeat goes (default ~/pi-config/runtime/pi-telegram)
    HEARTBEAT_SECONDS      (default 30)
"""

import json
import os
import signal
import sys
import tempfile
import threading
from datetime import datetime, timezone

EX_CONFIG = 78
RUNTIME_DIR = os.environ.get(
    "TELEGRAM_RUNTIME_DIR", os.path.expanduser("~/pi-config/runtime/pi-telegram")
)
HEARTBEAT = os.path.join(RUNTIME_DIR, "heartbeat")
INTERVAL = float(os.environ.get("HEARTBEAT_SECONDS", "30"))


def beat(chat_configured):
    fd, tmp = tempfile.mkstemp(dir=RUNTIME_DIR, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(
            {
                "pid": os.getpid(),
                "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "chat_configured": chat_configured,
                "mode": "stand-in",
            },
            f,
        )
    os.replace(tmp, HEARTBEAT)


def main():
    if not os.environ.get("TELEGRAM_BOT_TOKEN"):
        print(
            "pi-telegram: TELEGRAM_BOT_TOKEN is not set; put it in "
            "~/.config/pi-telegram/telegram.env (mode 0600)",
            file=sys.stderr,
        )
        return EX_CONFIG
    chat_configured = bool(os.environ.get("TELEGRAM_CHAT_ID"))
    if not chat_configured:
        print("pi-telegram: TELEGRAM_CHAT_ID is not set; replies have nowhere to go", file=sys.stderr)

    os.makedirs(RUNTIME_DIR, mode=0o700, exist_ok=True)
    stopping = threading.Event()

    def stop(signum, _frame):
        print(f"pi-telegram: signal {signum}, stopping", flush=True)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"pi-telegram: bridge up (stand-in), heartbeat every {INTERVAL:g}s in {HEARTBEAT}", flush=True)
    while not stopping.is_set():
        beat(chat_configured)
        stopping.wait(INTERVAL)
    try:
        os.remove(HEARTBEAT)
    except FileNotFoundError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
