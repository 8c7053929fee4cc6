"""A small HTTP server on 127.0.0.1 for a fixed set of pages, in a thread.

The browser demo serves its page, the bundle and a config this way, and the
Chromium tests serve their test page the same way: a table of paths, each with
a content type and a function that reads the body when it is asked for (so a
rebuilt bundle is served without a restart).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

#: What one path serves: its content type and a function giving the body.
Route = tuple[str, Callable[[], bytes]]


@contextmanager
def serve_static(routes: Mapping[str, Route], port: int = 0) -> Iterator[str]:
    """Serve ``routes`` on 127.0.0.1:``port`` (0: any free port); yields the root URL.

    The query string is ignored; any other path gets 404.  Raises ``OSError``
    when the port cannot be bound.
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                self.send_error(404)
                return
            kind, read = route
            body = read()
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, name="static-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
