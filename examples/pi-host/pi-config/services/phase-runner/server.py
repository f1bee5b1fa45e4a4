#!/usr/bin/python3
"""phase-runner: runs the phase machines of long tasks (a stand-in for the example host).

A task is a JSON file in PHASE_TASKS_DIR (~/pi-config/work/tasks/<name>.json) that walks
through its phases in order: `phase-run new NAME plan build review` creates it,
`phase-run advance NAME` moves it on, and the runner records when each phase began.
Task files are durable data (work/ is backed up); the runner's summary of them is
runtime state, rewritten every SCAN_SECONDS.

    GET  /health               200 "ok" when the tasks folder is writable
    GET  /tasks                every task: name, phase, done
    GET  /tasks/NAME           one task
    POST /tasks                {"name": "...", "phases": ["...", ...]} -> 201
    POST /tasks/NAME/advance   -> 200 with the task in its next phase

Environment:
    PHASE_TASKS_DIR     (default ~/pi-config/work/tasks)
    PHASE_RUNTIME_DIR   (default ~/pi-config/runtime/phase-runner)
    PHASE_RUNNER_ADDR   address to listen on (default 127.0.0.1)
    PHASE_RUNNER_PORT   port (default 7303)
    SCAN_SECONDS        (default 60)
"""

import json
import os
import re
import signal
import sys
import tempfile
import threading
from collections import Counter
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TASKS_DIR = os.environ.get("PHASE_TASKS_DIR", os.path.expanduser("~/pi-config/work/tasks"))
RUNTIME_DIR = os.environ.get(
    "PHASE_RUNTIME_DIR", os.path.expanduser("~/pi-config/runtime/phase-runner")
)
SCAN_SECONDS = float(os.environ.get("SCAN_SECONDS", "60"))
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_BODY = 16 * 1024
lock = threading.Lock()  # one writer at a time for task files


def now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path, value):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


def task_path(name):
    return os.path.join(TASKS_DIR, name + ".json")


def load(name):
    with open(task_path(name)) as f:
        return json.load(f)


def tasks():
    for entry in sorted(os.listdir(TASKS_DIR)):
        if entry.endswith(".json") and not entry.startswith("."):
            try:
                yield load(entry[: -len(".json")])
            except (OSError, ValueError):
                continue


def brief(task):
    phases, current = task["phases"], task["current"]
    return {
        "name": task["name"],
        "phase": None if task["done"] else phases[current],
        "step": f"{min(current + 1, len(phases))}/{len(phases)}",
        "done": task["done"],
    }


def scan(stopping):
    """Rewrites the runtime summary until told to stop."""
    while not stopping.is_set():
        counts = Counter("done" if t["done"] else t["phases"][t["current"]] for t in tasks())
        write_json(
            os.path.join(RUNTIME_DIR, "summary.json"), {"scanned_at": now(), "phases": counts}
        )
        stopping.wait(SCAN_SECONDS)


class Handler(BaseHTTPRequestHandler):
    server_version = "phase-runner/1"

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))

    def reply(self, status, body):
        if isinstance(body, str):
            data, kind = (body + "\n").encode(), "text/plain; charset=utf-8"
        else:
            data, kind = (json.dumps(body, indent=2) + "\n").encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if self.path == "/health":
            if os.access(TASKS_DIR, os.W_OK):
                return self.reply(200, "ok")
            return self.reply(503, f"tasks folder {TASKS_DIR} is not writable")
        if self.path == "/tasks":
            return self.reply(200, [brief(t) for t in tasks()])
        if len(parts) == 2 and parts[0] == "tasks" and NAME.match(parts[1]):
            try:
                return self.reply(200, load(parts[1]))
            except FileNotFoundError:
                return self.reply(404, f"no task {parts[1]}")
        self.reply(404, "not found")

    def do_POST(self):
        parts = self.path.strip("/").split("/")
        if self.path == "/tasks":
            return self.create()
        if len(parts) == 3 and parts[0] == "tasks" and parts[2] == "advance" and NAME.match(parts[1]):
            return self.advance(parts[1])
        self.reply(404, "not found")

    def create(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            return self.reply(400, "expected a small JSON body")
        try:
            body = json.loads(self.rfile.read(length))
        except json.JSONDecodeError as e:
            return self.reply(400, f"invalid JSON: {e}")
        name = body.get("name") if isinstance(body, dict) else None
        phases = body.get("phases") if isinstance(body, dict) else None
        if not isinstance(name, str) or not NAME.match(name):
            return self.reply(400, "expected a \"name\" of letters, digits, '.', '_', '-'")
        if not isinstance(phases, list) or not phases or not all(
            isinstance(p, str) and p for p in phases
        ):
            return self.reply(400, "expected \"phases\": a non-empty list of names")
        with lock:
            if os.path.exists(task_path(name)):
                return self.reply(409, f"task {name} exists")
            task = {
                "name": name,
                "phases": phases,
                "current": 0,
                "done": False,
                "history": [{"phase": phases[0], "entered_at": now()}],
            }
            write_json(task_path(name), task)
        self.reply(201, brief(task))

    def advance(self, name):
        with lock:
            try:
                task = load(name)
            except FileNotFoundError:
                return self.reply(404, f"no task {name}")
            if task["done"]:
                return self.reply(409, f"task {name} is done")
            if task["current"] + 1 < len(task["phases"]):
                task["current"] += 1
                task["history"].append({"phase": task["phases"][task["current"]], "entered_at": now()})
            else:
                task["done"] = True
                task["history"].append({"phase": "done", "entered_at": now()})
            write_json(task_path(name), task)
        self.reply(200, brief(task))


def main():
    os.makedirs(TASKS_DIR, exist_ok=True)
    os.makedirs(RUNTIME_DIR, mode=0o700, exist_ok=True)
    addr = os.environ.get("PHASE_RUNNER_ADDR", "127.0.0.1")
    port = int(os.environ.get("PHASE_RUNNER_PORT", "7303"))
    httpd = ThreadingHTTPServer((addr, port), Handler)
    stopping = threading.Event()
    scanner = threading.Thread(target=scan, args=(stopping,), daemon=True)

    def stop(signum, _frame):
        print(f"phase-runner: signal {signum}, stopping", flush=True)
        stopping.set()
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    scanner.start()
    print(f"phase-runner: tasks in {TASKS_DIR} on http://{addr}:{port}", flush=True)
    httpd.serve_forever()
    httpd.server_close()
    scanner.join(timeout=5)


if __name__ == "__main__":
    main()
