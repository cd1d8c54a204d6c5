"""A threaded HTTP server on 127.0.0.1 for protocol-faithful fakes of remote APIs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StateServer(ThreadingHTTPServer):
    """A server whose handlers read the test's state object from ``self.server.state``."""

    daemon_threads = True
    state: Any


class JsonHandler(BaseHTTPRequestHandler):
    """Quiet request handler with a ``_send`` helper that tolerates clients hanging up."""

    server: StateServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(
        self,
        status: int,
        body: str,
        headers: dict[str, str] | None = None,
        ctype: str = "application/json;charset=UTF-8",
    ) -> None:
        data = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            return


@contextmanager
def serve(handler: type[JsonHandler], state: Any) -> Iterator[str]:
    """Run ``handler`` in a thread on a free loopback port; yields the base URL."""
    server = StateServer(("127.0.0.1", 0), handler)
    server.state = state
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
