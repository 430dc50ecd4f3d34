"""Run the app on a free 127.0.0.1 port in a background thread: for tests, benchmarks and notebooks.

with running_server(ServeSettings(config=path)) as server:
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="none")
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from aigc_app.server.app import create_app
from aigc_app.server.settings import ServeSettings

__all__ = ["RunningServer", "free_port", "running_server"]


@dataclass(frozen=True)
class RunningServer:
    """Where a started server listens."""

    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(settings: ServeSettings | None = None, *, start_timeout: float = 30.0) -> Iterator[RunningServer]:
    """Start uvicorn on ``settings`` (port 0 picks a free one), yield once it accepts, stop it on exit."""
    settings = settings or ServeSettings()
    port = settings.port or free_port(settings.host)
    settings = settings.model_copy(update={"port": port})
    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=port, log_level="warning", backlog=2048, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"aigc-serve-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"aigc serve did not start on {settings.host}:{port} within {start_timeout:.0f} s")
        time.sleep(0.02)
    try:
        yield RunningServer(settings.host, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
