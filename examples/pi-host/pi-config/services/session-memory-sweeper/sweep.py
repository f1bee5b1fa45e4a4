#!/usr/bin/python3
"""session-memory-sweeper: finds Pi sessions that ended without telling the dispatcher
(a crash, a killed tmux pane) and queues them for the analyzer. A oneshot job, run by
session-memory-sweeper.timer (a stand-in for the example host).

A session counts as ended when its JSONL file has not changed for IDLE_MINUTES. It is
queued again only when it changed since it was last queued. What was seen is kept in
the runtime folder: losing it only means sessions are queued once more.

Environment:
    PI_CODING_AGENT_DIR   Pi's config folder (default ~/.pi/agent)
    MEMORY_RUNTIME_DIR    runtime folder (default ~/pi-config/runtime/session-memory)
    IDLE_MINUTES          how long a session must be quiet (default 10)
"""

import hashlib
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone

AGENT_DIR = os.environ.get("PI_CODING_AGENT_DIR") or os.path.expanduser("~/.pi/agent")
SESSIONS_DIR = os.path.join(AGENT_DIR, "sessions")
RUNTIME_DIR = os.environ.get(
    "MEMORY_RUNTIME_DIR", os.path.expanduser("~/pi-config/runtime/session-memory")
)
QUEUE_DIR = os.path.join(RUNTIME_DIR, "queue")
STATE_FILE = os.path.join(RUNTIME_DIR, "sweeper-state.json")
LAST_RUN_FILE = os.path.join(RUNTIME_DIR, "sweeper-last-run.json")
IDLE_SECONDS = 60 * int(os.environ.get("IDLE_MINUTES", "10"))


def now_iso():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path, value):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


def session_files():
    for root, _dirs, files in os.walk(SESSIONS_DIR):
        for name in files:
            if name.endswith(".jsonl"):
                yield os.path.realpath(os.path.join(root, name))


def main():
    os.makedirs(QUEUE_DIR, mode=0o700, exist_ok=True)
    try:
        with open(STATE_FILE) as f:
            seen = json.load(f).get("seen", {})
    except (OSError, ValueError):
        seen = {}

    scanned = queued = 0
    cutoff = time.time() - IDLE_SECONDS
    for path in session_files():
        scanned += 1
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            continue  # removed while we looked
        if mtime > cutoff or seen.get(path) == mtime:
            continue
        key = hashlib.sha256(path.encode()).hexdigest()[:16]
        write_json(
            os.path.join(QUEUE_DIR, key + ".json"),
            {"session_file": path, "reason": "swept", "source": "sweeper", "queued_at": now_iso()},
        )
        seen[path] = mtime
        queued += 1

    # Forget sessions that no longer exist, so the state does not grow forever.
    seen = {path: mtime for path, mtime in seen.items() if os.path.exists(path)}
    write_json(STATE_FILE, {"seen": seen})
    write_json(LAST_RUN_FILE, {"swept_at": now_iso(), "scanned": scanned, "queued": queued})
    print(f"session-memory-sweeper: scanned {scanned} sessions, queued {queued}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
