"""Reports from hand-built runs: terminal at 80 columns, Markdown, JSON round trip, JUnit XML shape, HTML escaping
and self-containment, atomic writes."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aigc_app.reports import ReportError, render, summary_table, write_report
from aigc_app.reports.json_report import SCHEMA_VERSION, from_dict
from aigc_app.reports.summary import evaluator_summaries, failed_cases, variant_summaries, wilson
from aigc_app.results import CaseResult, RunInfo, RunResults, ScoreRow

HOSTILE = "</script><script>window.pwned=1</script> <img src=x onerror=alert(1)> | [bold]markup[/] & <!--"
NOTE = "tiny offline model: text is meaningless. Point the run at a real model with --model"


def _scores(fluency: float, adherence: float, *, pii_applicable: bool = True, judge_error: bool = False) -> tuple:
    return (
        ScoreRow("fluency", "1", fluency, fluency >= 0.6, 0.6, "reads well" if fluency >= 0.6 else "choppy"),
        ScoreRow("adherence", "2", adherence, adherence >= 0.7, 0.7, f"{adherence:.0%} of the brief covered"),
        ScoreRow("readability", "1", 0.4, False, 0.5, "grade 14 text", advisory=True),
        ScoreRow("pii", "1", 1.0, None, 0.5, "no personal data expected", applicable=pii_applicable)
        if not pii_applicable
        else ScoreRow("pii", "1", 1.0, True, 0.5, "no emails or phones"),
        ScoreRow("judge", "1", 0.0, None, 0.5, "", error="EvaluatorError: judge model returned no digits")
        if judge_error
        else ScoreRow("judge", "1", 0.8, True, 0.5, "on brief", details={"raw": "8/10"}),
    )


def _case(case_id: str, version: str, model: str, repeat: int = 0, **kw) -> CaseResult:
    output = kw.pop("output", f"Acme {case_id}: shoes that go the distance.")
    return CaseResult(
        run_id="r-20261201-abc123",
        case_id=case_id,
        prompt_name="marketing/ad_copy",
        prompt_version=version,
        prompt_hash="sha256:" + version.replace(".", "") * 8,
        model=model,
        sample_index=repeat,
        params={"temperature": 0.2},
        seed=7,
        inputs={"brand": "Acme", "product": f"shoes {case_id}"},
        messages=({"role": "system", "content": "You write ads."}, {"role": "user", "content": f"Ad for {case_id}"}),
        output=output,
        latency_s=kw.pop("latency_s", 0.25 + repeat * 0.1),
        tokens_in=20,
        tokens_out=40,
        key=f"{case_id}-{version}-{model}-{repeat}",
        **kw,
    )


@pytest.fixture
def results() -> RunResults:
    """Two prompt versions x two models x three cases x two repeats, with every kind of score."""
    cases = []
    for version in ("1.0.0", "1.1.0"):
        for model in ("openai:gpt-4o-mini", "hf:tiny"):
            for i, case_id in enumerate(("brief-01", "brief-02", "brief-03")):
                for repeat in (0, 1):
                    good = model.startswith("openai") and (version == "1.1.0" or i < 2)
                    scores = _scores(0.9 if good else 0.4, 0.8 if good else 0.5, pii_applicable=i != 1,
                                     judge_error=(i == 2 and repeat == 1))  # fmt: skip
                    cases.append(_case(case_id, version, model, repeat, scores=scores))
    cases.append(_case("brief-04", "1.0.0", "hf:tiny", error="RateLimited: 429 after 3 retries", output=""))
    cases.append(_case("brief-05", "1.1.0", "openai:gpt-4o-mini", output=HOSTILE, scores=_scores(0.3, 0.9)))
    cases.append(
        _case("brief-01", "1.0.0", "openai:gpt-4o-mini", 0, scores=(ScoreRow("judge", "1", 0.1, False, rescore=1),))
    )
    info = RunInfo(
        run_id="r-20261201-abc123",
        suite="marketing-ab",
        status="finished",
        started_at=1_796_130_000.0,
        finished_at=1_796_130_060.0,
        prompts=("marketing/ad_copy@1.0.0", "marketing/ad_copy@1.1.0"),
        models=("openai:gpt-4o-mini", "hf:tiny"),
        evaluators=("fluency", "adherence", "readability", "pii", "judge"),
        planned=len(cases),
        done=len(cases),
        failed=1,
        cost_usd=0.0123,
        notes=(NOTE,),
    )
    return RunResults(info=info, cases=cases[:-1])  # the rescore row stays out: checked on its own below


# --- figures -------------------------------------------------------------------------------------------------------


def test_variant_figures_count_cases_errors_and_wilson_intervals(results: RunResults) -> None:
    by_variant = {s.variant: s for s in variant_summaries(results)}
    good = by_variant["marketing/ad_copy@1.1.0 | openai:gpt-4o-mini"]
    assert (good.cases, good.repeats, good.errors, good.eval_errors) == (7, 2, 0, 1)
    assert good.passed == 6  # brief-05 fails fluency; the errored judge score has no verdict
    from statsmodels.stats.proportion import proportion_confint

    assert good.interval == pytest.approx(proportion_confint(6, 7, method="wilson"))
    tiny = by_variant["marketing/ad_copy@1.0.0 | hf:tiny"]
    assert (tiny.cases, tiny.passed, tiny.errors) == (7, 0, 1)
    assert tiny.latency_p50 == pytest.approx(0.3)  # the failed call's latency is left out
    assert wilson(0, 0) is None


def test_evaluator_figures_keep_advisory_and_not_applicable_out_of_pass_rates(results: RunResults) -> None:
    by_name = {e.evaluator: e for e in evaluator_summaries(results)}
    assert by_name["readability"].gating == 0 and by_name["readability"].advisory == 24 + 1
    assert by_name["pii"].not_applicable == 8 and by_name["pii"].gating == 17
    assert by_name["judge"].errors == 4 and by_name["judge"].scored == 21
    assert by_name["adherence"].mean == pytest.approx((10 * 0.8 + 14 * 0.5 + 0.9) / 25)


def test_failed_cases_name_the_failing_evaluators_and_the_first_reason(results: RunResults) -> None:
    failures = {(f.case.case_id, f.case.variant, f.case.sample_index): f for f in failed_cases(results)}
    rate_limited = failures[("brief-04", "marketing/ad_copy@1.0.0 | hf:tiny", 0)]
    assert rate_limited.failing == ("generation (error)",) and "429" in rate_limited.reason
    tiny = failures[("brief-03", "marketing/ad_copy@1.0.0 | hf:tiny", 1)]
    assert tiny.failing == ("fluency", "adherence", "judge (error)") and tiny.reason == "fluency: choppy"
    assert len(failures) == sum(not c.passed for c in results.cases)


def test_rescores_never_gate() -> None:
    case = _case(
        "c", "1", "m", scores=(ScoreRow("judge", "1", 0.9, True), ScoreRow("judge", "1", 0.1, False, rescore=1))
    )
    run = RunResults(RunInfo("r-1", "s", "finished", 0.0), [case])
    assert not failed_cases(run) and variant_summaries(run)[0].means["judge"] == pytest.approx(0.9)


# --- terminal --------------------------------------------------------------------------------------------------------


def test_terminal_report_fits_80_columns_and_shows_header_notes_and_variants(results: RunResults) -> None:
    text = render(results, "terminal")
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "r-20261201-abc123" in text and "marketing-ab" in text and "finished" in text
    assert "note: " + NOTE[:40] in " ".join(text.split())
    for version in ("1.0.0", "1.1.0"):
        assert f"marketing/ad_copy@{version}" in text
    assert "86% 49-97%" in text  # 6 of 7 with its Wilson interval
    assert "most failing of 5 evaluators" in text  # five do not fit: the ones failing most are shown
    header = next(line for line in text.splitlines() if line.lstrip().startswith("variant"))
    assert "fluency" in header and "adherence" in header and "pii" not in header


def test_terminal_table_with_long_names_still_fits() -> None:
    long = [_case(f"case-{i}", "10.20.30", "openai:some-very-long-model-name-2026-12-01-preview", scores=_scores(
        0.9, 0.9)) for i in range(3)]  # fmt: skip
    run = RunResults(RunInfo("r-" + "x" * 40, "a-suite-with-a-long-name", "interrupted", 0.0, planned=9), long)
    from rich.console import Console

    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(summary_table(run))
    assert max(len(line) for line in console.export_text().splitlines()) <= 80
    text = render(run, "terminal")
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "aigc eval a-suite-with-a-long-name --resume" in " ".join(text.split())


def test_terminal_report_of_an_empty_run() -> None:
    text = render(RunResults(RunInfo("r-empty", "s", "running", 0.0), []), "terminal")
    assert "no cases" in text and "running" in text


# --- markdown --------------------------------------------------------------------------------------------------------


def _md_tables(text: str) -> list[list[str]]:
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def test_markdown_has_every_section_and_well_formed_tables(results: RunResults) -> None:
    text = render(results, "md")
    for heading in ("# Eval run", "## Notes", "## Summary by variant", "## Evaluators", "## Failed cases"):
        assert heading in text
    assert NOTE in text
    for table in _md_tables(text):
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in table}
        assert len(widths) == 1, table  # every row has as many cells as the header: pipes in text are escaped
    assert "| judge (error) |" not in text and "fluency, adherence, judge (error)" in text


def test_markdown_escapes_run_text(results: RunResults) -> None:
    hostile = [_case("x|y", "1", "m", error=HOSTILE, output="")]
    text = render(RunResults(results.info, hostile), "md")
    assert "<script>" not in text and "<img" not in text
    assert "&lt;/script&gt;" in text and "x\\|y" in text


# --- JSON ------------------------------------------------------------------------------------------------------------


def test_json_round_trips_and_has_stable_keys(results: RunResults) -> None:
    text = render(results, "json")
    data = json.loads(text)
    assert data["schema_version"] == SCHEMA_VERSION
    assert list(data) == ["schema_version", "info", "cases"]
    assert data["cases"][0]["variant"] == results.cases[0].variant and "passed" in data["cases"][0]
    back = from_dict(data)
    assert back.info == results.info
    assert list(back.cases) == list(results.cases)
    assert render(back, "json") == text


def test_json_writes_no_nan(results: RunResults) -> None:
    nan = _case("nan", "1", "m", scores=(ScoreRow("x", "1", math.nan, None, error="boom"),), cost_usd=math.inf)
    text = render(RunResults(results.info, [nan]), "json")
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert data["cases"][0]["scores"][0]["value"] is None and data["cases"][0]["cost_usd"] is None


def test_json_of_another_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="schema_version"):
        from_dict({"schema_version": 99, "info": {}, "cases": []})


# --- JUnit -----------------------------------------------------------------------------------------------------------


def _check_junit_schema(root: ET.Element) -> None:
    """The rules of the common JUnit schema (Ant's JUnit.xsd) that a CI parser relies on."""
    assert root.tag == "testsuites" and not root.attrib
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
    for index, suite in enumerate(root):
        assert suite.tag == "testsuite"
        for attr in ("name", "package", "id", "timestamp", "hostname", "tests", "failures", "errors", "time"):
            assert suite.get(attr), attr
        assert suite.get("id") == str(index) and stamp.match(suite.get("timestamp", ""))
        children = [c.tag for c in suite]
        assert children[0] == "properties" and children[-2:] == ["system-out", "system-err"]
        assert set(children[1:-2]) <= {"testcase"}
        for prop in suite.find("properties") or []:
            assert prop.tag == "property" and prop.get("name") and prop.get("value") is not None
        cases = suite.findall("testcase")
        for case in cases:
            assert case.get("name") and case.get("classname")
            float(case.get("time", "x"))
            assert len(case) <= 1
            for child in case:
                assert child.tag in ("failure", "error", "skipped")
                if child.tag != "skipped":
                    assert child.get("type")
        counts = {tag: sum(c.find(tag) is not None for c in cases) for tag in ("failure", "error", "skipped")}
        assert int(suite.get("tests", -1)) == len(cases)
        assert int(suite.get("failures", -1)) == counts["failure"] and int(suite.get("errors", -1)) == counts["error"]
        assert int(suite.get("skipped", -1)) == counts["skipped"]
        float(suite.get("time", "x"))


def test_junit_has_one_testcase_per_case_and_evaluator(results: RunResults) -> None:
    root = ET.fromstring(render(results, "junit").encode())
    _check_junit_schema(root)
    assert [s.get("name") for s in root] == results.variants
    testcases = {(tc.get("classname"), tc.get("name")): tc for tc in root.iter("testcase")}
    assert len(testcases) == sum(max(1, len(c.scores)) for c in results.cases)
    failed = testcases[("marketing/ad_copy@1.0.0 | hf:tiny", "brief-01#0 : fluency")].find("failure")
    assert failed is not None and "threshold 0.6" in failed.get("message", "") and "choppy" in failed.get("message", "")
    assert testcases[("marketing/ad_copy@1.0.0 | hf:tiny", "brief-01#0 : readability")].find("skipped") is not None
    assert testcases[("marketing/ad_copy@1.0.0 | hf:tiny", "brief-02#1 : pii")].find("skipped") is not None
    judge = testcases[("marketing/ad_copy@1.0.0 | hf:tiny", "brief-03#1 : judge")].find("error")
    assert judge is not None and "no digits" in judge.get("message", "")
    gen = testcases[("marketing/ad_copy@1.0.0 | hf:tiny", "brief-04#0 : generation")].find("error")
    assert gen is not None and gen.get("type") == "generation"
    ok = testcases[("marketing/ad_copy@1.1.0 | openai:gpt-4o-mini", "brief-01#0 : fluency")]
    assert len(ok) == 0


def test_junit_survives_control_characters_and_markup() -> None:
    case = _case(
        "c\x00", "1", "m", output="bell\x07 " + HOSTILE, scores=(ScoreRow("f", "1", 0.1, False, 0.5, "x\x1b"),)
    )
    text = render(RunResults(RunInfo("r-1", "s", "finished", 0.0), [case]), "junit")
    root = ET.fromstring(text.encode())
    _check_junit_schema(root)
    assert "window.pwned" in (root.find(".//failure").text or "")  # escaped by the XML writer, still readable


# --- HTML ------------------------------------------------------------------------------------------------------------


def _page_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="aigc-data">(.*?)</script>', page, re.S)
    assert match
    return json.loads(match.group(1))


def test_html_is_self_contained_and_escapes_run_text(results: RunResults) -> None:
    run = RunResults(
        RunInfo("r-<b>1</b>", "<i>suite</i>", "finished", 0.0, notes=(NOTE, "<script>alert(1)</script>")),
        [*results.cases, _case("<x>", "1", "<m>", error=HOSTILE)],
    )
    page = render(run, "html")
    assert page.count("<script") == 2  # the data block and the report's own script: nothing from the run
    assert "window.pwned" not in page.split('id="aigc-data">')[0]  # not in the markup
    assert "<img" not in page and "<b>1</b>" not in page and "<i>suite</i>" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "nothing may be fetched"
    assert "<link" not in page and "@import" not in page
    assert 'class="notes"' in page and NOTE in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    data = _page_data(page)
    assert len(data["cases"]["id"]) == len(run.cases)
    assert HOSTILE in data["cases"]["e"]  # intact once parsed
    assert data["cases"]["out"][-2] == HOSTILE


def test_html_charts_are_inline_svg(results: RunResults) -> None:
    page = render(results, "html")
    assert page.count("<svg") == 1 + 5 + 1  # pass rates, one histogram per evaluator with values, latency
    assert "95% Wilson interval" in page
    for variant in results.variants:
        assert f"<title>{variant}</title>" in page


def test_html_interns_repeated_strings() -> None:
    from aigc_app.reports.sample import sample_results

    run = sample_results(400)
    data = _page_data(render(run, "html"))
    assert len(data["strings"]) < len(run.cases)  # system prompts, reasons, params stored once


# --- writing ---------------------------------------------------------------------------------------------------------


def test_write_report_creates_folders_and_leaves_no_temp_files(results: RunResults, tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "run.html"
    assert write_report(results, "html", target) == target
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert write_report(results, "md", target.with_suffix(".md")).read_text().startswith("# Eval run")
    assert sorted(p.name for p in target.parent.iterdir()) == ["run.html", "run.md"]


def test_unwritable_path_is_a_report_error_naming_it(results: RunResults, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ReportError, match=re.escape(str(blocker / "out.html"))):
        write_report(results, "html", blocker / "out.html")
    with pytest.raises(ReportError, match="it is a folder"):
        write_report(results, "html", tmp_path)
    assert blocker.read_text() == "not a folder"


def test_a_failed_write_keeps_the_previous_report(results: RunResults, tmp_path: Path) -> None:
    target = tmp_path / "run.md"
    target.write_text("previous")
    with pytest.raises(ReportError):
        write_report(results, "nope", target)  # type: ignore[arg-type]
    assert target.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["run.md"]


def test_junit_quotes_at_most_4000_characters_of_output() -> None:
    case = _case("long", "1", "m", output="x" * 50_000, scores=(ScoreRow("f", "1", 0.1, False, 0.5, "too long"),))
    root = ET.fromstring(render(RunResults(RunInfo("r-1", "s", "finished", 0.0), [case]), "junit").encode())
    text = root.find(".//failure").text or ""
    assert "x" * 4000 in text and "x" * 4001 not in text and "46000 more characters" in text


@pytest.mark.parametrize("fmt", ["html", "md", "json", "junit", "terminal"])
def test_a_lone_surrogate_in_an_output_still_writes(fmt: str, tmp_path: Path) -> None:
    case = _case("s", "1", "m", output="broken \ud800 pair", scores=(ScoreRow("f", "1", 0.1, False, 0.5, "\udcff"),))
    path = write_report(RunResults(RunInfo("r-1", "s", "finished", 0.0), [case]), fmt, tmp_path / f"r.{fmt}")
    text = path.read_text(encoding="utf-8")
    assert "r-1" in text or "s" in text
    if fmt == "junit":
        ET.fromstring(text.encode())


@pytest.mark.parametrize("fmt", ["html", "md", "json", "junit", "terminal"])
def test_an_empty_interrupted_run_renders(fmt: str) -> None:
    info = RunInfo("r-empty", "writing", "interrupted", 1_796_130_000.0, suite_path="suites/writing.yaml", planned=12)
    text = render(RunResults(info, []), fmt)
    assert "r-empty" in text or fmt == "junit"
    if fmt in ("md", "html", "terminal"):
        assert "aigc eval suites/writing.yaml --resume r-empty" in " ".join(text.split())
    if fmt == "junit":
        assert ET.fromstring(text.encode()).tag == "testsuites"
