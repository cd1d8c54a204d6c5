"""Serving the API with uvicorn: in the foreground (``aitrader serve``) or on a background
thread (tests, benchmarks, a bot process hosting it), on a socket bound before start so that
port 0 gives a free port whose number is known."""

from __future__ import annotations

import signal
import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

START_TIMEOUT = 10.0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _server(app: FastAPI, sock: socket.socket) -> uvicorn.Server:
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    return uvicorn.Server(config)


def serve_forever(app: FastAPI, sock: socket.socket) -> None:
    """Run ``app`` on ``sock`` until Ctrl-C or SIGTERM. uvicorn shuts down gracefully, then
    raises the signal again for the handler it found: for SIGTERM that is a no-op here, so the
    process ends normally (exit code 0) instead of being killed by the default handler."""
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        _server(app, sock).run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)


class BackgroundServer:
    """``app`` served by uvicorn on a thread: ``with BackgroundServer(app) as s: s.url``."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = bind(host, port)
        self.server = _server(app, self.sock)
        self.thread = threading.Thread(target=self._run, name="api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def _run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(START_TIMEOUT)
        self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
