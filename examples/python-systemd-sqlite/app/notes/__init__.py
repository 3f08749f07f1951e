"""notes: a small JSON service on SQLite, standard library only."""

VERSION = "1"
