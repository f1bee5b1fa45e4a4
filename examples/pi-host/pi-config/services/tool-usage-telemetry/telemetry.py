#!/usr/bin/python3
"""tool-usage-telemetry: counts which tools Pi called, per day, over the last
WINDOW_DAYS, from the session files. A oneshot job, run daily by
tool-usage-telemetry.timer. Nothing leaves the machine: the report is a JSON file under
outputs/telemetry (tool-usage-YYYY-MM-DD.json, and tool-usage-latest.json).

Environment:
    PI_CODING_AGENT_DIR    Pi's config folder (default ~/.pi/agent)
    TELEMETRY_OUTPUT_DIR   where reports go (default ~/pi-config/outputs/telemetry)
    WINDOW_DAYS            how far back to look (default 7)
"""

import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timezone

AGENT_DIR = os.environ.get("PI_CODING_AGENT_DIR") or os.path.expanduser("~/.pi/agent")
SESSIONS_DIR = os.path.join(AGENT_DIR, "sessions")
OUTPUT_DIR = os.environ.get(
    "TELEMETRY_OUTPUT_DIR", os.path.expanduser("~/pi-config/outputs/telemetry")
)
WINDOW_DAYS = int(os.environ.get("WINDOW_DAYS", "7"))


def tool_calls(session_file):
    """Yields (day, tool name) for every tool call in a Pi session file."""
    with open(session_file, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            message = entry.get("message") if isinstance(entry, dict) else None
            if not isinstance(message, dict) or message.get("role") != "assistant":
                continue
            day = str(entry.get("timestamp", ""))[:10] or "unknown"
            for part in message.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "toolCall":
                    yield day, str(part.get("name", "?"))


def main():
    since = time.time() - WINDOW_DAYS * 86400
    totals, by_day, sessions = Counter(), defaultdict(Counter), 0
    for root, _dirs, files in os.walk(SESSIONS_DIR):
        for name in files:
            path = os.path.join(root, name)
            try:
                if not name.endswith(".jsonl") or os.path.getmtime(path) < since:
                    continue
                calls = list(tool_calls(path))
            except OSError:
                continue  # removed while we looked
            sessions += 1
            for day, tool in calls:
                totals[tool] += 1
                by_day[day][tool] += 1

    report = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "window_days": WINDOW_DAYS,
        "sessions": sessions,
        "tools": dict(totals.most_common()),
        "by_day": {day: dict(c.most_common()) for day, c in sorted(by_day.items())},
    }
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=OUTPUT_DIR, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(report, f, indent=2)
    dated = os.path.join(OUTPUT_DIR, f"tool-usage-{date.today().isoformat()}.json")
    os.replace(tmp, dated)
    latest_tmp = os.path.join(OUTPUT_DIR, ".tmp-latest.json")
    shutil.copyfile(dated, latest_tmp)
    os.replace(latest_tmp, os.path.join(OUTPUT_DIR, "tool-usage-latest.json"))
    print(f"tool-usage-telemetry: {sum(totals.values())} tool calls in {sessions} sessions -> {dated}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
