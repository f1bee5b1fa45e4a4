#!/usr/bin/python3
"""session-memory-analyzer: drains the session-memory queue. For each queued Pi session
it writes a summary to outputs/session-memory/<session>.json and records it in the
agents database. A oneshot job, run by session-memory-analyzer.timer (a stand-in for
the example host: a real analyzer would ask a model for the summary).

A queue entry is removed only once its summary reached the agents database; when the
database cannot be reached the entries stay and the job exits 75 (try again later).

Environment:
    MEMORY_RUNTIME_DIR   runtime folder (default ~/pi-config/runtime/session-memory)
    MEMORY_OUTPUT_DIR    summaries (default ~/pi-config/outputs/session-memory)
    AGENTS_DB_URL        the agents database (default http://127.0.0.1:7301)
"""

import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timezone

RUNTIME_DIR = os.environ.get(
    "MEMORY_RUNTIME_DIR", os.path.expanduser("~/pi-config/runtime/session-memory")
)
QUEUE_DIR = os.path.join(RUNTIME_DIR, "queue")
OUTPUT_DIR = os.environ.get(
    "MEMORY_OUTPUT_DIR", os.path.expanduser("~/pi-config/outputs/session-memory")
)
AGENTS_DB_URL = os.environ.get("AGENTS_DB_URL", "http://127.0.0.1:7301").rstrip("/")
EX_TEMPFAIL = 75


def text_of(content):
    """The text of a message's content: a string, or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def summarize(session_file):
    """Reads a Pi session (JSONL: a `session` header, then entries) into a summary."""
    header, roles, tools, first_prompt = {}, Counter(), Counter(), ""
    with open(session_file, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if not isinstance(entry, dict):
                continue
            if entry.get("type") == "session":
                header = entry
                continue
            message = entry.get("message")
            if entry.get("type") != "message" or not isinstance(message, dict):
                continue
            role = message.get("role", "?")
            roles[role] += 1
            if role == "user" and not first_prompt:
                first_prompt = " ".join(text_of(message.get("content")).split())[:200]
            for part in message.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "toolCall":
                    tools[part.get("name", "?")] += 1
    session_id = header.get("id") or os.path.splitext(os.path.basename(session_file))[0]
    return {
        "session": session_id,
        "session_file": session_file,
        "cwd": header.get("cwd", ""),
        "started_at": header.get("timestamp", ""),
        "messages": dict(roles),
        "tool_calls": dict(tools),
        "topic": first_prompt,
        "analyzed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_json(path, value):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


def record(summary):
    tools = ", ".join(f"{n}x{name}" for name, n in Counter(summary["tool_calls"]).most_common(5))
    text = f"{summary['topic'] or '(no prompt)'} [{sum(summary['messages'].values())} messages"
    text += f"; tools: {tools}]" if tools else "]"
    body = json.dumps({"agent": "pi", "session": summary["session"], "summary": text}).encode()
    request = urllib.request.Request(
        AGENTS_DB_URL + "/memories",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def main():
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    if not os.path.isdir(QUEUE_DIR):
        print("session-memory-analyzer: queue is empty")
        return 0
    done = failed = 0
    for name in sorted(os.listdir(QUEUE_DIR)):
        if not name.endswith(".json"):
            continue
        entry_path = os.path.join(QUEUE_DIR, name)
        try:
            with open(entry_path) as f:
                session_file = json.load(f)["session_file"]
            summary = summarize(session_file)
        except (OSError, ValueError, KeyError) as e:
            print(f"session-memory-analyzer: dropping {name}: {e}", file=sys.stderr)
            os.remove(entry_path)
            continue
        write_json(os.path.join(OUTPUT_DIR, summary["session"] + ".json"), summary)
        try:
            record(summary)
        except (urllib.error.URLError, OSError) as e:
            print(f"session-memory-analyzer: agents-database: {e}; keeping {name}", file=sys.stderr)
            failed += 1
            continue
        os.remove(entry_path)
        done += 1
    print(f"session-memory-analyzer: analyzed {done} sessions, {failed} left in the queue")
    return EX_TEMPFAIL if failed else 0


if __name__ == "__main__":
    sys.exit(main())
