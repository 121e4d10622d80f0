"""A stand-in for the Hugging Face hub on localhost: it serves files under
``/<repo_id>/resolve/<revision>/<filename>`` with the headers
``huggingface_hub`` reads (``X-Repo-Commit``, ``ETag``, ``Content-Length``)
and honours HTTP Range requests, so downloads can be tested with no network.

``drop_after`` cuts the first GET of each file after that many bytes (the
socket is closed mid-body), to test resuming; ``announce`` overrides the
size a HEAD announces, to test a refused download.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class HubServer:
    """Serve ``files`` (``{"repo/name/file.gguf": Path}``) on 127.0.0.1.

    Attributes:
        url: the server's address, for ``HF_ENDPOINT`` / ``endpoint=``.
        requests: ``(method, path, Range header or None)`` of every request.
    """

    def __init__(self, files: dict[str, Path], drop_after: int | None = None,
                 announce: dict[str, int] | None = None) -> None:
        self.files, self.drop_after, self.announce = files, drop_after, announce or {}
        self.requests: list[tuple[str, str, str | None]] = []
        self._dropped: set[str] = set()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

            def do_GET(self) -> None:
                hub._answer(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _lookup(self, path: str) -> tuple[str, Path] | None:
        parts = path.lstrip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return None
        key = "/".join(parts[:2] + parts[4:])
        return (key, self.files[key]) if key in self.files else None

    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        rng = handler.headers.get("Range")
        self.requests.append((handler.command, handler.path, rng))
        found = self._lookup(handler.path.split("?")[0])
        if found is None:
            handler.send_response(404)
            handler.send_header("X-Error-Code", "EntryNotFound")  # as the hub says it
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        key, path = found
        data = path.read_bytes()
        etag = hashlib.sha256(data).hexdigest()
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        handler.send_response(206 if start else 200)
        handler.send_header("X-Repo-Commit", "0" * 40)
        handler.send_header("ETag", f'"{etag}"')
        size = self.announce.get(key, len(data)) if not body else len(data) - start
        handler.send_header("Content-Length", str(size))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        if not body:
            return
        chunk = data[start:]
        if self.drop_after is not None and key not in self._dropped:
            self._dropped.add(key)
            handler.wfile.write(chunk[:self.drop_after])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)  # cut mid-body, as a dropped network does
            return
        handler.wfile.write(chunk)
