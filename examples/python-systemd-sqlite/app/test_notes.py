"""Runs on the runner before the release is packaged: python3 -m unittest."""

import json
import os
import tempfile
import threading
import unittest
import urllib.request
from http.server import ThreadingHTTPServer

os.environ["NOTES_DB"] = os.path.join(tempfile.mkdtemp(), "notes.db")

from notes.__main__ import Handler  # noqa: E402
from notes.store import migrate  # noqa: E402


class NotesTest(unittest.TestCase):
    def test_a_note_is_counted(self):
        migrate()
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            urllib.request.urlopen(urllib.request.Request(f"{base}/notes", data=b"hello", method="POST"))
            with urllib.request.urlopen(f"{base}/notes/count") as response:
                self.assertEqual(json.load(response)["count"], 1)
            with urllib.request.urlopen(f"{base}/health") as response:
                self.assertEqual(json.load(response), {"status": "ok"})
        finally:
            server.shutdown()


if __name__ == "__main__":
    unittest.main()
