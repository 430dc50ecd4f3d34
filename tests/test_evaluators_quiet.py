"""Scoring with the shipped MiniLM keeps the terminal quiet: no weights progress bar, no transformers chatter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_loading_minilm_prints_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY")}
    env["PYTHONPATH"] = str(ROOT)
    code = "from evaluators.embeddings import embed; print(embed(['hello']).shape)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1, 384)"
    assert "Loading weights" not in result.stderr and result.stderr.strip() == "", result.stderr
