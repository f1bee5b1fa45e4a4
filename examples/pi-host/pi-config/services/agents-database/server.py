#!/usr/bin/python3
"""agents-database: the memory database beside Pi (a stand-in for the example host).

Keeps a SQLite database of agents and of what they remember from each session, and
serves it on loopback only:

    GET  /health     200 "ok" once the database answers
    GET  /status     counts, as JSON
    GET  /agents     every agent, as JSON
    POST /agents     {"name": "...", "role": "..."}                  -> 201 {"id": N}
    POST /memories   {"agent": "...", "session": "...", "summary": "..."} -> 201 {"id": N}

A memory is kept once per (agent, session): posting it again replaces its summary, so
the analyzer can run twice over the same session without making duplicates.

Environment:
    AGENTS_DB_PATH   the SQLite file (default ~/pi-config/agents-database/data/agents.db)
    AGENTS_DB_ADDR   address to listen on (default 127.0.0.1)
    AGENTS_DB_PORT   port (default 7301)
"""

import json
import os
import signal
import sqlite3
import sys
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS memories (
    id         INTEGER PRIMARY KEY,
    agent      TEXT NOT NULL,
    session    TEXT NOT NULL,
    summary    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (agent, session)
);
"""
MAX_BODY = 64 * 1024

DB_PATH = os.environ.get(
    "AGENTS_DB_PATH",
    os.path.expanduser("~/pi-config/agents-database/data/agents.db"),
)


def now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def database():
    """A connection for one request: committed on success, always closed."""
    db = sqlite3.connect(DB_PATH, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        with db:
            yield db
    finally:
        db.close()


def init_db():
    os.makedirs(os.path.dirname(DB_PATH), mode=0o700, exist_ok=True)
    with database() as db:
        # Only write what is not there yet: a restart must leave a restored database
        # byte for byte as it was.
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode=WAL")
        if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


class Handler(BaseHTTPRequestHandler):
    server_version = "agents-database/1"

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

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            raise ValueError(f"expected a JSON body of at most {MAX_BODY} bytes")
        value = json.loads(self.rfile.read(length))
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return value

    def do_GET(self):
        try:
            with database() as db:
                if self.path == "/health":
                    db.execute("SELECT 1").fetchone()
                    return self.reply(200, "ok")
                if self.path == "/status":
                    agents = db.execute("SELECT count(*) FROM agents").fetchone()[0]
                    memories = db.execute("SELECT count(*) FROM memories").fetchone()[0]
                    version = db.execute("PRAGMA user_version").fetchone()[0]
                    return self.reply(
                        200,
                        {"agents": agents, "memories": memories, "schema_version": version},
                    )
                if self.path == "/agents":
                    rows = db.execute("SELECT id, name, role, created_at FROM agents ORDER BY id")
                    return self.reply(200, [dict(row) for row in rows])
        except sqlite3.Error as e:
            return self.reply(503, f"database error: {e}")
        self.reply(404, "not found")

    def do_POST(self):
        try:
            body = self.read_json()
            with database() as db:
                if self.path == "/agents":
                    name = str(body.get("name", "")).strip()
                    if not name:
                        return self.reply(400, "expected a non-empty \"name\"")
                    cur = db.execute(
                        "INSERT INTO agents (name, role, created_at) VALUES (?, ?, ?)",
                        (name, str(body.get("role", "")), now()),
                    )
                    return self.reply(201, {"id": cur.lastrowid})
                if self.path == "/memories":
                    fields = [str(body.get(k, "")).strip() for k in ("agent", "session", "summary")]
                    if not all(fields):
                        return self.reply(400, "expected \"agent\", \"session\" and \"summary\"")
                    cur = db.execute(
                        "INSERT INTO memories (agent, session, summary, created_at)"
                        " VALUES (?, ?, ?, ?)"
                        " ON CONFLICT (agent, session) DO UPDATE SET summary = excluded.summary",
                        (*fields, now()),
                    )
                    return self.reply(201, {"id": cur.lastrowid})
        except (ValueError, json.JSONDecodeError) as e:
            return self.reply(400, str(e))
        except sqlite3.IntegrityError as e:
            return self.reply(409, str(e))
        except sqlite3.Error as e:
            return self.reply(503, f"database error: {e}")
        self.reply(404, "not found")


def main():
    init_db()
    addr = os.environ.get("AGENTS_DB_ADDR", "127.0.0.1")
    port = int(os.environ.get("AGENTS_DB_PORT", "7301"))
    httpd = ThreadingHTTPServer((addr, port), Handler)

    def stop(signum, _frame):
        print(f"agents-database: signal {signum}, stopping", flush=True)
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"agents-database: {DB_PATH} on http://{addr}:{port}", flush=True)
    httpd.serve_forever()
    httpd.server_close()


if __name__ == "__main__":
    main()
