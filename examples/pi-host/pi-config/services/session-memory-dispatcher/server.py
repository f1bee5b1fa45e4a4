#!/usr/bin/python3
"""session-memory-dispatcher: takes finished Pi sessions and queues them for analysis
(a stand-in for the example host).

The `session-memory-dispatcher` Pi extension posts here when a session ends; the
analyzer job drains the queue later. The queue is one JSON file per session under
MEMORY_QUEUE_DIR, written atomically, so the sweeper job can add to it too and nothing
is lost when this service is down.

    GET  /health     200 "ok" when the queue folder is writable
    GET  /queue      {"pending": N}
    POST /sessions   {"session_file": "...", "reason": "..."} -> 202 {"queued": KEY}

Environment:
    PI_CODING_AGENT_DIR   Pi's config folder (default ~/.pi/agent); sessions live in
                          its sessions/ folder, and only files there are accepted
    MEMORY_QUEUE_DIR      the queue (default ~/pi-config/runtime/session-memory/queue)
    DISPATCHER_ADDR       address to listen on (default 127.0.0.1)
    DISPATCHER_PORT       port (default 7302)
"""

import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024
AGENT_DIR = os.environ.get("PI_CODING_AGENT_DIR") or os.path.expanduser("~/.pi/agent")
SESSIONS_DIR = os.path.realpath(os.path.join(AGENT_DIR, "sessions"))
QUEUE_DIR = os.environ.get(
    "MEMORY_QUEUE_DIR", os.path.expanduser("~/pi-config/runtime/session-memory/queue")
)


def enqueue(session_file, reason, source):
    """Writes the queue entry for a session; the key is stable, so queueing twice is one entry."""
    key = hashlib.sha256(session_file.encode()).hexdigest()[:16]
    entry = {
        "session_file": session_file,
        "reason": reason,
        "source": source,
        "queued_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    fd, tmp = tempfile.mkstemp(dir=QUEUE_DIR, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(entry, f)
    os.replace(tmp, os.path.join(QUEUE_DIR, key + ".json"))
    return key


def pending():
    return sum(1 for name in os.listdir(QUEUE_DIR) if name.endswith(".json"))


class Handler(BaseHTTPRequestHandler):
    server_version = "session-memory-dispatcher/1"

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))

    def reply(self, status, body):
        if isinstance(body, str):
            data, kind = (body + "\n").encode(), "text/plain; charset=utf-8"
        else:
            data, kind = (json.dumps(body) + "\n").encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            if os.access(QUEUE_DIR, os.W_OK):
                return self.reply(200, "ok")
            return self.reply(503, f"queue folder {QUEUE_DIR} is not writable")
        if self.path == "/queue":
            return self.reply(200, {"pending": pending()})
        self.reply(404, "not found")

    def do_POST(self):
        if self.path != "/sessions":
            return self.reply(404, "not found")
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            return self.reply(400, "expected a small JSON body")
        try:
            body = json.loads(self.rfile.read(length))
        except json.JSONDecodeError as e:
            return self.reply(400, f"invalid JSON: {e}")
        if not isinstance(body, dict) or not isinstance(body.get("session_file"), str):
            return self.reply(400, "expected {\"session_file\": \"...\"}")
        session_file = os.path.realpath(body["session_file"])
        if not session_file.startswith(SESSIONS_DIR + os.sep) or not os.path.isfile(session_file):
            return self.reply(422, f"not a session file under {SESSIONS_DIR}")
        key = enqueue(session_file, str(body.get("reason", "")), "extension")
        self.reply(202, {"queued": key})


def main():
    os.makedirs(QUEUE_DIR, mode=0o700, exist_ok=True)
    addr = os.environ.get("DISPATCHER_ADDR", "127.0.0.1")
    port = int(os.environ.get("DISPATCHER_PORT", "7302"))
    httpd = ThreadingHTTPServer((addr, port), Handler)

    def stop(signum, _frame):
        print(f"session-memory-dispatcher: signal {signum}, stopping", flush=True)
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"session-memory-dispatcher: queue {QUEUE_DIR} on http://{addr}:{port}", flush=True)
    httpd.serve_forever()
    httpd.server_close()


if __name__ == "__main__":
    main()
