"""``prompts.lock`` and ``labels.yaml`` are replaced whole or not at all (prompts/publishing.py).

The failure is real: a child process writes under an OS file-size limit (RLIMIT_FSIZE), so the write fails with
EFBIG partway, as on a full disk. An in-place write has already truncated the old file by then.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from prompts import PromptRegistry
from prompts.publishing import lock, set_label
from tests.conftest import version_file

resource = pytest.importorskip("resource")  # POSIX only

_UNDER_A_SIZE_LIMIT = """
import resource, signal, sys
from prompts import PromptRegistry
from prompts.publishing import lock, set_label
root, limit, action = sys.argv[1], int(sys.argv[2]), sys.argv[3]
registry = PromptRegistry([root], include_builtin=False)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    lock(registry) if action == "lock" else set_label(registry, "writing/haiku@1.0.1", "staging")
except OSError as exc:
    print(exc.errno)
"""


def _run_limited(root: Path, limit: int, action: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _UNDER_A_SIZE_LIMIT, str(root), str(limit), action],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.endswith(".tmp"))


def test_a_lock_that_fails_midway_leaves_the_old_lock_whole(make_library: Callable[..., Path]) -> None:
    root = make_library()
    lock(PromptRegistry([root], include_builtin=False))
    old = (root / "prompts.lock").read_bytes()
    for patch in range(1, 60):  # 59 drafts: the new lock is several times the old one
        path = root / "writing" / "haiku" / f"1.0.{patch}.jinja"
        path.write_text(version_file(version=f"1.0.{patch}"), encoding="utf-8")
    assert _run_limited(root, len(old) + 100, "lock") == str(27)  # EFBIG
    assert (root / "prompts.lock").read_bytes() == old
    assert _leftovers(root) == []
    changes = lock(PromptRegistry([root], include_builtin=False))  # and without the limit it works
    assert len(changes) == 59 and (root / "prompts.lock").stat().st_size > len(old)


def test_a_label_write_that_fails_midway_leaves_the_old_labels_whole(make_library: Callable[..., Path]) -> None:
    root = make_library({"writing/haiku/1.0.1.jinja": version_file(version="1.0.1")})
    registry = PromptRegistry([root], include_builtin=False)
    lock(registry)
    set_label(PromptRegistry([root], include_builtin=False), "writing/haiku@1.0.0", "production")
    labels = root / "labels.yaml"
    os.chmod(labels, 0o640)
    old = labels.read_bytes()
    assert _run_limited(root, len(old) + 5, "label") == str(27)
    assert labels.read_bytes() == old and _leftovers(root) == []
    set_label(PromptRegistry([root], include_builtin=False), "writing/haiku@1.0.1", "staging")
    assert b"staging" in labels.read_bytes() and labels.stat().st_mode & 0o777 == 0o640  # permissions kept
