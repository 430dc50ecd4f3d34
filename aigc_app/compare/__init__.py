"""Paired statistical comparison of two eval runs or two variants of one run: verdicts, renders, CI gate."""

from aigc_app.compare.comparison import (
    Comparison,
    EvaluatorRow,
    FlakyCase,
    RegressedCase,
    VariantComparison,
    compare_runs,
    compare_variants,
)
from aigc_app.compare.errors import CompareError
from aigc_app.compare.render import comparison_dict, comparison_json, comparison_markdown, render_comparison

__all__ = [
    "CompareError",
    "Comparison",
    "EvaluatorRow",
    "FlakyCase",
    "RegressedCase",
    "VariantComparison",
    "compare_runs",
    "compare_variants",
    "comparison_dict",
    "comparison_json",
    "comparison_markdown",
    "render_comparison",
]
