"""The playground and the report viewer of `aigc serve` in a real headless Chromium (Debian's /usr/bin/chromium via
Playwright): fill a form, stream the tiny model's answer, watch the scores arrive, save a case; open a run and a
compare page. No console errors, no request leaves the server's origin; a screenshot of each page goes to
tests/artifacts/ (ignored by git).

Skipped only when Chromium or Playwright is missing here; AIGC_REQUIRE_BROWSER=1 (set in CI) makes that a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from aigc_app.compare import compare_runs
from aigc_app.compare.render import comparison_dict
from aigc_app.reports.sample import sample_results
from aigc_app.runner import load_eval_suite, resolve_cases
from aigc_app.server import ServeSettings
from aigc_app.server.testing import RunningServer, running_server
from aigc_app.store import ResultsStore

ARTIFACTS = Path(__file__).parent / "artifacts"
RUN_A, RUN_B = "r20261201-100000-aaaa", "r20261201-110000-bbbb"
KEY = "sk-viewer-0123456789abcdef"


@pytest.fixture(scope="module", autouse=True)
def _artifacts_dir() -> None:
    ARTIFACTS.mkdir(exist_ok=True)  # screenshots of each page (the browser fixture is in conftest.py)


@pytest.fixture(scope="module")
def viewer_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding two runs of the same suite."""
    path = tmp_path_factory.mktemp("viewer") / "results.db"
    with ResultsStore(path) as store:
        for run_id, seed in ((RUN_A, 1), (RUN_B, 2)):
            results = sample_results(96, seed=seed, run_id=run_id)
            store.create_run(results.info)
            for case in results.cases:
                # another seed for B: content-addressed generations of A are not reused, so the runs differ
                store.record_case(replace(case, key="", seed=(case.seed or 0) + seed))
    return path


@pytest.fixture(scope="module")
def viewer(viewer_store: Path) -> Iterator[RunningServer]:
    """A server with an API key over the two runs (no model needed to view them)."""
    folder = viewer_store.parent
    settings = ServeSettings(
        port=0,
        store=viewer_store,
        suites_dir=folder / "suites",
        config=_no_models(folder),
        api_key=SecretStr(KEY),  # the pages reach the APIs with the session cookie
    )
    with running_server(settings) as server:
        yield server


def _fixed(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _signed(x: float | None) -> str:
    return "–" if x is None else ("+" if x > 0 else "") + f"{x:.3f}"


def _no_models(folder: Path) -> Path:
    path = folder / "aigc.yaml"
    path.write_text("models: {}\n")
    return path


def _open(browser: Any, url: str) -> tuple[Any, list[str]]:
    origin = url.split("/", 3)[:3]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(f"console {m.type}: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "request",
        lambda r: None if r.url.split("/", 3)[:3] == origin or r.url.startswith("data:") else problems.append(r.url),
    )
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page, problems


def test_playground_streams_scores_and_saves_a_case(browser: Any, aigc_server: RunningServer) -> None:
    page, problems = _open(browser, f"{aigc_server.base_url}/playground?prompt=marketing/social_post")
    assert page.input_value("#prompt") == "marketing/social_post"
    assert page.locator("#version option").count() >= 2
    assert page.locator("#model option").count() >= 1
    # the form follows the input schema: enums are selects, booleans checkboxes, defaults filled in
    assert page.locator("select#in-platform").count() == 1
    assert page.locator("input#in-emoji[type=checkbox]").is_checked()
    assert page.input_value("#in-tone") == '"conversational"'
    page.select_option("#diff-against", "1.0.0")
    page.wait_for_selector("#diff span.add")
    page.click("#fill-example")
    assert page.input_value("#in-platform") == '"linkedin"'
    # the tiny model's window is 1,024 tokens: run a short prompt
    page.select_option("#prompt", "writing/draft")
    page.wait_for_selector("#in-title")
    page.click("#fill-example")
    page.fill("#in-title", "Three pantry habits")
    page.fill("#max-tokens", "24")
    page.click("#template-details summary")  # edit the template: it renders as a draft in the sandbox
    source = page.input_value("#source")
    page.fill("#source", source.replace("{{ title }}", "Draft: {{ title }}", 1))
    assert "draft" in page.text_content("#draft-state")
    page.click("#render")
    page.locator("#messages pre", has_text="Title: Draft: Three pantry habits").wait_for(state="attached")
    page.select_option("#evaluators", "offline")
    page.locator("#in-title").press("Control+Enter")  # keyboard: run from the form
    page.wait_for_selector("#output[data-done='1']", timeout=60_000)
    answer = page.text_content("#output")
    assert answer
    page.wait_for_selector("#score-summary[data-done='1']", timeout=60_000)
    names = page.locator("#scores li").evaluate_all("items => items.map(i => i.dataset.evaluator)")
    assert {"adherence", "degeneration", "pii", "toxicity"} <= set(names)
    assert page.locator("#messages .msg").count() >= 2
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)

    assert page.input_value("#suite-file") == "draft.yaml"
    page.fill("#suite-file", "browser/pantry.yaml")
    page.check("#use-reference")
    page.click("#save-case")
    page.wait_for_selector("#case-result[data-case-id]")
    message = page.text_content("#case-result")
    case_id = page.get_attribute("#case-result", "data-case-id")
    path = Path(message.split(" to ", 1)[1].split(" (", 1)[0])
    saved = yaml.safe_load(path.read_text())
    case = next(c for c in saved["cases"] if c.get("id") == case_id)
    assert case["reference"] == answer
    assert case["vars"]["title"] == "Three pantry habits"
    assert saved["prompts"] == ["writing/draft@1.0.0"]
    assert [c.id for c in resolve_cases(load_eval_suite(path))] == [case_id]
    page.fill("#case-id", "my case")  # refused by the API: the page says why in words, not as JSON
    page.click("#save-case")
    page.wait_for_selector("#error:not([hidden])")
    assert "case_id: 'my case' is not a case id: letters, digits" in page.text_content("#error")
    refused = [p for p in problems if "status of 400" in p]  # Chromium logs the refused fetch itself
    assert len(refused) == 1, problems
    problems.remove(refused[0])
    page.close()
    assert problems == []


