"""The SQLite database: WAL, so a backup (sqlite3's .backup) reads while the app writes."""

import os
import sqlite3

SCHEMA = """
create table if not exists notes (
  id integer primary key,
  body text not null,
  author text not null,
  score real,
  attachment blob,
  created_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


def connect():
    db = sqlite3.connect(os.environ.get("NOTES_DB", "notes.db"), timeout=30, isolation_level=None)
    db.execute("pragma busy_timeout = 30000")
    return db


def migrate():
    with connect() as db:
        db.execute("pragma journal_mode = wal")
        db.execute(SCHEMA)
