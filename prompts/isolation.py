"""Compile and render untrusted templates in a worker process under OS limits (address space and CPU time).

Published, hash-pinned versions compile and render in process, metered by the sandbox. Everything else (drafts,
``aigc prompts check``, templates a server receives) goes through :class:`IsolatedWorker`: a child process
that runs the same sandbox with ``RLIMIT_AS`` set to its start-up size plus ``budget.max_memory_mb`` and
``RLIMIT_CPU`` to ``budget.max_seconds`` per request, and that the parent kills when a request runs past its
wall-clock deadline. Requests and replies are JSON lines, so nothing the child sends can run code here.
"""

from __future__ import annotations

import json
import os
import resource
import select
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prompts.budget import RenderBudget
from prompts.errors import InvalidInputs, InvalidTemplate, LibraryError, PromptError, PromptSecurityError
from prompts.rendering import Message
from prompts.schema import PromptMeta

__all__ = ["IsolatedRenderer", "IsolatedWorker", "compile_isolated"]

_STARTUP_S = 30.0  # a cold interpreter on a busy machine; counted once per worker
_MAX_REPLY = 64 * 1024 * 1024
_ERRORS: dict[str, type[PromptError]] = {
    "PromptSecurityError": PromptSecurityError,
    "InvalidTemplate": InvalidTemplate,
    "InvalidInputs": InvalidInputs,
}


class IsolatedWorker:
    """One child process that compiles and renders templates for a registry; restarted after it dies."""

    def __init__(self, budget: RenderBudget) -> None:
        self.budget = budget
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._buffer = b""

    def request(self, payload: dict[str, Any], *, path: str) -> Any:
        """Send one request; return its result or raise the PromptError it produced, naming ``path``."""
        with self._lock:
            process = self._ensure_started()
            started = time.monotonic()
            assert process.stdin is not None
            try:
                process.stdin.write(json.dumps(payload).encode() + b"\n")
                process.stdin.flush()
                line = self._read_line(process, self.budget.max_seconds + 1.0)
            except (BrokenPipeError, TimeoutError, EOFError) as exc:
                self._kill()
                raise self._died(exc, time.monotonic() - started, path) from None
        reply = json.loads(line)
        if "error" in reply:
            raise _rebuild(reply["error"], path)
        return reply["result"]

    def close(self) -> None:
        """Stop the child process (it is also stopped when the worker is garbage-collected or at exit)."""
        with self._lock:
            self._kill()

    def __del__(self) -> None:
        self._kill()

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "prompts.isolation", json.dumps(asdict(self.budget))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self._buffer = b""
        self._read_line(self._process, _STARTUP_S)  # the child says it is ready once its limits are set
        return self._process

    def _read_line(self, process: subprocess.Popen[bytes], timeout: float) -> bytes:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        fd = process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError
            self._buffer += chunk
            if len(self._buffer) > _MAX_REPLY:
                raise EOFError
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def _died(self, exc: BaseException, elapsed: float, path: str) -> PromptSecurityError:
        if isinstance(exc, TimeoutError):
            reason = f"ran past its time limit of {self.budget.max_seconds} s and was stopped"
        else:
            reason = (
                f"was stopped by the OS after {elapsed:.1f} s: it went over its memory limit "
                f"({self.budget.max_memory_mb} MB) or its CPU time ({self.budget.max_seconds} s)"
            )
        return PromptSecurityError(f"blocked by the sandbox: the isolated render {reason}", path=path)


class IsolatedRenderer:
    """A Prompt's renderer that sends validated values to the worker with the version's source."""

    def __init__(self, worker: IsolatedWorker, request: dict[str, Any], path: str) -> None:
        self.worker = worker
        self.request = request
        self.path = path

    def __call__(self, values: dict[str, Any]) -> list[Message]:
        try:
            payload = {**self.request, "op": "render", "values": values}
            json.dumps(payload)
        except (TypeError, ValueError) as exc:
            raise InvalidInputs(
                f"{self.request['id']}: values must be JSON data (str, numbers, lists, dicts) to render a draft: {exc}",
                prompt=self.request["id"],
            ) from None
        blocks = self.worker.request(payload, path=self.path)
        return [Message(role=role, content=content) for role, content in blocks]