def test_run_page_shows_the_report(browser: Any, viewer: RunningServer) -> None:
    page, problems = _open(browser, f"{viewer.base_url}/runs?key={KEY}")  # sets the cookie, drops the key
    assert page.url == f"{viewer.base_url}/runs" and KEY not in page.content()
    assert page.locator("#runs tbody tr").count() == 2
    page.screenshot(path=str(ARTIFACTS / "runs.png"), full_page=True)
    page.click(f"a[href='/runs/{RUN_A}']")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    assert RUN_A in page.text_content("#title")
    assert page.locator("#evaluators tbody tr").count() == 5
    assert page.locator("#evaluators svg rect").count() > 5  # the inline SVG bars were drawn
    report = page.frame_locator("#report")
    report.locator("body[data-ready='1']").wait_for(timeout=30_000)
    assert report.locator("svg").count() >= 3
    page.screenshot(path=str(ARTIFACTS / "run.png"), full_page=True)
    page.locator("#report").scroll_into_view_if_needed()
    page.locator("#report").screenshot(path=str(ARTIFACTS / "run-report.png"))
    page.close()
    assert problems == []


def test_compare_page_shows_paired_statistics(browser: Any, viewer: RunningServer, viewer_store: Path) -> None:
    page, problems = _open(browser, f"{viewer.base_url}/runs?key={KEY}")
    page.check(f"input[name=a][value='{RUN_A}']")
    page.check(f"input[name=b][value='{RUN_B}']")
    page.click("#compare")
    page.wait_for_url("**/compare?*")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("#verdict")
    assert page.locator("section.variant").count() == 4
    first = page.locator("section.variant").first
    assert first.locator("table.rows tbody tr").count() == 5
    assert first.locator("svg.forest circle").count() == 5
    assert "p (Holm)" in first.text_content()
    # the figures are aigc compare's: effect, interval, Holm p and verdict of every row of every variant
    with ResultsStore(viewer_store) as store:
        expected = comparison_dict(compare_runs(store.load_run(RUN_A), store.load_run(RUN_B)))
    shown = page.locator("section.variant table.rows tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    wanted = [
        [str(r["n_pairs"]), _signed(r["effect"]), f"{_signed(r['effect_ci'][0])} … {_signed(r['effect_ci'][1])}",
         _fixed(r["p_holm"]), r["verdict"].replace("_", " ")]
        for v in expected["variants"] for r in v["rows"]
    ]  # fmt: skip
    assert [[row[2], row[5], row[6], row[9], row[10]] for row in shown] == wanted
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)
    page.close()
    assert problems == []
