"""The JUnit XML report for CI systems: one <testcase> per case x evaluator, grouped in one <testsuite> per
variant, in the shape of the common JUnit schema (Ant's JUnit.xsd: testsuites/testsuite/testcase)."""

from __future__ import annotations

import datetime as dt
import re
import socket
import xml.etree.ElementTree as ET
from collections import defaultdict

from aigc_app.reports.summary import first_scores
from aigc_app.results import CaseResult, RunResults, ScoreRow

__all__ = ["render_junit"]

# Characters XML 1.0 cannot carry at all (model output sometimes holds them).
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_OUTPUT = 4000  # characters of the output quoted in a failure (CI pages choke on megabytes)


def _text(value: object) -> str:
    return _ILLEGAL.sub("\ufffd", str(value))


def _clip(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT else f"{text[:MAX_OUTPUT]}... ({len(text) - MAX_OUTPUT} more characters)"


def _name(case: CaseResult, repeats: bool, evaluator: str) -> str:
    repeat = f"#{case.sample_index}" if repeats else ""
    return _text(f"{case.case_id}{repeat} : {evaluator}")


def _verdict(testcase: ET.Element, case: CaseResult, score: ScoreRow) -> str:
    """Adds the failure/error/skipped child; returns which one (or "passed")."""
    if case.error is not None:
        ET.SubElement(testcase, "error", message=_text(case.error), type="generation").text = _text(case.error)
        return "errors"
    if score.error is not None:
        ET.SubElement(testcase, "error", message=_text(score.error), type="evaluator").text = _text(score.error)
        return "errors"
    if not score.applicable or score.advisory or score.passed is None:
        why = "not applicable" if not score.applicable else "advisory" if score.advisory else "no verdict"
        ET.SubElement(testcase, "skipped", message=_text(f"{why}: {score.reason}" if score.reason else why))
        return "skipped"
    if not score.passed:
        threshold = "" if score.threshold is None else f" (threshold {score.threshold:g})"
        message = f"score {score.value:.3f}{threshold}: {score.reason}"
        ET.SubElement(testcase, "failure", message=_text(message), type=_text(score.evaluator)).text = _text(
            f"{message}\n\noutput:\n{_clip(case.output)}"
        )
        return "failures"
    return "passed"


def _suite(root: ET.Element, index: int, variant: str, cases: list[CaseResult], stamp: str, host: str) -> None:
    suite = ET.SubElement(root, "testsuite", name=_text(variant), package="aigc", id=str(index))
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="prompt", value=_text(cases[0].prompt_ref))
    ET.SubElement(properties, "property", name="model", value=_text(cases[0].model))
    repeats = len({c.sample_index for c in cases}) > 1
    counts: dict[str, int] = defaultdict(int)
    total_time = 0.0
    for case in cases:
        scores = first_scores(case) or [ScoreRow("generation", "", 0.0, None)]
        for score in scores:
            testcase = ET.SubElement(
                suite, "testcase", name=_name(case, repeats, score.evaluator), classname=_text(variant)
            )
            testcase.set("time", f"{case.latency_s:.3f}")
            counts[_verdict(testcase, case, score)] += 1
            counts["tests"] += 1
        total_time += case.latency_s
    ET.SubElement(suite, "system-out")
    ET.SubElement(suite, "system-err")
    for key in ("tests", "failures", "errors", "skipped"):
        suite.set(key, str(counts[key]))
    suite.set("time", f"{total_time:.3f}")
    suite.set("timestamp", stamp)
    suite.set("hostname", host)


def render_junit(results: RunResults) -> str:
    """The run as JUnit XML: a score that failed is a <failure>, an evaluator or generation error an <error>,
    an advisory or not-applicable score <skipped>."""
    root = ET.Element("testsuites")
    groups: dict[str, list[CaseResult]] = defaultdict(list)
    for case in results.cases:
        groups[case.variant].append(case)
    stamp = dt.datetime.fromtimestamp(results.info.started_at or 0, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    host = socket.gethostname() or "localhost"
    for index, (variant, cases) in enumerate(groups.items()):
        _suite(root, index, variant, cases, stamp, host)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