def compile_isolated(
    worker: IsolatedWorker, prompt_id: str, path: Path, source: str, roots: list[Path], *, published: bool
) -> Any:
    """Compile a version file in the worker; return a Prompt that renders there too."""
    from prompts.template import Prompt

    request = {"id": prompt_id, "path": str(path), "source": source, "roots": [str(r) for r in roots]}
    summary = worker.request({**request, "op": "compile"}, path=str(path))
    return Prompt(
        prompt_id=prompt_id,
        meta=PromptMeta.model_validate(summary["meta"]),
        path=path,
        source=source,
        renderer=IsolatedRenderer(worker, request, str(path)),
        variables=frozenset(summary["variables"]),
        partials=summary["partials"],
        published=published,
        budget=worker.budget,
        isolated=True,
    )


def _rebuild(error: dict[str, Any], path: str) -> PromptError:
    kind = _ERRORS.get(error["type"])
    if kind is InvalidInputs:
        return InvalidInputs(error["message"], prompt=error.get("prompt") or "")
    if kind is not None:
        return kind(error["detail"], path=error.get("path") or path, line=error.get("line"))
    return LibraryError(error["message"])


# -- the child process ---------------------------------------------------------------------------------


def _serve(budget: RenderBudget) -> None:
    from prompts.sandbox import make_environment
    from prompts.template import compile_prompt

    envs: dict[tuple[str, ...], Any] = {}
    compiled: dict[tuple[str, str], Any] = {}

    def prompt_for(request: dict[str, Any]) -> Any:
        key = (request["path"], request["source"])
        if key not in compiled:
            roots = tuple(request["roots"])
            env = envs.get(roots) or envs.setdefault(roots, make_environment([Path(r) for r in roots], budget))
            if len(compiled) > 256:
                compiled.clear()
            path = Path(request["path"])
            compiled[key] = compile_prompt(request["id"], path, request["source"], env, published=False, budget=budget)
        return compiled[key]

    _limit_memory(budget.max_memory_mb)
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        _limit_cpu(budget.max_seconds)
        request = json.loads(line)
        try:
            prompt = prompt_for(request)
            if request["op"] == "compile":
                result: Any = {
                    "meta": prompt.meta.model_dump(mode="json", by_alias=True),
                    "variables": sorted(prompt.variables),
                    "partials": prompt.partials,
                }
            else:
                result = [[m.role, m.content] for m in prompt.to_messages(request["values"])]
            reply = {"result": result}
        except MemoryError:
            reply = {
                "error": _error_dict(
                    PromptSecurityError(
                        f"blocked by the sandbox: went over the memory limit of {budget.max_memory_mb} MB",
                        path=request.get("path"),
                    )
                )
            }
        except PromptError as exc:
            reply = {"error": _error_dict(exc)}
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()


def _error_dict(exc: PromptError) -> dict[str, Any]:
    kind = next((name for name, cls in _ERRORS.items() if isinstance(exc, cls)), "LibraryError")
    return {
        "type": kind,
        "message": str(exc),
        "detail": getattr(exc, "detail", str(exc)),
        "path": getattr(exc, "path", None),
        "line": getattr(exc, "line", None),
        "prompt": getattr(exc, "prompt", None),
    }


def _limit_memory(megabytes: int) -> None:
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[0])
    except OSError:  # not Linux: the in-process meter still bounds the work
        return
    size = pages * os.sysconf("SC_PAGE_SIZE") + megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size, size))


def _limit_cpu(seconds: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


if __name__ == "__main__":
    _serve(RenderBudget(**json.loads(sys.argv[1])))
