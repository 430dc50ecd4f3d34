"""The HTML report in a real headless Chromium (Debian's /usr/bin/chromium through Playwright), opened from file://.

Skipped only when Chromium or Playwright is missing here; AIGC_REQUIRE_BROWSER=1 (set in CI) makes that a failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aigc_app.reports import write_report
from aigc_app.reports.sample import sample_results
from aigc_app.results import RunResults

HOSTILE = "</script><script>window.pwned = 1</script><img src=x onerror=window.pwned=2>"


def _open(browser: Any, path: Path) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(f"console {m.type}: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else problems.append(f"fetch {r.url}"))
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page, problems


def _with_hostile_case(run: RunResults) -> RunResults:
    from dataclasses import replace

    first = replace(run.cases[0], case_id="hostile-case", output=HOSTILE)
    return RunResults(replace(run.info, notes=("tiny offline model: text is meaningless",)), [first, *run.cases[1:]])


@pytest.fixture(scope="module")
def small_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(_with_hostile_case(sample_results(240)), "html", tmp_path_factory.mktemp("html") / "r.html")


def test_report_renders_from_file_url_without_errors(browser: Any, small_report: Path) -> None:
    page, problems = _open(browser, small_report)
    assert page.locator("svg").count() >= 3
    assert page.locator("svg rect").count() > 20  # the bars were drawn
    assert page.locator("#cases-body tr").count() == 100  # one page of rows
    assert "of 240" in page.text_content("#count")
    assert "text is meaningless" in page.text_content("#notes")
    assert page.evaluate("() => window.pwned") is None  # the hostile output stayed text
    page.close()
    assert problems == []


def test_drill_down_shows_inputs_prompt_output_and_scores(browser: Any, small_report: Path) -> None:
    page, problems = _open(browser, small_report)
    page.fill("#q", "hostile-case")
    assert page.locator("#cases-body tr").count() == 1
    page.click("#cases-body tr")
    detail = page.locator("#detail")
    assert detail.is_visible()
    text = detail.inner_text()
    for part in ("inputs", "rendered prompt", "output", "scores", "Brand: Acme", "fluency", "threshold"):
        assert part in text, part
    assert HOSTILE in text  # shown as text
    assert detail.locator("img").count() == 0 and page.evaluate("() => window.pwned") is None
    assert detail.locator("table tr").count() >= 1 + 5  # header and one row per score
    page.close()
    assert problems == []


def test_filters_and_sort(browser: Any, small_report: Path) -> None:
    page, problems = _open(browser, small_report)
    total = page.evaluate("() => window.aigcReport.rowCount()")
    page.select_option("#f-state", "fail")
    failed = page.evaluate("() => window.aigcReport.rowCount()")
    assert 0 < failed < total
    assert set(page.locator("#cases-body tr td:nth-child(4)").all_inner_texts()) == {"fail"}
    page.select_option("#f-state", "all")
    page.select_option("#f-variant", "1")
    variants = set(page.locator("#cases-body tr td:nth-child(3)").all_inner_texts())
    assert len(variants) == 1
    page.select_option("#f-evaluator", "0")
    page.select_option("#f-state", "pass")
    values = [float(v) for v in page.locator("#cases-body tr td:nth-child(6)").all_inner_texts()]
    assert values and min(values) >= 0.6  # fluency passes at 0.6
    page.click("#cases-head th[data-key='lat']")
    page.click("#cases-head th[data-key='lat']")  # descending
    latencies = [float(v) for v in page.locator("#cases-body tr td:nth-child(5)").all_inner_texts()]
    assert latencies == sorted(latencies, reverse=True)
    page.close()
    assert problems == []


def test_filtering_20000_rows_takes_under_a_second(browser: Any, tmp_path: Path) -> None:
    path = write_report(sample_results(20_000), "html", tmp_path / "big.html")
    page, problems = _open(browser, path)
    assert page.evaluate("() => window.aigcReport.rowCount()") == 20_000
    timings = page.evaluate(
        """() => {
        const q = document.getElementById("q"), state = document.getElementById("f-state");
        const time = (f) => { const t0 = performance.now(); f(); return performance.now() - t0; };
        return {
          search: time(() => { q.value = "northwind"; q.dispatchEvent(new Event("input")); }),
          rows: window.aigcReport.rowCount(),
          state: time(() => { state.value = "fail"; state.dispatchEvent(new Event("change")); }),
          clear: time(() => { q.value = ""; state.value = "all"; q.dispatchEvent(new Event("input")); }),
          sort: time(() => document.querySelector("#cases-head th[data-key='e:0']").click()),
        };
    }"""
    )
    assert 0 < timings["rows"] < 20_000
    for name in ("search", "state", "clear", "sort"):
        assert timings[name] < 1000, timings
    page.close()
    assert problems == []


def test_the_page_does_not_scroll_sideways_on_a_narrow_window(browser: Any, small_report: Path) -> None:
    page, problems = _open(browser, small_report)
    page.set_viewport_size({"width": 760, "height": 900})
    page.click("#cases-body tr")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.close()
    assert problems == []
