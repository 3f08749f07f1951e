"""Serves the notes API on HOST:PORT (default 127.0.0.1:8000), the data in SQLite at NOTES_DB.

GET  /health       {"status":"ok"} when the database answers
GET  /version      the app's version and the venv it runs from (the release's own)
GET  /notes/count  how many notes there are
POST /notes        stores the request body as a note
"""

import json
import os
import sqlite3
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from notes import VERSION
from notes.store import connect, migrate


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, payload):
        body = (json.dumps(payload) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        try:
            with connect() as db:
                if self.path == "/health":
                    db.execute("select 1").fetchone()
                    self.answer(200, {"status": "ok"})
                elif self.path == "/version":
                    self.answer(200, {"version": VERSION, "venv": os.path.realpath(sys.prefix)})
                elif self.path == "/notes/count":
                    self.answer(200, {"count": db.execute("select count(*) from notes").fetchone()[0]})
                else:
                    self.answer(404, {"error": "not found"})
        except sqlite3.Error as error:
            self.answer(503, {"status": "database error", "error": str(error)})

    def do_POST(self):
        if self.path != "/notes":
            self.answer(404, {"error": "not found"})
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode("utf-8", "replace")
        with connect() as db:
            note = db.execute("insert into notes (body, author) values (?, ?) returning id", (body, "api")).fetchone()[0]
        self.answer(201, {"id": note})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    migrate()
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))
    print(f"notes {VERSION} on {host}:{port}, data in {os.environ.get('NOTES_DB')}", flush=True)
    ThreadingHTTPServer((host, port), Handler).serve_forever()
