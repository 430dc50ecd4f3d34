"""The statistics behind the calibration report, checked on hand-computed values (no shared data needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from aigc_app.cli.evaluators import _table_lines, calibration_markdown
from evaluators.fluency.calibration import _auroc as auroc_np
from evaluators.fluency.calibration import _mcc, _spearman
from evaluators.safety.calibration import _auroc, _best_threshold, _prf, _youden


def test_mcc_on_a_confusion_matrix() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    pred = np.array([1, 1, 0, 0, 0, 1, 1, 0])  # tp 3, tn 3, fp 1, fn 1
    assert _mcc(y, pred) == pytest.approx((3 * 3 - 1 * 1) / math.sqrt(4 * 4 * 4 * 4))
    assert _mcc(y, y) == pytest.approx(1.0) and _mcc(y, 1 - y) == pytest.approx(-1.0)


def test_auroc_both_implementations_agree_with_the_pair_count() -> None:
    y = [1, 0, 1, 0, 1]
    scores = [0.9, 0.8, 0.7, 0.2, 0.1]  # positive above negative in 3 of the 6 pairs
    assert _auroc(y, scores) == pytest.approx(3 / 6)
    assert auroc_np(np.array(y), np.array(scores)) == pytest.approx(3 / 6)


def test_spearman_precision_recall_f1_and_youden() -> None:
    assert _spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert _spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    accuracy, precision, recall, f1 = _prf([1, 1, 0, 0], [True, False, True, False])
    assert (accuracy, precision, recall, f1) == (0.5, 0.5, 0.5, 0.5)
    assert _youden([1, 1, 0, 0], [True, True, False, True]) == pytest.approx(1.0 - 0.5)
    assert _best_threshold([1, 1, 0, 0], [0.9, 0.8, 0.3, 0.1]) >= 0.3


def test_report_keeps_rows_of_areas_not_measured_again(tmp_path: Path) -> None:
    out = tmp_path / "c.md"
    first = [{"area": "safety", "evaluator": "pii", "metric": "recall", "value": 0.5, "goal": "higher", "n": 3}]
    out.write_text(calibration_markdown(first, tmp_path))
    second = [{"area": "fluency", "evaluator": "acceptability", "metric": "mcc", "value": 0.1, "n": 9}]
    out.write_text(calibration_markdown(second, tmp_path, [line for line in _table_lines(out)]))
    text = out.read_text()
    assert "| safety | pii |" in text and "| fluency | acceptability |" in text
