"""Knowledge bases through a real ``chroma run`` server, and a server that cannot be reached (no hang)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chains.kb import EmbeddingMismatch, KBUnavailable, KnowledgeBase, connect, list_collections
from chains.kb.errors import InvalidKBRequest


def test_ingest_update_and_query_through_the_server(chroma_server: str, tmp_path: Path) -> None:
    doc = tmp_path / "standards.md"
    doc.write_text("# Grade 4 maths\n\nStudents compare two fractions with different numerators and denominators.")
    kb = KnowledgeBase.open(connect(url=chroma_server), "curriculum")
    assert kb.ingest([doc]).chunks_written == 1 and kb.ingest([doc]).unchanged == [str(doc.resolve())]
    doc.write_text("# Grade 4 maths\n\nStudents add and subtract fractions with like denominators.")
    assert kb.ingest([doc]).chunks_removed == 1 and kb.count() == 1
    (hit,) = kb.search("adding fractions", k=1)
    assert "like denominators" in hit.text and hit.source == str(doc.resolve()) and hit.score > 0.4
    reopened = connect(url=chroma_server + "/")  # a second client sees the same collection and its model
    assert "curriculum" in [c.name for c in list_collections(reopened)]
    with pytest.raises(EmbeddingMismatch):
        KnowledgeBase.open(reopened, "curriculum", model="other/model", dimension=768)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a hung server or a black-holing proxy)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_silent_server_fails_within_the_timeout_naming_the_url(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    start = time.monotonic()
    with pytest.raises(KBUnavailable, match=rf"Chroma server {url} did not answer within 0.5 s"):
        connect(url=url, timeout=0.5)
    assert time.monotonic() - start < 3


def test_a_closed_port_and_a_bad_url_are_clear_errors() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends
    with pytest.raises(KBUnavailable, match=rf"Chroma server http://127.0.0.1:{port} is not reachable"):
        connect(url=f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(InvalidKBRequest, match="expected http://HOST:PORT"):
        connect(url="127.0.0.1:8000")
