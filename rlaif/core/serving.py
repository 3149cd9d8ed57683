"""A local HTTP server for an ASGI app (uvicorn), as `rlaif serve-reward` and `rlaif review` run theirs, and what
counts as loopback (only this machine can connect)."""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from typing import Any


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost): only this machine can connect."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class LocalServer:
    """An ASGI app under uvicorn on a socket bound when it is made (a port in use: OSError then). `serve_forever()`
    runs it until `shutdown()` from another thread, or Ctrl-C or SIGTERM in the main thread (uvicorn's handlers
    stop it gracefully; SIGTERM then ends the process, as its default does); `server_close()` after.
    `server_address`: (host, port), the real port when 0 was asked."""

    def __init__(self, app: Any, host: str, port: int, max_concurrency: int, grace_s: float) -> None:
        import uvicorn

        self.socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(2048)
        except OSError:
            self.socket.close()
            raise
        self.server_address = self.socket.getsockname()[:2]
        logs = (
            {}
            if os.environ.get("RLAIF_SERVER_LOG")
            else {"log_config": None, "log_level": "warning", "access_log": False}
        )
        config = uvicorn.Config(
            app, lifespan="off", limit_concurrency=max_concurrency, timeout_graceful_shutdown=grace_s, **logs
        )
        self.server = uvicorn.Server(config)
        self.stopped = threading.Event()

    def serve_forever(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.stopped.set()

    def shutdown(self) -> None:
        """Stop `serve_forever` (running in another thread) and wait until it has returned."""
        self.server.should_exit = True
        self.stopped.wait()

    def server_close(self) -> None:
        self.socket.close()
